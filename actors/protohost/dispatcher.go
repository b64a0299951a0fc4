package protohost

import (
	"sync"
	"time"
)

// workerPool is the actors' dispatcher: up to max goroutines that outlive
// one mailbox run, fed from a queue. protoactor's default dispatcher starts
// a goroutine per run, whose stack must grow again through the whole slice
// each time; a warm worker keeps its grown stack. It bounds how many
// mailbox runs (slices) do work at once: never more than max workers, with
// the excess queued (Queued), however many runs are scheduled. A worker
// idle for idle exits, so an idle process holds no workers. close ends
// every goroutine of the pool (Shutdown).
//
// A job that is about to wait for a long time (a model's answer) leaves
// the count of workers with detach, so that another worker may start on
// the queue, and comes back with attach, which waits while max others
// work: the waiting costs a goroutine, not a worker.
type workerPool struct {
	max  int
	idle time.Duration

	mu sync.Mutex
	// queue holds the jobs no worker took yet; first, those that go
	// before it (ScheduleFirst).
	queue, first jobs
	// working counts the workers counted against max; detached, the jobs
	// that left the count while they wait (their goroutines are in a
	// worker's loop, and count again once attach returns).
	working, detached int
	// attaching counts jobs waiting in attach: they go before the queue
	// (a worker that finishes a job gives them its place).
	attaching int
	// sleeping counts workers waiting for a job; woken counts the
	// wake-ups sent to them and not yet taken (each wakes one).
	sleeping, woken int
	wake            chan struct{}
	// freed is signalled when a worker leaves the count.
	freed   *sync.Cond
	closed  bool
	running sync.WaitGroup // every goroutine the pool started
	stop    chan struct{}
}

func newWorkerPool(max int, idle time.Duration) *workerPool {
	p := &workerPool{max: max, idle: idle, wake: make(chan struct{}, max), stop: make(chan struct{})}
	p.freed = sync.NewCond(&p.mu)
	return p
}

// Schedule queues fn for a worker and starts one if none is free and fewer
// than max work. It never blocks and never starts more than max. After
// close it drops fn: the host is down.
func (p *workerPool) Schedule(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.queue.push(fn)
	p.serveLocked()
}

// ScheduleFirst is Schedule for a job that goes before every job queued by
// Schedule (in the order ScheduleFirst was called): slices that resume go
// before slices that begin.
func (p *workerPool) ScheduleFirst(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.first.push(fn)
	p.serveLocked()
}

// serveLocked gets the queued jobs workers: sleeping ones first, then new
// ones while fewer than max work and no detached job waits to come back.
func (p *workerPool) serveLocked() {
	queued := p.queuedLocked()
	for ; queued > 0 && p.sleeping > p.woken; queued-- {
		p.wakeOneLocked()
	}
	for ; queued > 0 && p.working < p.max && p.attaching == 0; queued-- {
		p.working++
		p.running.Add(1)
		go p.worker()
	}
}

// wakeOneLocked wakes one sleeping worker (p.sleeping > p.woken).
func (p *workerPool) wakeOneLocked() {
	p.woken++
	p.wake <- struct{}{} // never blocks: woken <= sleeping <= max, its capacity
}

// Queued is how many scheduled jobs wait for a worker.
func (p *workerPool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queuedLocked()
}

func (p *workerPool) queuedLocked() int { return p.first.len() + p.queue.len() }

// Workers is how many workers are counted against max, and how many jobs
// are detached.
func (p *workerPool) Workers() (working, detached int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.working, p.detached
}

// detach takes the calling job out of the count of workers (it is about to
// wait), and starts a worker for the queue if one may start now.
func (p *workerPool) detach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.working--
	p.detached++
	if p.attaching > 0 {
		p.freed.Signal()
		return
	}
	if !p.closed {
		p.serveLocked()
	}
}

// attach brings a detached job back into the count, waiting while max
// workers are counted. After close it returns at once.
func (p *workerPool) attach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attaching++
	for !p.closed && p.working >= p.max {
		if p.sleeping > p.woken { // a worker with nothing to do leaves for this job
			p.wakeOneLocked()
		}
		p.freed.Wait()
	}
	p.attaching--
	p.detached--
	p.working++
	if p.attaching == 0 && !p.closed {
		p.serveLocked() // places freed while jobs came back may be unused
	}
}

// leaveLocked takes an exiting worker out of the count.
func (p *workerPool) leaveLocked() {
	p.working--
	if p.attaching > 0 {
		p.freed.Signal()
	}
}

// pop takes the next job: the oldest of first, else of queue (p.mu held).
func (p *workerPool) pop() (func(), bool) {
	if fn, ok := p.first.pop(); ok {
		return fn, true
	}
	return p.queue.pop()
}

// jobs is a queue of jobs, oldest at head.
type jobs struct {
	q    []func()
	head int
}

func (j *jobs) push(fn func()) { j.q = append(j.q, fn) }

func (j *jobs) len() int { return len(j.q) - j.head }

func (j *jobs) pop() (func(), bool) {
	if j.head == len(j.q) {
		return nil, false
	}
	fn := j.q[j.head]
	j.q[j.head] = nil
	j.head++
	if j.head == len(j.q) {
		j.q, j.head = j.q[:0], 0
	} else if j.head > 1024 && j.head*2 > len(j.q) {
		j.q, j.head = append(j.q[:0], j.q[j.head:]...), 0
	}
	return fn, true
}

// close stops the workers and waits until every goroutine the pool started
// has returned (a job running now finishes first), for grace at most: a
// job that ignores its cancelled context, or a close called from a job,
// must not hang the caller. It reports whether they all returned.
func (p *workerPool) close(grace time.Duration) bool {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.queue, p.first = jobs{}, jobs{}
		close(p.stop)
		p.freed.Broadcast()
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
	defer p.running.Done()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	p.mu.Lock()
	for {
		if p.attaching > 0 && p.working >= p.max { // a detached job takes this place
			p.leaveLocked()
			p.mu.Unlock()
			return
		}
		if fn, ok := p.pop(); ok {
			p.mu.Unlock()
			fn()
			t.Reset(p.idle)
			p.mu.Lock()
			continue
		}
		if p.closed {
			p.leaveLocked()
			p.mu.Unlock()
			return
		}
		p.sleeping++
		p.mu.Unlock()
		select {
		case <-p.wake:
			p.mu.Lock()
			p.sleeping--
			p.woken--
		case <-t.C:
			p.mu.Lock()
			p.sleeping--
			if p.woken > p.sleeping { // a wake-up was sent for this worker: take it
				select {
				case <-p.wake:
					p.woken--
					t.Reset(p.idle)
					continue
				default:
				}
			}
			if p.queuedLocked() == 0 { // a job queued meanwhile still gets this worker
				p.leaveLocked()
				p.mu.Unlock()
				return
			}
			t.Reset(p.idle)
		case <-p.stop:
			p.mu.Lock()
			p.sleeping--
		}
	}
}
