package actors_test

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// gauge wraps a provider and records how many streams run at once.
type gauge struct {
	infinity.ModelProvider
	now, peak atomic.Int32
}

func (g *gauge) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		n := g.now.Add(1)
		defer g.now.Add(-1)
		for {
			m := g.peak.Load()
			if n <= m || g.peak.CompareAndSwap(m, n) {
				break
			}
		}
		for ev, err := range g.ModelProvider.Stream(ctx, req) {
			if !yield(ev, err) {
				return
			}
		}
	}
}

// Slow model calls do not hold the runtime's workers: with two workers, as
// many calls as MaxModelCalls allows are in flight at once, never more,
// and every thread is answered.
func TestSlowModelCallsDoNotHoldWorkers(t *testing.T) {
	const threads, maxCalls = 40, 8
	rules := []scripted.Rule{{Name: "answer", Reply: scripted.Reply{Text: "done", Delay: scripted.Duration(50 * time.Millisecond)}}}
	model, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	g := &gauge{ModelProvider: model}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Model = g
		c.MaxConcurrentSlices = 2
		c.MaxModelCalls = maxCalls
	})
	var ids []infinity.ThreadID
	for range threads {
		ids = append(ids, e.start("go"))
	}
	sawWaiting := false
	e.waitFor("every thread answered", func() bool {
		if mc := e.rt.ModelCalls(); mc.InFlight > maxCalls || mc.Max != maxCalls {
			t.Fatalf("model calls %+v, bound %d", mc, maxCalls)
		} else if mc.Waiting > 0 {
			sawWaiting = true
		}
		if hs := e.rt.HostStats(); hs.Working > 2 {
			t.Fatalf("host %+v: more workers than MaxConcurrentSlices", hs)
		}
		for _, id := range ids {
			if e.last(id) != "done" {
				if testing.Verbose() {
					t.Logf("%s: %q; %+v %+v %v", id, e.last(id), e.rt.ModelCalls(), e.rt.HostStats(), e.sliceErrors())
				}
				return false
			}
		}
		return true
	})
	if got := g.peak.Load(); got != maxCalls {
		t.Errorf("%d model calls at most at once; want %d (two workers, %d calls allowed)", got, maxCalls, maxCalls)
	}
	if !sawWaiting {
		t.Log("no slice was seen waiting for a model call (sampling missed it)")
	}
	e.settle()
	if mc := e.rt.ModelCalls(); mc.InFlight != 0 || mc.Waiting != 0 {
		t.Errorf("after the run: %+v", mc)
	}
	if hs := e.rt.HostStats(); hs.Detached != 0 || hs.Queued != 0 {
		t.Errorf("after the run: %+v", hs)
	}
}

// A provider's limit holds across threads, and a thread waiting for its
// turn says so.
func TestModelLimitAcrossThreads(t *testing.T) {
	rules := []scripted.Rule{{Name: "answer", Reply: scripted.Reply{Text: "done", Delay: scripted.Duration(30 * time.Millisecond)}}}
	model, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	g := &gauge{ModelProvider: model}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Model = nil
		c.Agents = []actors.Agent{{Name: "limited", Provider: g, ProviderName: "slow", Model: "scripted"}}
		c.ModelLimits = map[string]actors.ModelLimit{"slow": {Concurrent: 2}}
	})
	var ids []infinity.ThreadID
	for range 8 {
		ids = append(ids, e.start("go"))
	}
	sawTurn := false
	e.waitFor("every thread answered", func() bool {
		for _, id := range ids {
			if k, ok := e.rt.WaitingForModel(id); ok && k == "slow" {
				sawTurn = true
			}
		}
		for _, id := range ids {
			if e.last(id) != "done" {
				return false
			}
		}
		return true
	})
	if got := g.peak.Load(); got != 2 {
		t.Errorf("%d calls at once under a limit of 2", got)
	}
	if !sawTurn {
		t.Error("no thread was seen waiting for its turn")
	}
	if err := e.rt.SetModelLimit("", actors.ModelLimit{RPM: 1}); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("an empty key: %v", err)
	}
	if err := e.rt.SetModelLimit("slow", actors.ModelLimit{RPM: -1}); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("a negative bound: %v", err)
	}
}

