package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infinity-runtime/infinity"
)

// ErrStopped is returned (wrapped) by Send after Close.
var ErrStopped = errors.New("local sender stopped")

// Deliverer is the actor host: Deliver puts msg into the mailbox of the thread
// msg.GroupID. An error means the host refused the message (for example
// because it is shutting down).
type Deliverer interface {
	Deliver(msg infinity.InputMessage) error
}

// Default retry backoff for timed deliveries the Deliverer refuses.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// Option configures a Sender.
type Option func(*Sender)

// WithClock sets the clock delays are measured on (default
// infinity.SystemClock{}).
func WithClock(c infinity.Clock) Option {
	return func(s *Sender) {
		if c != nil {
			s.clock = c
		}
	}
}

// WithLogger sets the logger failed timed deliveries are reported to
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Sender) {
		if l != nil {
			s.log = l
		}
	}
}

// WithBackoff sets the retry delay after a failed timed delivery: first
// initial, doubling up to max (defaults DefaultMinBackoff and
// DefaultMaxBackoff). Non-positive values keep the defaults.
func WithBackoff(initial, max time.Duration) Option {
	return func(s *Sender) {
		if initial > 0 {
			s.minBackoff = initial
		}
		if max > 0 {
			s.maxBackoff = max
		}
	}
}

// WithInbox makes the Sender durable: every message is put into inbox before
// Send returns, so it survives a crash, and Restore delivers or re-arms what
// the inbox still holds after a restart. A message leaves the inbox when its
// thread marks it processed, or when delivery refuses it for good. Without
// an inbox the Sender keeps messages in memory only.
func WithInbox(inbox infinity.Inbox) Option {
	return func(s *Sender) { s.inbox = inbox }
}

// WithLateness calls f with how late each timed message (one sent for a
// later time; not a retry) was taken for delivery after its time. f runs
// under the sender's lock: it must be quick (a histogram's Observe).
func WithLateness(f func(late time.Duration)) Option {
	return func(s *Sender) { s.lateness = f }
}

// Sender is the local infinity.InputSender. It is safe for concurrent use.
type Sender struct {
	d          Deliverer
	clock      infinity.Clock
	log        *slog.Logger
	minBackoff time.Duration
	maxBackoff time.Duration
	inbox      infinity.Inbox
	lateness   func(time.Duration)

	mu     sync.Mutex
	closed bool
	// pending holds every message waiting for its time (or for a retry),
	// keyed by (thread, message id); threads links each thread's entries so
	// that CancelThread touches only them.
	pending map[key]*entry
	threads map[infinity.ThreadID]*entry
	// due orders the armed entries by time: one clock timer (stop, set
	// for dueAt) serves them all, and its goroutine delivers every entry
	// that is due, so a burst of wake-ups costs one goroutine, not one each.
	due   dueHeap
	seq   uint64 // arm order, to break ties between equal times
	stop  func() bool
	dueAt time.Time
	gen   uint64 // the current timer's; a tick of an older one does nothing

	// next is the first due entry's time in Unix nanoseconds
	// (math.MaxInt64 with none), for Poll's check without the lock (the
	// clock timer may be set earlier: see setTimer); polling makes
	// concurrent Polls give way to the one running.
	next    atomic.Int64
	polling atomic.Bool

	// fdt is the clock timer on Linux with the system clock (see
	// fdTimer); fdStop is its disarm, the stop of a timer it set.
	fdt     *fdTimer
	fdStop  func() bool
	fdTried bool
}

var _ infinity.InputSender = (*Sender)(nil)

type key struct {
	thread infinity.ThreadID
	id     infinity.MessageID
}

// entry states.
const (
	armed      uint8 = iota // a timer will call fire
	delivering              // fire is calling the Deliverer
	gone                    // delivered, cancelled or closed: forget it
)

