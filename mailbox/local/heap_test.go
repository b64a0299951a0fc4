package local

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestDueHeapOrder pushes, removes and pops at random and checks the order
// and the entries' indexes against a plain scan.
func TestDueHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Now()
	var h dueHeap
	live := map[*entry]bool{}
	var seq uint64
	check := func() {
		for i, s := range h {
			if s.e.index != i || !live[s.e] {
				t.Fatalf("slot %d: index %d, live %v", i, s.e.index, live[s.e])
			}
			if i > 0 && s.less(&h[(i-1)/4]) {
				t.Fatalf("slot %d is less than its parent", i)
			}
		}
		if len(h) != len(live) {
			t.Fatalf("%d slots, %d live entries", len(h), len(live))
		}
	}
	for range 20000 {
		switch op := r.IntN(10); {
		case op < 5:
			seq++
			e := &entry{at: base.Add(time.Duration(r.IntN(50)) * time.Millisecond), seq: seq}
			h.push(e)
			live[e] = true
		case op < 7 && len(h) > 0:
			e := h[r.IntN(len(h))].e
			if got := h.remove(e.index); got != e || e.index != -1 {
				t.Fatal("remove took the wrong entry")
			}
			delete(live, e)
		case len(h) > 0:
			min := h[0].e
			for e := range live {
				if (&dueSlot{at: e.at, seq: e.seq}).less(&dueSlot{at: min.at, seq: min.seq}) {
					t.Fatal("head is not the least entry")
				}
			}
			h.remove(0)
			delete(live, min)
		}
		check()
	}
}

// BenchmarkDueHeap is one push and one pop on a heap of 100,000 timers.
func BenchmarkDueHeap(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	base := time.Now()
	var h dueHeap
	var seq uint64
	next := func() *entry {
		seq++
		return &entry{at: base.Add(time.Duration(r.Int64N(int64(10 * time.Second)))), seq: seq}
	}
	for range 100000 {
		h.push(next())
	}
	b.ResetTimer()
	for b.Loop() {
		h.push(next())
		h.remove(0)
	}
}
