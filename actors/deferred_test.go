package actors_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// heldStore is a ConversationStore whose commits are applied at once and
// become durable only when the test lets them (actors.DeferredCommitter,
// as persistence/file's are once the journal's fsync returns).
type heldStore struct {
	infinity.ConversationStore
	gate    chan struct{} // closed: commits are durable
	commits atomic.Int32
	fail    atomic.Int32 // this many durable waits fail first
}

var errLostDisk = errors.New("disk went away")

func (s *heldStore) CommitDeferred(ctx context.Context, c infinity.Commit) (int, func() error, error) {
	n, err := s.ConversationStore.Commit(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	s.commits.Add(1)
	return n, func() error {
		<-s.gate
		if s.fail.Add(-1) >= 0 {
			return errLostDisk
		}
		return nil
	}, nil
}

// TestDeferredCommitFreesTheWorker: with one slice at a time, a thread
// whose commit waits for the disk does not keep another thread's slice
// from running; nothing of either commit is seen (events, answers to
// waiters) until it is durable.
func TestDeferredCommitFreesTheWorker(t *testing.T) {
	var held *heldStore
	var mu sync.Mutex
	var items []infinity.Item
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "hello"}}},
		func(c *actors.Config) {
			held = &heldStore{ConversationStore: c.Conversations, gate: make(chan struct{})}
			c.Conversations = held
			c.MaxConcurrentSlices = 1
			observe := c.Observer
			c.Observer = func(ev actors.Event) {
				if ev.Kind == actors.EventItem {
					mu.Lock()
					items = append(items, ev.Item)
					mu.Unlock()
				}
				observe(ev)
			}
		})
	a := e.start("hi")
	b := e.start("hi")
	e.waitFor("both threads' commits, with one worker and the first still syncing", func() bool { return held.commits.Load() == 2 })
	mu.Lock()
	early := len(items)
	mu.Unlock()
	if early != 0 {
		t.Fatalf("%d items were announced before their commit was durable", early)
	}
	close(held.gate)
	e.settle()
	for _, id := range []infinity.ThreadID{a, b} {
		if got := e.last(id); got != "hello" {
			t.Errorf("thread %s: last item %q, want the answer", id, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(items) != 4 {
		t.Errorf("%d items announced after the commits were durable, want 4 (two messages, two answers)", len(items))
	}
	noErrors(t, e)
}

// TestDeferredCommitThatNeverBecomesDurableIsRetried: a commit the disk
// loses fails its slice; the batch is retried and the thread answers once.
func TestDeferredCommitThatNeverBecomesDurableIsRetried(t *testing.T) {
	var held *heldStore
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "hello"}}},
		func(c *actors.Config) {
			held = &heldStore{ConversationStore: c.Conversations, gate: make(chan struct{})}
			close(held.gate)
			held.fail.Store(1)
			c.Conversations = held
		})
	id := e.start("hi")
	e.waitFor("the retry", func() bool { return len(e.sliceErrors()) > 0 && e.last(id) == "hello" })
	e.settle()
	if errs := e.sliceErrors(); !errors.Is(errs[0], errLostDisk) {
		t.Errorf("slice error %v, want the disk's", errs[0])
	}
	answeredOnce(t, e, id)
}

// TestPanicAfterADeferredCommitIsRetried: a panic in the part of a slice
// that runs after its commit (here an observer's) is an error like one
// before it: the batch is retried, the thread answers once, and the
// runtime goes idle.
func TestPanicAfterADeferredCommitIsRetried(t *testing.T) {
	var panicked atomic.Bool
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "hello"}}},
		func(c *actors.Config) {
			held := &heldStore{ConversationStore: c.Conversations, gate: make(chan struct{})}
			close(held.gate)
			c.Conversations = held
			observe := c.Observer
			c.Observer = func(ev actors.Event) {
				if ev.Kind == actors.EventItem && panicked.CompareAndSwap(false, true) {
					panic("observer bug")
				}
				observe(ev)
			}
		})
	id := e.start("hi")
	e.waitFor("the retry", func() bool { return len(e.sliceErrors()) > 0 && e.last(id) == "hello" })
	e.settle()
	if errs := e.sliceErrors(); !strings.Contains(errs[0].Error(), "observer bug") {
		t.Errorf("slice error %v, want the panic", errs[0])
	}
	answeredOnce(t, e, id)
}

// answeredOnce fails t unless thread id holds exactly one answer.
func answeredOnce(t *testing.T, e *env, id infinity.ThreadID) {
	t.Helper()
	answers := 0
	for _, it := range e.own(id) {
		if it.Kind == infinity.KindAssistant {
			answers++
		}
	}
	if answers != 1 {
		t.Errorf("%d answers, want 1:\n%s", answers, transcript(e.own(id)))
	}
}
