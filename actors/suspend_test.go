package actors_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// gate is a slow provider: each call waits until release is closed (or its
// context ends), then answers as the wrapped model does. The first panics
// calls panic instead.
type gate struct {
	infinity.ModelProvider
	release  chan struct{}
	inFlight atomic.Int32
	calls    atomic.Int32
	panics   atomic.Int32
	// fail, when it returns an error, fails the call with it.
	fail atomic.Pointer[func() error]
}

func (g *gate) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		g.inFlight.Add(1)
		defer g.inFlight.Add(-1)
		g.calls.Add(1)
		if g.panics.Add(-1) >= 0 {
			panic("a provider's bug")
		}
		if f := g.fail.Load(); f != nil {
			if err := (*f)(); err != nil {
				yield(infinity.StreamEvent{}, err)
				return
			}
		}
		select {
		case <-g.release:
		case <-ctx.Done():
			yield(infinity.StreamEvent{}, ctx.Err())
			return
		}
		for ev, err := range g.ModelProvider.Stream(ctx, req) {
			if !yield(ev, err) {
				return
			}
		}
	}
}

// workThenDone calls the work tool, then answers "done": two model calls
// in one slice.
var workThenDone = []scripted.Rule{
	{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("work", `{}`)}}},
	{When: scripted.Match{Last: "tool_result"}, Reply: scripted.Reply{Text: "done"}},
}

func gateEnv(t *testing.T, g *gate, opts ...option) *env {
	t.Helper()
	model, err := scripted.New(scripted.Script{Rules: workThenDone})
	if err != nil {
		t.Fatal(err)
	}
	g.ModelProvider = model
	return newEnv(t, workThenDone, append([]option{func(c *actors.Config) {
		c.Agents = []actors.Agent{
			{Name: "slow", Provider: g, ProviderName: "slow", Model: "scripted", Tools: []infinity.Tool{work{}}},
			{Name: "quick", Tools: []infinity.Tool{work{}}},
		}
	}}, opts...)...)
}

