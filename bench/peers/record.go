package main

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// recorder is the in-process side channel shared by the starter and the
// workflow code. Workflow code writes to it only when not replaying, so it
// never influences workflow decisions; it only observes real wall-clock times.
type recorder struct {
	n int

	mu       sync.Mutex
	intended []time.Time // wall clock when the workflow asked for the timer + delay
	woke     []time.Time // wall clock when workflow code ran again after the timer
	sent     []time.Time // wall clock just before the starter sent the signal
	done     []time.Time // wall clock when the completion was durably committed

	woken     chan int // indices whose timer fired: the starter signals them
	timers    atomic.Int64
	finished  atomic.Int64
	allAsleep chan struct{}
	allDone   chan struct{}
}

func newRecorder(n int) *recorder {
	return &recorder{
		n:         n,
		intended:  make([]time.Time, n),
		woke:      make([]time.Time, n),
		sent:      make([]time.Time, n),
		done:      make([]time.Time, n),
		woken:     make(chan int, n),
		allAsleep: make(chan struct{}),
		allDone:   make(chan struct{}),
	}
}

// active is the recorder of the current run; workflow code reaches it here.
var active atomic.Pointer[recorder]

func (r *recorder) valid(i int) bool { return r != nil && i >= 0 && i < r.n }

func (r *recorder) sleeping(i int, d time.Duration) {
	if !r.valid(i) {
		return
	}
	r.mu.Lock()
	r.intended[i] = time.Now().Add(d)
	r.mu.Unlock()
}

func (r *recorder) wake(i int) {
	if !r.valid(i) {
		return
	}
	now := time.Now()
	r.mu.Lock()
	first := r.woke[i].IsZero()
	if first {
		r.woke[i] = now
	}
	r.mu.Unlock()
	if first {
		r.woken <- i
	}
}

func (r *recorder) signalled(i int, t time.Time) {
	if !r.valid(i) {
		return
	}
	r.mu.Lock()
	r.sent[i] = t
	r.mu.Unlock()
}

// timerCommitted counts timers durably scheduled by the engine.
func (r *recorder) timerCommitted(k int) {
	if r == nil || k == 0 {
		return
	}
	if r.timers.Add(int64(k)) == int64(r.n) {
		close(r.allAsleep)
	}
}

// finish records the durable completion of workflow i.
func (r *recorder) finish(i int) {
	if !r.valid(i) {
		return
	}
	now := time.Now()
	r.mu.Lock()
	first := r.done[i].IsZero()
	if first {
		r.done[i] = now
	}
	r.mu.Unlock()
	if first && r.finished.Add(1) == int64(r.n) {
		close(r.allDone)
	}
}

// fill computes the latency fields of row from the recorded times.
func (r *recorder) fill(row *Row, start time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var late, resume []float64
	var last time.Time
	for i := 0; i < r.n; i++ {
		if !r.woke[i].IsZero() && !r.intended[i].IsZero() {
			late = append(late, ms(r.woke[i].Sub(r.intended[i])))
		}
		if !r.done[i].IsZero() && !r.sent[i].IsZero() {
			resume = append(resume, ms(r.done[i].Sub(r.sent[i])))
		}
		if r.done[i].After(last) {
			last = r.done[i]
		}
	}
	if !last.IsZero() {
		row.WallS = round(last.Sub(start).Seconds(), 3)
	}
	row.LateP50, row.LateP99, row.LateMax = pct(late, 50), pct(late, 99), pct(late, 100)
	row.ResumeP50, row.ResumeP99 = pct(resume, 50), pct(resume, 99)
	fin := make([]float64, 0, r.n)
	for _, d := range r.done {
		if !d.IsZero() {
			fin = append(fin, d.Sub(start).Seconds())
		}
	}
	logf("resume max %.1f ms; finished p50/p99/max at %.2f/%.2f/%.2f s after the first start",
		pct(resume, 100), pct(fin, 50), pct(fin, 99), pct(fin, 100))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the nearest-rank percentile p of xs (sorted in place), rounded to 0.01.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	k := int(p/100*float64(len(xs))+0.999999) - 1
	k = max(0, min(k, len(xs)-1))
	return round(xs[k], 2)
}
