package protohost

import (
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/actors"
)

// A passivated thread's actor serves the next activation; past the free
// list's size, actors are stopped.
func TestStoppedActorsAreReused(t *testing.T) {
	h := New(actors.HostOptions{MaxConcurrentSlices: 4}).(*Host)
	defer h.Shutdown()
	ran := make(chan string, 1)
	wake := func(a actors.Actor) {
		t.Helper()
		a.Wake()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("the actor did not run")
		}
	}
	a := h.Spawn("a", func() { ran <- "a" }).(*ref)
	wake(a)
	pid := a.pid.Load()
	a.Stop()
	if n := len(h.free); n != 1 {
		t.Fatalf("free actors after a stop: %d, want 1", n)
	}
	b := h.Spawn("b", func() { ran <- "b" }).(*ref)
	wake(b)
	if b.pid.Load() != pid {
		t.Fatal("the second thread spawned an actor instead of taking the free one")
	}
	if n := len(h.free); n != 0 {
		t.Fatalf("free actors after the reuse: %d, want 0", n)
	}
	var refs []*ref
	for range freeActors + 1 {
		r := h.Spawn("x", func() { ran <- "x" }).(*ref)
		wake(r)
		refs = append(refs, r)
	}
	for _, r := range refs {
		r.Stop()
	}
	if n := len(h.free); n != freeActors {
		t.Fatalf("free actors after %d stops: %d, want the cap %d", len(refs), n, freeActors)
	}
}