// entry is one pending message. Besides the message itself it holds only its
// due time and place in the sender's heap, the links of its thread's list
// and the retry state.
type entry struct {
	msg        infinity.InputMessage
	at         time.Time
	seq        uint64
	index      int    // in s.due while armed, else -1
	prev, next *entry // the thread's other pending entries
	backoff    time.Duration
	state      uint8
}

// dueHeap is a 4-ary min-heap of armed entries by (at, seq). Each slot
// holds its entry's key, so that sifting compares without following the
// entry pointers (a heap of 100,000 timers does not fit in the caches); a
// 4-ary heap is half as deep as a binary one.
type dueHeap []dueSlot

type dueSlot struct {
	at  time.Time
	seq uint64
	e   *entry
}

func (a *dueSlot) less(b *dueSlot) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

func (h dueHeap) up(i int) {
	x := h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !x.less(&h[p]) {
			break
		}
		h[i] = h[p]
		h[i].e.index = i
		i = p
	}
	h[i] = x
	x.e.index = i
}

func (h dueHeap) down(i int) {
	n := len(h)
	x := h[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if h[k].less(&h[m]) {
				m = k
			}
		}
		if !h[m].less(&x) {
			break
		}
		h[i] = h[m]
		h[i].e.index = i
		i = m
	}
	h[i] = x
	x.e.index = i
}

// push adds e, whose at and seq are set.
func (h *dueHeap) push(e *entry) {
	*h = append(*h, dueSlot{at: e.at, seq: e.seq, e: e})
	h.up(len(*h) - 1)
}

// remove takes out the entry at i and returns it.
func (h *dueHeap) remove(i int) *entry {
	old := *h
	e := old[i].e
	last := len(old) - 1
	if i != last {
		old[i] = old[last]
		old[i].e.index = i
	}
	old[last] = dueSlot{}
	*h = old[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	e.index = -1
	return e
}

// New returns a Sender delivering to d.
func New(d Deliverer, opts ...Option) *Sender {
	s := &Sender{
		d:          d,
		clock:      infinity.SystemClock{},
		log:        slog.Default(),
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		pending:    make(map[key]*entry),
		threads:    make(map[infinity.ThreadID]*entry),
	}
	s.next.Store(math.MaxInt64)
	for _, o := range opts {
		o(s)
	}
	if s.maxBackoff < s.minBackoff {
		s.maxBackoff = s.minBackoff
	}
	return s
}

// Send delivers msg to the thread msg.GroupID at at. A zero at, or one not
// after the clock's now, delivers synchronously and returns the Deliverer's
// error (wrapped). A later at arms a timer and returns nil; if a message with
// the same id is already pending for the thread, Send changes nothing and
// returns nil. Send returns ctx.Err() if ctx is done, an error wrapping
// infinity.ErrInvalid for a message without an id or failing
// InputMessage.Validate, and one wrapping ErrStopped after Close.
//
// With an inbox (WithInbox), the message is durable before Send returns
// nil: a message its thread already processed is not sent again, and an
// immediate delivery that fails for a reason other than a refusal for good
// is retried in the background instead of failing Send.
//
// The Sender keeps msg until it is delivered: the caller must not modify what
// its slices and json.RawMessage fields point to afterwards.
func (s *Sender) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if msg.ID == "" {
		return fmt.Errorf("local: send to %q: input message without an id: %w", msg.GroupID, infinity.ErrInvalid)
	}
	if err := msg.Validate(); err != nil {
		return fmt.Errorf("local: send %s: %w", msg.ID, err)
	}
	if s.inbox != nil {
		if s.isClosed() {
			return fmt.Errorf("local: send %s to %s: %w", msg.ID, msg.GroupID, ErrStopped)
		}
		fresh, err := s.inbox.Put(ctx, msg, at)
		if err != nil {
			return fmt.Errorf("local: send %s to %s: %w", msg.ID, msg.GroupID, err)
		}
		if !fresh {
			return nil // processed already: a resend
		}
	}
	return s.send(msg, at)
}

