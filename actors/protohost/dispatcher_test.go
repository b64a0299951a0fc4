package protohost

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A flood of jobs never runs more than max at once, and none is lost: the
// excess waits in the queue.
func TestPoolNeverExceedsItsBound(t *testing.T) {
	const max, jobs = 4, 20000
	p := newWorkerPool(max, time.Second)
	defer p.close(time.Second)
	var now, peak atomic.Int32
	var wg sync.WaitGroup
	wg.Add(jobs)
	for range jobs {
		p.Schedule(func() {
			defer wg.Done()
			n := now.Add(1)
			for {
				m := peak.Load()
				if n <= m || peak.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Microsecond)
			now.Add(-1)
		})
	}
	if q := p.Queued(); q == 0 {
		t.Log("the queue drained before it was read") // fine, but unusual
	}
	wg.Wait()
	if got := peak.Load(); got > max {
		t.Fatalf("%d jobs ran at once, bound %d", got, max)
	}
	if w, d := p.Workers(); w > max || d != 0 {
		t.Fatalf("workers %d, detached %d", w, d)
	}
}

// A job that detaches lets the others run in its place; it comes back
// within the bound, before jobs still queued.
func TestPoolDetachAttach(t *testing.T) {
	const max = 2
	p := newWorkerPool(max, time.Second)
	defer p.close(time.Second)
	var attached, peak atomic.Int32
	track := func(d int32) {
		n := attached.Add(d)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				return
			}
		}
	}
	release := make(chan struct{})
	var waiting, done sync.WaitGroup
	waiting.Add(max)
	done.Add(max + 50)
	for range max { // they hold every worker, then detach and wait
		p.Schedule(func() {
			defer done.Done()
			track(1)
			track(-1)
			p.detach()
			waiting.Done()
			<-release
			p.attach()
			track(1)
			time.Sleep(time.Millisecond)
			track(-1)
		})
	}
	waiting.Wait()
	var others atomic.Int32
	for range 50 { // run while the first ones wait, without them
		p.Schedule(func() {
			defer done.Done()
			track(1)
			others.Add(1)
			time.Sleep(100 * time.Microsecond)
			track(-1)
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for others.Load() < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 50 jobs ran while two detached jobs waited", others.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	done.Wait()
	if got := peak.Load(); got > max {
		t.Fatalf("%d attached jobs at once, bound %d", got, max)
	}
	if w, d := p.Workers(); w > max || d != 0 {
		t.Fatalf("workers %d, detached %d after all returned", w, d)
	}
}

// A burst after a quiet spell gets every place at once, not only the one
// worker that was idle.
func TestPoolBurstAfterIdle(t *testing.T) {
	const max = 8
	p := newWorkerPool(max, time.Minute)
	defer p.close(time.Second)
	warm := make(chan struct{})
	p.Schedule(func() { close(warm) })
	<-warm
	deadline := time.Now().Add(5 * time.Second)
	for { // the worker has gone back to sleep
		p.mu.Lock()
		s := p.sleeping
		p.mu.Unlock()
		if s == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the warm worker never slept")
		}
		time.Sleep(time.Millisecond)
	}
	var running sync.WaitGroup
	running.Add(max)
	release := make(chan struct{})
	for range max {
		p.Schedule(func() {
			running.Done()
			<-release
		})
	}
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		w, _ := p.Workers()
		t.Fatalf("%d workers for %d blocking jobs (max %d), %d queued", w, max, max, p.Queued())
	}
	close(release)
}

// Jobs scheduled first run before the jobs queued by Schedule, in their
// own order, and within the bound.
func TestPoolScheduleFirst(t *testing.T) {
	p := newWorkerPool(1, time.Second)
	defer p.close(time.Second)
	release := make(chan struct{})
	started := make(chan struct{})
	p.Schedule(func() { close(started); <-release }) // holds the one worker
	<-started
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	job := func(name string) func() {
		wg.Add(1)
		return func() {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			wg.Done()
		}
	}
	p.Schedule(job("b"))
	p.Schedule(job("c"))
	p.ScheduleFirst(job("first-1"))
	p.ScheduleFirst(job("first-2"))
	if q := p.Queued(); q != 4 {
		t.Errorf("Queued = %d, want 4", q)
	}
	close(release)
	wg.Wait()
	if got := strings.Join(order, " "); got != "first-1 first-2 b c" {
		t.Fatalf("ran %s", got)
	}
	if w, _ := p.Workers(); w > 1 {
		t.Fatalf("%d workers, bound 1", w)
	}
}
