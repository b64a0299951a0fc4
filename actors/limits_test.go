package actors

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// fakeNow is a settable clock for the limiter's buckets.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// granted starts acquire in the background and reports on ch when it is
// granted, with its release.
func granted(l *limiter, ctx context.Context, model string, thread, root infinity.ThreadID, est int, ch chan<- func(infinity.Usage)) {
	go func() {
		rel, err := l.acquire(ctx, model, thread, root, est, nil)
		if err == nil {
			ch <- rel
		}
	}()
}

func waitWaiting(t *testing.T, l *limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		got := len(l.waiting)
		l.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls waiting, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func expectNone(t *testing.T, ch <-chan func(infinity.Usage)) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("a call was granted beyond its limit")
	case <-time.After(20 * time.Millisecond):
	}
}

// Concurrent bounds the calls in flight; roots take turns when calls
// queue; a model's own limit goes before its provider's; an unlimited
// model is not held.
func TestLimiterConcurrentAndTurns(t *testing.T) {
	l := newLimiter(time.Now, map[string]ModelLimit{"p": {Concurrent: 1}})
	ctx := t.Context()
	first, err := l.acquire(ctx, "p/m", "a0", "A", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	grants := make(chan func(infinity.Usage), 10)
	type named struct {
		thread infinity.ThreadID
		rel    func(infinity.Usage)
	}
	order := make(chan named, 10)
	for i, th := range []infinity.ThreadID{"a1", "a2", "a3"} {
		go func() {
			rel, err := l.acquire(ctx, "p/m", th, "A", 1, nil)
			if err == nil {
				order <- named{th, rel}
			}
		}()
		waitWaiting(t, l, i+1)
	}
	go func() {
		rel, err := l.acquire(ctx, "p/x", "b1", "B", 1, nil)
		if err == nil {
			order <- named{"b1", rel}
		}
	}()
	waitWaiting(t, l, 4)
	if k, ok := l.waitingFor("b1"); !ok || k != "p" {
		t.Fatalf("waitingFor(b1) = %q, %v", k, ok)
	}
	expectNone(t, grants)
	first(infinity.Usage{})
	var got []infinity.ThreadID
	for range 4 {
		n := <-order
		got = append(got, n.thread)
		n.rel(infinity.Usage{})
	}
	// a1 was first in line; then B's turn, though A queued more before it.
	if want := []infinity.ThreadID{"a1", "b1", "a2", "a3"}; !equalIDs(got, want) {
		t.Fatalf("granted in order %v, want %v", got, want)
	}
	if rel, err := l.acquire(ctx, "q/m", "c", "C", 1, nil); err != nil {
		t.Fatal(err)
	} else {
		rel(infinity.Usage{}) // not limited: no wait
	}
	// A model's own limit goes before its provider's.
	l.set("p/m", ModelLimit{Concurrent: 2})
	r1, _ := l.acquire(ctx, "p/m", "d1", "D", 1, nil)
	r2, _ := l.acquire(ctx, "p/m", "d2", "D", 1, nil)
	r1(infinity.Usage{})
	r2(infinity.Usage{})
}

func equalIDs(a, b []infinity.ThreadID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// RPM lets a second's worth start at once, then one more per 1/RPM
// minute; TPM charges an estimate and corrects it from the usage.
func TestLimiterRates(t *testing.T) {
	clock := &fakeNow{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	l := newLimiter(clock.now, map[string]ModelLimit{"p": {RPM: 600}})
	ctx := t.Context()
	grants := make(chan func(infinity.Usage), 100)
	for i := range 25 {
		granted(l, ctx, "p/m", infinity.ThreadID("t"+string(rune('a'+i))), "R", 1, grants)
	}
	for range 10 { // the burst: a second's worth
		(<-grants)(infinity.Usage{})
	}
	expectNone(t, grants)
	clock.add(time.Second)
	l.mu.Lock()
	l.grantLocked(l.gates["p"])
	l.mu.Unlock()
	for range 10 {
		(<-grants)(infinity.Usage{})
	}
	expectNone(t, grants)

	l2 := newLimiter(clock.now, map[string]ModelLimit{"p": {TPM: 1000}})
	rel, err := l2.acquire(ctx, "p/m", "x", "R", 800, nil)
	if err != nil {
		t.Fatal(err)
	}
	g2 := make(chan func(infinity.Usage), 1)
	granted(l2, ctx, "p/m", "y", "R", 800, g2)
	expectNone(t, g2)                           // 200 tokens left, 800 asked
	rel(infinity.Usage{Input: 100, Output: 50}) // it used 150: 650 come back
	(<-g2)(infinity.Usage{})
}

// A call that gives up leaves the line.
func TestLimiterCancel(t *testing.T) {
	l := newLimiter(time.Now, map[string]ModelLimit{"p": {Concurrent: 1}})
	hold, _ := l.acquire(t.Context(), "p/m", "a", "A", 1, nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := l.acquire(ctx, "p/m", "b", "B", 1, nil)
		errc <- err
	}()
	waitWaiting(t, l, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if _, ok := l.waitingFor("b"); ok {
		t.Fatal("a cancelled call still waits")
	}
	hold(infinity.Usage{})
	rel, err := l.acquire(t.Context(), "p/m", "c", "C", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rel(infinity.Usage{})
}
