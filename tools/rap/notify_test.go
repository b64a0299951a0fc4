package rap

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestNotifications(t *testing.T) {
	hanging := hangingServer(t)
	a := raptest.New(t)
	b := raptest.New(t, raptest.WithPrefix("b_"))
	rt := newRuntime(t, a.URL, deadURL(t), hanging, b.URL+"/")
	n := &Notifier{Log: quiet, Loader: NewLoader(rt.cfg), Client: http.DefaultClient, Timeout: 2 * time.Second}

	t.Run("90 91 92 93 94 close_thread reaches the live servers without blocking", func(t *testing.T) {
		start := time.Now()
		n.ThreadClosed(context.Background(), "th_child_7")
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("ThreadClosed blocked for %v", d)
		}
		// The hanging server is still holding its request: the others got theirs anyway.
		eventually(t, "close notifications", func() bool { return len(a.Closes()) == 1 && len(b.Closes()) == 1 })
		if a.Closes()[0].ThreadID != "th_child_7" || b.Closes()[0].ThreadID != "th_child_7" {
			t.Fatalf("bodies %+v %+v", a.Closes(), b.Closes())
		}
	})
	t.Run("96 97 98 99 100 cancel_tool_call likewise", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n.CallCancelled(ctx, "t1", "toolu_9")
		cancel() // the caller's cancellation does not cut the notifications short
		eventually(t, "cancel notifications", func() bool { return len(a.Cancels()) == 1 && len(b.Cancels()) == 1 })
		if got := a.Cancels()[0]; got.ThreadID != "t1" || got.ToolCallID != "toolu_9" {
			t.Fatalf("body %+v", got)
		}
	})
	t.Run("94 100 a failed notification is not retried", func(t *testing.T) {
		var hits atomic.Int32
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.WriteHeader(500)
		}))
		defer failing.Close()
		rt := newRuntime(t, failing.URL)
		n := &Notifier{Log: quiet, Loader: NewLoader(rt.cfg), Client: http.DefaultClient}
		n.ThreadClosed(context.Background(), "t1")
		n.CallCancelled(context.Background(), "t1", "c1")
		n.Wait()
		if hits.Load() != 2 {
			t.Fatalf("%d requests, want 2", hits.Load())
		}
	})
	t.Run("a synchronous notifier returns when the servers have answered, and never retries", func(t *testing.T) {
		var hits atomic.Int32
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hits.Add(1) == 1 {
				w.WriteHeader(503)
			}
		}))
		defer flaky.Close()
		rt := newRuntime(t, flaky.URL, b.URL)
		before := len(b.Closes())
		n := &Notifier{Log: quiet, Loader: NewLoader(rt.cfg), Client: http.DefaultClient, Synchronous: true}
		n.ThreadClosed(context.Background(), "t2")
		// No waiting: everything was sent before ThreadClosed returned.
		if hits.Load() != 1 || len(b.Closes()) != before+1 {
			t.Fatalf("%d requests to the flaky server, %d closes at the other", hits.Load(), len(b.Closes())-before)
		}
	})
	t.Run("92 a hanging server is bounded by Timeout", func(t *testing.T) {
		rt := newRuntime(t, hanging)
		n := &Notifier{Log: quiet, Loader: NewLoader(rt.cfg), Client: http.DefaultClient, Timeout: 50 * time.Millisecond}
		n.ThreadClosed(context.Background(), "t1")
		done := make(chan struct{})
		go func() { n.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("notification outlived its timeout")
		}
	})
}
