package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// env is a runtime on memory stores, the local sender and a scripted model,
// driven from the outside through the Go API.
type env struct {
	t     *testing.T
	rt    *actors.Runtime
	conv  infinity.ConversationStore
	state infinity.StateStore
	clock *clocktest.Clock
	mu    sync.Mutex
	errs  []error
}

type option func(*actors.Config)

func newEnv(t *testing.T, rules []scripted.Rule, opts ...option) *env {
	t.Helper()
	model, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: clocktest.New(t0)}
	e.conv = memory.NewConversationStore()
	e.state = memory.NewStateStore(e.clock)
	cfg := actors.Config{
		Conversations: e.conv,
		State:         e.state,
		Model:         model,
		Sender: func(d actors.Deliverer) infinity.InputSender {
			return local.New(d, local.WithClock(e.clock))
		},
		Host:         protohost.New,
		Clock:        e.clock,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Idle:         50 * time.Millisecond,
		ModelBackoff: time.Millisecond,
		Observer: func(ev actors.Event) {
			if ev.Kind == actors.EventSliceError {
				e.mu.Lock()
				e.errs = append(e.errs, ev.Err)
				e.mu.Unlock()
			}
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	rt, err := actors.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Close(ctx)
	})
	return e
}

func (e *env) start(text string) infinity.ThreadID {
	e.t.Helper()
	id, err := e.rt.Start(context.Background(), actors.StartOptions{Text: text})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) send(id infinity.ThreadID, text string) {
	e.t.Helper()
	if _, err := e.rt.Send(context.Background(), id, text); err != nil {
		e.t.Fatal(err)
	}
}

// settle waits until no slice runs and no mailbox holds input.
func (e *env) settle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.rt.WaitIdle(ctx); err != nil {
		e.t.Fatalf("runtime never went idle: %v", err)
	}
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *env) history(id infinity.ThreadID) infinity.History {
	e.t.Helper()
	h, err := infinity.LoadHistory(context.Background(), e.conv, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

func (e *env) own(id infinity.ThreadID) []infinity.Item { return e.history(id).Own() }

func (e *env) children(id infinity.ThreadID) []infinity.ThreadInfo {
	e.t.Helper()
	c, err := e.conv.Children(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) info(id infinity.ThreadID) infinity.ThreadInfo {
	e.t.Helper()
	i, err := e.conv.Thread(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return i
}

func (e *env) sliceErrors() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

// transcript renders items one per line, for failure messages and checks.
func transcript(items []infinity.Item) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(it.Kind.String())
		switch it.Kind {
		case infinity.KindUser, infinity.KindAssistant:
			b.WriteString(": " + it.Text)
		case infinity.KindToolCall:
			b.WriteString(": " + it.Call.Name + " " + string(it.Call.Args))
		case infinity.KindToolResult:
			b.WriteString(": " + it.Result.Text())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func count(items []infinity.Item, pred func(infinity.Item) bool) int {
	n := 0
	for _, it := range items {
		if pred(it) {
			n++
		}
	}
	return n
}

func isCall(name string) func(infinity.Item) bool {
	return func(it infinity.Item) bool { return it.Kind == infinity.KindToolCall && it.Call.Name == name }
}

func resultText(items []infinity.Item, callID string) string {
	for _, it := range items {
		if it.Kind == infinity.KindToolResult && it.Result.CallID == callID {
			return it.Result.Text()
		}
	}
	return ""
}

func ip(n int) *int { return &n }

func call(name, args string) scripted.CallSpec {
	return scripted.CallSpec{Name: name, Args: json.RawMessage(args)}
}

func noErrors(t *testing.T, e *env) {
	t.Helper()
	if errs := e.sliceErrors(); len(errs) > 0 {
		t.Fatalf("slice errors: %v", errors.Join(errs...))
	}
}

// last returns the text of a thread's last own item ("" if none).
func (e *env) last(id infinity.ThreadID) string {
	own := e.own(id)
	if len(own) == 0 {
		return ""
	}
	return own[len(own)-1].Text
}
