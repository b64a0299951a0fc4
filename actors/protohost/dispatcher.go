package protohost

import (
	"sync"
	"sync/atomic"
	"time"
)

// workerPool is the actors' dispatcher: up to max goroutines that outlive
// one mailbox run, fed from a queue. protoactor's default dispatcher starts
// a goroutine per run, whose stack must grow again through the whole slice
// each time; a warm worker keeps its grown stack. It also bounds how many
// slices run at once. A worker idle for idle exits, so an idle process holds
// no workers. stop ends every goroutine of the pool (Shutdown).
type workerPool struct {
	work    chan func()
	max     int32
	workers atomic.Int32
	waiting atomic.Int32
	idle    time.Duration

	mu      sync.Mutex // guards closed and the Adds of running
	closed  bool
	running sync.WaitGroup // every goroutine the pool started
	stop    chan struct{}
}

func newWorkerPool(max int, idle time.Duration) *workerPool {
	return &workerPool{work: make(chan func(), 1<<14), max: int32(max), idle: idle, stop: make(chan struct{})}
}

// Schedule queues fn for a worker and starts one if none is free. It never
// blocks: with the queue full, fn runs on a goroutine of its own. After
// close it drops fn: the host is down.
func (p *workerPool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		p.spawn(fn)
		return
	}
	if p.waiting.Load() == 0 {
		if n := p.workers.Add(1); n <= p.max {
			if !p.spawn(p.worker) {
				p.workers.Add(-1)
			}
		} else {
			p.workers.Add(-1)
		}
	}
}

// spawn starts fn on a goroutine the pool waits for at close, unless it is
// closed.
func (p *workerPool) spawn(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.running.Add(1)
	go func() {
		defer p.running.Done()
		fn()
	}()
	return true
}

// close stops the workers and waits until every goroutine the pool started
// has returned (a job running now finishes first), for grace at most: a
// job that ignores its cancelled context, or a close called from a job,
// must not hang the caller. It reports whether they all returned.
func (p *workerPool) close(grace time.Duration) bool {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.running.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Throughput is how many messages one mailbox run may process.
func (p *workerPool) Throughput() int { return 300 }

func (p *workerPool) worker() {
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		p.waiting.Add(1)
		select {
		case fn := <-p.work:
			p.waiting.Add(-1)
			fn()
			t.Reset(p.idle)
		case <-t.C:
			p.waiting.Add(-1)
			p.workers.Add(-1)
			// A job queued while this worker was leaving still gets a worker.
			if len(p.work) > 0 && p.workers.Add(1) <= p.max {
				if !p.spawn(p.worker) {
					p.workers.Add(-1)
				}
			} else if len(p.work) > 0 {
				p.workers.Add(-1)
			}
			return
		case <-p.stop:
			p.waiting.Add(-1)
			p.workers.Add(-1)
			return
		}
	}
}
