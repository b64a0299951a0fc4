package protohost

import (
	"sync/atomic"
	"time"
)

// workerPool is the actors' dispatcher: up to max goroutines that outlive
// one mailbox run, fed from a queue. protoactor's default dispatcher starts
// a goroutine per run, whose stack must grow again through the whole slice
// each time; a warm worker keeps its grown stack. It also bounds how many
// slices run at once. A worker idle for idle exits, so an idle process holds
// no workers.
type workerPool struct {
	work    chan func()
	max     int32
	workers atomic.Int32
	waiting atomic.Int32
	idle    time.Duration
}

func newWorkerPool(max int, idle time.Duration) *workerPool {
	return &workerPool{work: make(chan func(), 1<<14), max: int32(max), idle: idle}
}

// Schedule queues fn for a worker and starts one if none is free. It never
// blocks: with the queue full, fn runs on a goroutine of its own.
func (p *workerPool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		go fn()
		return
	}
	if p.waiting.Load() == 0 {
		if n := p.workers.Add(1); n <= p.max {
			go p.worker()
		} else {
			p.workers.Add(-1)
		}
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
				go p.worker()
			} else if len(p.work) > 0 {
				p.workers.Add(-1)
			}
			return
		}
	}
}
