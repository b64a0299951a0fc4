package rap

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity"
)

// ErrMigration: a /migrate request failed; the migration must be aborted.
var ErrMigration = errors.New("migration failed")

// DefaultNotifyTimeout bounds one close or cancel notification.
const DefaultNotifyTimeout = 5 * time.Second

// Notifier sends the runtime → tool notifications to every configured
// server: /close_thread, /cancel_tool_call (fire and forget) and /migrate.
// A local server that neither runs nor is starting is left out of
// close/cancel notifications (it holds nothing about the thread) and
// started for /migrate.
type Notifier struct {
	// Loader supplies the servers and, for Migrate, their manifests
	// (required).
	Loader *Loader
	// Client sends the notifications; use the invocations' client, so the
	// same credentials go along (nil means http.DefaultClient).
	Client infinity.HTTPClient
	// Timeout bounds each close/cancel request; 0 means
	// DefaultNotifyTimeout.
	Timeout time.Duration
	// Synchronous makes ThreadClosed and CallCancelled return only when
	// every server has answered or failed (within Timeout; a notification
	// is never retried, as the protocol asks). The Lambda
	// functions set it: a request left on a goroutine when the handler
	// returns is frozen with the container and may never be sent.
	Synchronous bool
	Log         *slog.Logger
	wg          sync.WaitGroup
}

// ThreadClosed tells every server that thread closed (the protocol's
// /close_thread). It returns at once unless Synchronous: each server gets
// one concurrent POST, bounded by Timeout and never retried,
// and its outcome is only logged, so one server's failure affects no other
// and nothing depends on delivery.
// When thread is a session's root, the loader forgets the session's
// toolsets (a no-op for other threads).
func (n *Notifier) ThreadClosed(ctx context.Context, thread infinity.ThreadID) {
	n.Loader.Forget(thread)
	n.broadcast(ctx, "/close_thread", CloseThread{ThreadID: string(thread)}, thread)
}

// CallCancelled tells every server that call callID of thread was cancelled
// or interrupted (RAP §7), like ThreadClosed. A result may still arrive
// for the call afterwards.
func (n *Notifier) CallCancelled(ctx context.Context, thread infinity.ThreadID, callID string) {
	n.broadcast(ctx, "/cancel_tool_call", CancelToolCall{ThreadID: string(thread), ToolCallID: callID}, thread)
}

// Wait blocks until every notification in flight has finished (for tests
// and graceful shutdown).
func (n *Notifier) Wait() { n.wg.Wait() }

func (n *Notifier) broadcast(ctx context.Context, path string, msg any, thread infinity.ThreadID) {
	log := n.log()
	body, err := json.Marshal(msg)
	if err != nil {
		log.Error("rap notification not encoded", "path", path, "thread", thread, "err", err)
		return
	}
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultNotifyTimeout
	}
	// The caller's cancellation must not cut background notifications
	// short: the thread is closing, and that is exactly when they matter.
	// A synchronous caller waits, so its deadline bounds them.
	base := ctx
	if !n.Synchronous {
		base = context.WithoutCancel(ctx)
	}
	var wg sync.WaitGroup
	for _, s := range n.Loader.servers {
		if s.local != nil && !s.local.live() {
			// A local server that neither runs nor is starting holds
			// nothing about the thread (it lost its state when it
			// stopped): starting it only to tell it would be waste. One
			// being started is waited for, as its first call may be the
			// thread's.
			continue
		}
		wg.Add(1)
		n.wg.Go(func() {
			defer wg.Done()
			// A local server (running when the loop looked) is acquired
			// within its connect timeout; the request has Timeout.
			actx, acancel := context.WithTimeout(base, s.connect)
			addr, release, err := s.acquire(actx)
			acancel()
			if err != nil {
				log.Info("rap notification not sent", "server", s.name, "path", path, "thread", thread, "err", err)
				return
			}
			defer release()
			rctx, cancel := context.WithTimeout(base, timeout)
			defer cancel()
			// Sent once: the protocol forbids retrying these (rules 94, 100).
			if status, _, err := postJSON(rctx, n.client(), addr+path, body); err != nil || status != http.StatusOK {
				log.Info("rap notification not acknowledged", "server", s.name, "path", path, "thread", thread, "status", status, "err", err)
			}
		})
	}
	if n.Synchronous {
		wg.Wait()
	}
}

func (n *Notifier) client() infinity.HTTPClient {
	if n.Client != nil {
		return n.Client
	}
	return http.DefaultClient
}

func (n *Notifier) log() *slog.Logger {
	if n.Log != nil {
		return n.Log
	}
	return slog.Default()
}