func (e *env) startAgent(agent string) infinity.ThreadID {
	e.t.Helper()
	id, err := e.rt.Start(context.Background(), actors.StartOptions{Agent: agent, Text: "go"})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// A slice stops at a call to a slow model and gives its worker back: with
// one worker, six calls are in flight at once while another thread's slice
// runs to its end; each slow slice then goes on from its model's answer
// (through a tool call and a second model call) and ends once.
func TestSuspendedSlicesHoldNoWorker(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	e := gateEnv(t, g, func(c *actors.Config) { c.MaxConcurrentSlices = 1 })
	var slow []infinity.ThreadID
	for range 6 {
		slow = append(slow, e.startAgent("slow"))
	}
	e.waitFor("six calls in flight at once", func() bool { return g.inFlight.Load() == 6 })
	if hs := e.rt.HostStats(); hs.Working > 1 || hs.Detached < 6 {
		t.Fatalf("host %+v with six calls in flight and one worker", hs)
	}
	quick := e.startAgent("quick")
	e.waitFor("the quick thread's answer while the slow ones wait", func() bool { return e.last(quick) == "done" })
	for _, id := range slow {
		if e.last(id) == "done" {
			t.Fatalf("%s answered before its model did", id)
		}
	}
	close(g.release)
	e.waitFor("every slow thread answered", func() bool {
		for _, id := range slow {
			if e.last(id) != "done" {
				return false
			}
		}
		return true
	})
	e.settle()
	noErrors(t, e)
	for _, id := range slow {
		own := e.own(id)
		if n := count(own, isCall("work")); n != 1 {
			t.Errorf("%s: %d work calls, want 1:\n%s", id, n, transcript(own))
		}
	}
	if hs := e.rt.HostStats(); hs.Detached != 0 {
		t.Errorf("after the run: %+v", hs)
	}
}

// A panic in a suspended slice's model call fails the slice, which is
// retried like any failed slice: the thread is answered once.
func TestPanicInSuspendedCallRetries(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	close(g.release)
	g.panics.Store(1)
	e := gateEnv(t, g)
	id := e.startAgent("slow")
	e.waitFor("the thread answered after a retry", func() bool { return e.last(id) == "done" })
	e.settle()
	if errs := e.sliceErrors(); len(errs) != 1 {
		t.Errorf("slice errors %v, want the panic's", errs)
	}
	own := e.own(id)
	if n := count(own, func(it infinity.Item) bool { return it.Kind == infinity.KindAssistant && it.Text == "done" }); n != 1 {
		t.Errorf("%d answers, want 1:\n%s", n, transcript(own))
	}
}

// Close does not wait forever for a model that never answers: once its
// deadline passes, the suspended slice's call is cancelled and the slice
// ends, its input left for the next start.
func TestCloseCancelsSuspendedCalls(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	e := gateEnv(t, g)
	id := e.startAgent("slow")
	e.waitFor("the slice stopped at its call", func() bool {
		_, calling := e.rt.CallingModel(id)
		return calling && g.inFlight.Load() == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.rt.Close(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	e.waitFor("the call to end", func() bool { return g.inFlight.Load() == 0 && e.rt.HostStats().Detached == 0 })
}

// A tree with a budget commits each model call before the next: each of
// the slice's two calls suspends it, in slices of their own.
func TestBudgetedSliceSuspends(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	e := gateEnv(t, g, func(c *actors.Config) { c.MaxConcurrentSlices = 1 })
	id, err := e.rt.Start(context.Background(), actors.StartOptions{Agent: "slow", Text: "go", Budget: &infinity.Budget{ModelCalls: 10}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the slice stopped at its call", func() bool {
		_, calling := e.rt.CallingModel(id)
		return calling && e.rt.HostStats().Detached == 1
	})
	close(g.release)
	e.waitFor("the answer", func() bool { return e.last(id) == "done" })
	e.settle()
	noErrors(t, e)
	if n := modelCalls(e, id); n != 2 {
		t.Errorf("%d model calls, want 2:\n%s", n, transcript(e.own(id)))
	}
}

// holdWork is a work tool that holds its worker until its context ends,
// and a little after.
type holdWork struct{ started chan struct{} }

func (holdWork) Spec() infinity.ToolSpec { return work{}.Spec() }
func (h holdWork) Invoke(ctx context.Context, _ infinity.ToolEnv, _ infinity.ToolCall) (*infinity.ToolResult, error) {
	close(h.started)
	<-ctx.Done()
	time.Sleep(100 * time.Millisecond) // past the host's shutdown, which drops queued runs
	return nil, ctx.Err()
}

// A slice whose model answered just before Close, while every worker was
// busy, still ends: the host drops its queued run at shutdown, and Close
// goes on with it, so nothing stays busy.
func TestCloseEndsQueuedResume(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	started := make(chan struct{})
	e := gateEnv(t, g, func(c *actors.Config) {
		c.MaxConcurrentSlices = 1
		c.Agents = append(c.Agents, actors.Agent{Name: "holder", Tools: []infinity.Tool{holdWork{started: started}}})
	})
	e.startAgent("slow")
	e.waitFor("the slow call in flight", func() bool { return g.inFlight.Load() == 1 })
	e.startAgent("holder")
	<-started // the one worker is held
	close(g.release)
	e.waitFor("the resume queued behind the held worker", func() bool { return e.rt.HostStats().Queued >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.rt.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want its deadline (two slices were busy)", err)
	}
	// The slices failed (cut short by Close): their input stays for the
	// next start, and none runs.
	e.waitFor("no slice running after Close", func() bool { return e.rt.SlicesRunning() == 0 })
}

// An agent's gate holds back its model calls: while it says the user must
// act first, the thread waits with no call made and no error; once the
// user acted, a wake runs it. A gate's passing failure is retried.
func TestGateHoldsModelCalls(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	close(g.release)
	var (
		ready, flaky atomic.Bool
		asked        atomic.Int32
	)
	flaky.Store(true)
	e := gateEnv(t, g, func(c *actors.Config) {
		c.Agents[0].Gate = func(_ context.Context, thread, root infinity.ThreadID) error {
			asked.Add(1)
			if thread != root {
				return errors.New("a root's gate asked for another thread")
			}
			if !ready.Load() {
				return fmt.Errorf("a tool server wants the user's authorization: %w", infinity.ErrAwaitingUser)
			}
			if flaky.CompareAndSwap(true, false) {
				return fmt.Errorf("authorized while the slice ran: %w", infinity.ErrRetryable)
			}
			return nil
		}
	})
	id := e.startAgent("slow")
	e.waitFor("the gate asked", func() bool { return asked.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n := g.calls.Load(); n != 0 {
		t.Fatalf("%d model calls while the gate held them", n)
	}
	if errs := e.sliceErrors(); len(errs) != 0 {
		t.Fatalf("slice errors while waiting for the user: %v", errs)
	}
	ready.Store(true)
	if err := e.rt.Wake(id); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the answer once the user acted", func() bool { return e.last(id) == "done" })
	if n := g.calls.Load(); n != 2 {
		t.Errorf("%d model calls, want 2", n)
	}
	if errs := e.sliceErrors(); len(errs) != 1 || !errors.Is(errs[0], infinity.ErrRetryable) {
		t.Errorf("slice errors %v, want the gate's one passing failure", errs)
	}
}

// outboxReads counts a store's outbox reads by thread.
type outboxReads struct {
	infinity.ConversationStore
	mu sync.Mutex
	n  map[infinity.ThreadID]int
}

func (o *outboxReads) Outbox(ctx context.Context, id infinity.ThreadID) ([]infinity.Outgoing, error) {
	o.mu.Lock()
	o.n[id]++
	o.mu.Unlock()
	return o.ConversationStore.Outbox(ctx, id)
}

func (o *outboxReads) reads(id infinity.ThreadID) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[id]
}

// A root's first slice right after Start skips the outbox (nothing of it
// ran yet); a thread that comes back after passivation looks at it first,
// as after a crash it may hold what a slice committed and did not send.
func TestNewRootSkipsTheOutbox(t *testing.T) {
	var store *outboxReads
	e := newEnv(t, []scripted.Rule{{Reply: scripted.Reply{Text: "done"}}}, func(c *actors.Config) {
		store = &outboxReads{ConversationStore: c.Conversations, n: map[infinity.ThreadID]int{}}
		c.Conversations = store
		c.Idle = 10 * time.Millisecond
	})
	id := e.start("go")
	e.waitFor("the answer", func() bool { return e.last(id) == "done" })
	if n := store.reads(id); n != 0 {
		t.Errorf("a new root's first slice read its outbox %d times", n)
	}
	e.waitFor("passivation", func() bool { return e.rt.Active() == 0 })
	e.send(id, "again")
	e.waitFor("the second answer", func() bool {
		own := e.own(id)
		return len(own) == 4 && e.last(id) == "done"
	})
	if n := store.reads(id); n == 0 {
		t.Error("a thread back from passivation did not look at its outbox")
	}
}

// A gate that holds a slice back after its first call keeps what the
// slice did: the call and its tool's result are committed, and the thread
// goes on from there once the user acted (the tool does not run again).
func TestGateLaterInTheSlice(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	close(g.release)
	var ready atomic.Bool
	var asked atomic.Int32
	e := gateEnv(t, g, func(c *actors.Config) {
		c.Agents[0].Gate = func(context.Context, infinity.ThreadID, infinity.ThreadID) error {
			if asked.Add(1) > 1 && !ready.Load() {
				return fmt.Errorf("an authorization began meanwhile: %w", infinity.ErrAwaitingUser)
			}
			return nil
		}
	})
	id := e.startAgent("slow")
	e.waitFor("the work committed while the gate holds", func() bool { return count(e.own(id), isCall("work")) == 1 && asked.Load() >= 3 })
	if e.last(id) == "done" {
		t.Fatal("answered while the gate held")
	}
	ready.Store(true)
	if err := e.rt.Wake(id); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the answer", func() bool { return e.last(id) == "done" })
	noErrors(t, e)
	if n := count(e.own(id), isCall("work")); n != 1 {
		t.Errorf("the work tool ran %d times:\n%s", n, transcript(e.own(id)))
	}
}