// Restore delivers, or arms timers for, every message the inbox holds, in
// the order they were put, and returns how many there were. Call it once
// after a restart, before new messages are sent; without an inbox it does
// nothing.
func (s *Sender) Restore(ctx context.Context) (int, error) {
	if s.inbox == nil {
		return 0, nil
	}
	waiting, err := s.inbox.Waiting(ctx)
	if err != nil {
		return 0, fmt.Errorf("local: restore: %w", err)
	}
	for _, q := range waiting {
		if err := s.send(q.Message, q.At); err != nil && !s.refused(err) {
			return 0, fmt.Errorf("local: restore: %w", err)
		}
	}
	return len(waiting), nil
}

func (s *Sender) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// send delivers msg now or arms its timer.
func (s *Sender) send(msg infinity.InputMessage, at time.Time) error {
	k := key{msg.GroupID, msg.ID}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("local: send %s to %s: %w", msg.ID, msg.GroupID, ErrStopped)
	}
	// Whether the message is due is decided under s.mu, and the timer is
	// set for at itself: a delay measured before a wait for the lock would
	// move the wake-up later by that wait.
	timed := !at.IsZero() && at.After(s.clock.Now())
	if _, ok := s.pending[k]; ok && timed {
		// The same message is already waiting: it will be delivered. (An
		// immediate send still goes now; a duplicate is harmless.)
		s.mu.Unlock()
		return nil
	}
	if timed {
		s.arm(k, &entry{msg: msg, index: -1}, at)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()

	err := s.d.Deliver(msg)
	switch {
	case err == nil:
		return nil
	case s.refused(err):
		s.forget(msg)
	case s.inbox != nil:
		// Durable already: retry in the background like a timer would.
		s.mu.Lock()
		if _, ok := s.pending[k]; !ok && !s.closed {
			e := &entry{msg: msg, index: -1}
			e.backoff = s.nextBackoff(0)
			s.arm(k, e, s.clock.Now().Add(e.backoff))
		}
		s.mu.Unlock()
		return nil
	}
	return fmt.Errorf("local: deliver %s to %s: %w", msg.ID, msg.GroupID, err)
}

// arm links e and puts it in the due heap (s.mu held).
func (s *Sender) arm(k key, e *entry, at time.Time) {
	s.link(k, e)
	s.schedule(e, at)
}

// schedule puts an armed entry into the due heap, due at at, and moves
// the clock timer earlier if e is now the first due (s.mu held). Setting
// the timer under s.mu is safe: AfterFunc never runs f synchronously, and
// tick takes s.mu.
func (s *Sender) schedule(e *entry, at time.Time) {
	e.state = armed
	e.at = at
	s.seq++
	e.seq = s.seq
	s.due.push(e)
	if e.index == 0 {
		s.setTimer()
	}
}

// setTimer sets the clock timer for the first due entry, or stops it when
// none is left (s.mu held). A timer already set for that time or earlier
// stays: when it fires early it finds nothing due and sets the timer
// again, which costs less than re-arming at every delivery of a busy
// stretch (a Poll that takes the first entries moves the first due time
// later each time).
func (s *Sender) setTimer() {
	if s.stop != nil && len(s.due) > 0 && !s.dueAt.After(s.due[0].at) {
		s.next.Store(s.due[0].at.UnixNano())
		return
	}
	s.stopTimer()
	if len(s.due) == 0 {
		s.next.Store(math.MaxInt64)
		return
	}
	s.dueAt = s.due[0].at
	s.next.Store(s.dueAt.UnixNano())
	delay := max(s.dueAt.Sub(s.clock.Now()), 0)
	if t := s.timerfd(); t != nil {
		err := t.arm(delay)
		if err == nil {
			s.stop = s.fdStop
			return
		}
		s.log.Error("local sender: could not set the timerfd; using a runtime timer", slog.Any("error", err))
		s.fdt.close()
		s.fdt = nil
	}
	gen := s.gen
	s.stop = s.clock.AfterFunc(delay, func() { s.tick(gen) })
}