// throttler answers its first call with HTTP 429's error, then passes
// calls on, recording when each started.
type throttler struct {
	infinity.ModelProvider
	mu     sync.Mutex
	starts []time.Time
}

func (p *throttler) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	p.mu.Lock()
	first := len(p.starts) == 0
	p.starts = append(p.starts, time.Now())
	p.mu.Unlock()
	if first {
		return func(yield func(infinity.StreamEvent, error) bool) {
			yield(infinity.StreamEvent{}, &infinity.RateLimitedError{RetryAfter: 300 * time.Millisecond, Err: errors.New("HTTP 429")})
		}
	}
	return p.ModelProvider.Stream(ctx, req)
}

// A provider that throttles is backed off as a whole: no call to it starts
// before its retry-after, and the throttled call is not counted as an
// attempt.
func TestThrottledProviderBacksOff(t *testing.T) {
	rules := []scripted.Rule{{Name: "answer", Reply: scripted.Reply{Text: "done"}}}
	model, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	p := &throttler{ModelProvider: model}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Model = nil
		c.Agents = []actors.Agent{{Name: "a", Provider: p, ProviderName: "busy", Model: "scripted"}}
		c.ModelAttempts = 1
	})
	first := e.start("go")
	e.waitFor("the first call", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.starts) > 0 })
	second := e.start("go too")
	e.waitFor("both answered", func() bool { return e.last(first) == "done" && e.last(second) == "done" })
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.starts[1:] {
		if d := at.Sub(p.starts[0]); d < 290*time.Millisecond {
			t.Errorf("a call started %s after the 429, before its retry-after of 300ms", d)
		}
	}
	if len(p.starts) != 3 {
		t.Errorf("%d calls, want 3 (the throttled one, its retry, the other thread's)", len(p.starts))
	}
}

// A slice of an instant model that waits for a rate limit holds no worker
// meanwhile: another agent's thread runs while it waits.
func TestInstantModelWaitsWithoutWorker(t *testing.T) {
	rules := []scripted.Rule{{Name: "answer", Reply: scripted.Reply{Text: "done"}}}
	limited, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	free, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []infinity.ThreadID
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Model = nil
		c.Agents = []actors.Agent{
			{Name: "limited", Provider: limited, ProviderName: "lim", Model: "scripted"},
			{Name: "free", Provider: free, ProviderName: "free", Model: "scripted"},
		}
		c.MaxConcurrentSlices = 1
		c.ModelLimits = map[string]actors.ModelLimit{"lim": {RPM: 120}} // one call each half second
		obs := c.Observer
		c.Observer = func(ev actors.Event) {
			obs(ev)
			if ev.Kind == actors.EventItem && ev.Item.Kind == infinity.KindAssistant {
				mu.Lock()
				order = append(order, ev.Thread)
				mu.Unlock()
			}
		}
	})
	var ids []infinity.ThreadID
	for range 3 {
		id, err := e.rt.Start(t.Context(), actors.StartOptions{Agent: "limited", Text: "go"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	e.waitFor("a limited thread waiting for its turn", func() bool {
		for _, id := range ids {
			if _, ok := e.rt.WaitingForModel(id); ok {
				return true
			}
		}
		return false
	})
	other, err := e.rt.Start(t.Context(), actors.StartOptions{Agent: "free", Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("every thread answered", func() bool {
		for _, id := range append(ids, other) {
			if e.last(id) != "done" {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 4 || order[3] == other {
		t.Fatalf("answers in order %v: the free agent's thread waited behind the rate limit", order)
	}
}