// timerfd returns the sender's timerfd, creating it with the first timer
// when the clock is the system clock; nil where there is none (other
// clocks, other systems, or creating it failed). s.mu held.
func (s *Sender) timerfd() *fdTimer {
	if s.fdt != nil || s.fdTried {
		return s.fdt
	}
	s.fdTried = true
	if _, ok := s.clock.(infinity.SystemClock); !ok {
		return nil
	}
	t, err := newFDTimer(s.fdExpired)
	if err != nil {
		s.log.Debug("local sender: no timerfd; using runtime timers", slog.Any("error", err))
		return nil
	}
	s.fdt, s.fdStop = t, t.disarm
	return t
}

// stopTimer stops the clock timer; if it fired already, its tick will find
// a newer generation and do nothing (s.mu held).
func (s *Sender) stopTimer() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	s.gen++
}

// tick runs on the clock timer (AfterFunc): it takes every due entry out
// of the heap, sets the timer for the next one and delivers them in order.
func (s *Sender) tick(gen uint64) {
	s.mu.Lock()
	s.expired(gen != s.gen)
}

// fdExpired is tick for the timerfd (which has no generations: an expiry
// that raced a re-arm finds nothing due and re-arms).
func (s *Sender) fdExpired() {
	s.mu.Lock()
	s.expired(false)
}

// expired delivers what is due when the clock timer fires, unless the
// sender is closed or the timer was stale (replaced or stopped). s.mu is
// held on entry and released.
func (s *Sender) expired(stale bool) {
	if s.closed || stale {
		s.mu.Unlock()
		return
	}
	s.deliverDue(true)
}

// deliverDue takes every due entry out of the heap, sets the clock timer
// for the next one (the current one has expired when expired is set),
// releases s.mu (held on entry) and delivers the entries in due order.
func (s *Sender) deliverDue(expired bool) {
	batch := s.takeDue()
	if expired {
		s.stop = nil
		s.gen++
	}
	s.setTimer()
	s.mu.Unlock()
	for _, e := range batch {
		s.fire(e)
	}
}

// takeDue takes every due entry out of the heap, in due order (s.mu held).
func (s *Sender) takeDue() []*entry {
	now := s.clock.Now()
	var batch []*entry
	for len(s.due) > 0 && !s.due[0].at.After(now) {
		e := s.due.remove(0)
		e.state = delivering
		if s.lateness != nil && e.backoff == 0 {
			s.lateness(now.Sub(e.at))
		}
		batch = append(batch, e)
	}
	return batch
}

// Poll delivers, in the caller's goroutine, the messages that are due if
// the sender's timer has not delivered them yet; when none is due it costs
// an atomic load and a clock reading. A host that runs work on a pool of
// goroutines calls it between pieces of work (actors.Runtime does, after
// each slice): Go runs a timer only when a processor schedules, so on a
// busy process (both processors of a small machine running slices, or
// one lent to the garbage collector's mark worker for 10-20 ms) the timer
// alone can fire many milliseconds late, while the pool keeps finishing
// work. Concurrent Polls do not wait for each other: one delivers, the
// others return.
func (s *Sender) Poll() {
	next := s.next.Load()
	if next == math.MaxInt64 || s.clock.Now().UnixNano() < next || !s.polling.CompareAndSwap(false, true) {
		return
	}
	defer s.polling.Store(false)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.deliverDue(false)
}

// refused reports whether a Deliverer error is final: retrying cannot help.
func (s *Sender) refused(err error) bool {
	return errors.Is(err, infinity.ErrInvalid) || errors.Is(err, infinity.ErrNotImplemented)
}

// forget takes a refused message out of the inbox.
func (s *Sender) forget(msg infinity.InputMessage) {
	if s.inbox == nil {
		return
	}
	if err := s.inbox.Drop(context.Background(), msg.GroupID, msg.ID); err != nil {
		s.log.Error("local sender: could not drop a refused message from the inbox",
			slog.String("thread", string(msg.GroupID)), slog.String("message", string(msg.ID)), slog.Any("error", err))
	}
}

// fire delivers a due entry that tick took out of the heap; on failure it
// puts the entry back with backoff.
func (s *Sender) fire(e *entry) {
	s.mu.Lock()
	if s.closed || e.state != delivering {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	err := s.d.Deliver(e.msg)

	s.mu.Lock()
	if e.state == gone { // cancelled or closed while delivering
		s.mu.Unlock()
		return
	}
	if err == nil {
		s.unlink(e)
		s.mu.Unlock()
		return
	}
	if s.refused(err) {
		// Retrying cannot help: drop it, loudly.
		s.unlink(e)
		s.mu.Unlock()
		s.forget(e.msg)
		s.log.Error("local sender: delivery refused for good; message dropped",
			slog.String("thread", string(e.msg.GroupID)),
			slog.String("message", string(e.msg.ID)),
			slog.Any("error", err))
		return
	}
	e.backoff = s.nextBackoff(e.backoff)
	retry := e.backoff
	s.schedule(e, s.clock.Now().Add(retry))
	s.mu.Unlock()

	s.log.Warn("local sender: delivery failed, will retry",
		slog.String("thread", string(e.msg.GroupID)),
		slog.String("message", string(e.msg.ID)),
		slog.Duration("retry_in", retry),
		slog.Any("error", err))
}

// nextBackoff returns the retry delay that follows prev (0 before the first
// retry).
func (s *Sender) nextBackoff(prev time.Duration) time.Duration {
	if prev <= 0 {
		return s.minBackoff
	}
	if prev >= s.maxBackoff/2 {
		return s.maxBackoff
	}
	return 2 * prev
}

// link registers e (s.mu held).
func (s *Sender) link(k key, e *entry) {
	s.pending[k] = e
	head := s.threads[k.thread]
	e.next = head
	if head != nil {
		head.prev = e
	}
	s.threads[k.thread] = e
}

// unlink forgets e and takes it out of the due heap (s.mu held).
func (s *Sender) unlink(e *entry) {
	e.state = gone
	if e.index >= 0 {
		first := e.index == 0
		s.due.remove(e.index)
		if first {
			s.setTimer()
		}
	}
	delete(s.pending, key{e.msg.GroupID, e.msg.ID})
	if e.prev != nil {
		e.prev.next = e.next
	} else if e.next != nil {
		s.threads[e.msg.GroupID] = e.next
	} else {
		delete(s.threads, e.msg.GroupID)
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
}

// Pending returns how many messages are waiting for their time or for a
// retry (armed in the due heap, or being delivered).
func (s *Sender) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Queued returns the message of thread with id id while it waits for its
// time or a retry (or is being delivered), and whether there is one.
func (s *Sender) Queued(thread infinity.ThreadID, id infinity.MessageID) (infinity.InputMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pending[key{thread, id}]
	if !ok {
		return infinity.InputMessage{}, false
	}
	return e.msg, true
}

// CancelThread stops the pending timers of thread id and forgets their
// messages; it returns how many there were. The host calls it when the thread
// closes. A delivery already running is not interrupted, but is not retried.
func (s *Sender) CancelThread(id infinity.ThreadID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for e := s.threads[id]; e != nil; {
		next := e.next
		s.unlink(e)
		e = next
		n++
	}
	return n
}

// Close stops every pending timer and forgets the messages; later Sends fail
// with ErrStopped and timers that fire anyway do nothing. Deliveries already
// running are not waited for. Close may be called more than once.
func (s *Sender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.stopTimer()
	s.next.Store(math.MaxInt64)
	if s.fdt != nil {
		s.fdt.close()
	}
	for _, e := range s.pending {
		e.state = gone
		e.index = -1
		e.prev, e.next = nil, nil
	}
	s.pending = nil
	s.threads = nil
	s.due = nil
}
