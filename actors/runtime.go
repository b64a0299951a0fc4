package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// ErrStopped is returned by a Runtime that is shutting down.
var ErrStopped = errors.New("runtime stopped")

// Runtime runs threads. With a Host (in the daemon, protoactor-go actors
// from package actors/protohost) each active thread is an actor, created on
// the first message and stopped (passivated) after Config.Idle without
// input. A passivated thread holds no goroutine and no memory here; its
// state is in the stores. Without a Host (on Lambda) the Runtime spawns no
// actors and slices run only through Step, in the caller's goroutine.
//
// The thread's mailbox is a queue kept by the Runtime, so a batch of waiting
// messages can be taken whole, and activation and passivation are decided
// under one lock: a message is never sent to an actor that is stopping.
type Runtime struct {
	cfg    Config
	eng    *engine
	sender infinity.InputSender
	poller Poller // the sender, if it is one
	host   Host   // nil: no actors, only Step
	ctx    context.Context
	cancel context.CancelFunc
	// sliceCtx is ctx for the slices the host runs, marked so (onHost):
	// their model calls suspend them, and a Yielder host lets them step
	// out of its workers while they wait for a limit.
	sliceCtx context.Context

	mu     sync.Mutex
	active map[infinity.ThreadID]*mailbox
	// newRoots are roots Start just created, not active yet: their first
	// slice has no outbox to send nor input applied before (see activate).
	newRoots map[infinity.ThreadID]struct{}
	busy     int
	stopped  bool
	// suspended counts the slices stopped at a model call whose answer is
	// not in yet.
	suspended atomic.Int64
	idle      *sync.Cond
	// closeOnce makes Close's teardown happen once, however often it is
	// called.
	closeOnce sync.Once
	watchers  watchers // Follow's and Wait's
	failures  failures // Wait's
}

type mailbox struct {
	id       infinity.ThreadID
	actor    Actor // nil without a host
	queue    []infinity.InputMessage
	signaled bool // a wake is on its way to the actor
	running  bool
	drain    bool // the next slice first sends what the outbox still holds
	failures int
	// resume is a slice that stopped at a model call and has its answer:
	// the thread's next run (work) goes on with it.
	resume *suspension
	// calling is when the thread's slice stopped at its model call, until
	// the answer is in (zero otherwise).
	calling time.Time
	woken   bool // a wake came while a slice ran (signal)
	// recheck is the next look of a thread that waits for the user
	// (ErrAwaitingUser); nil when it does not wait.
	recheck *time.Timer
	timer   *time.Timer // the idle timer
}

// awaitingUserRecheck is how often a thread waiting for the user runs
// again when no wake comes (a wake lost to a restart, say).
const awaitingUserRecheck = 5 * time.Minute

// AppliedKeeper is a ConversationStore that keeps the applied records of
// its commits where reading them costs no more than the StateStore's
// processed marks, and whose commit consumes the applied messages from its
// durable inbox (persistence/disk): New then sets Config.AppliedOnly.
type AppliedKeeper interface {
	KeepsApplied() bool
}

// New builds a runtime. Call Close to stop it. Abilities of the stores are
// detected (AppliedKeeper); the rest is Config's.
func New(cfg Config) (*Runtime, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if k, ok := cfg.Conversations.(AppliedKeeper); ok && k.KeepsApplied() {
		cfg.AppliedOnly = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Runtime{
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		active:   make(map[infinity.ThreadID]*mailbox),
		newRoots: make(map[infinity.ThreadID]struct{}),
	}
	rt.idle = sync.NewCond(&rt.mu)
	// Follow and Wait see every event after the configured Observer.
	observe := cfg.Observer
	cfg.Observer = func(ev Event) {
		if observe != nil {
			observe(ev)
		}
		rt.failures.observe(ev)
		rt.watchers.publish(ev, ctx.Done())
	}
	rt.cfg = cfg
	rt.sender = cfg.Sender(rt)
	rt.poller, _ = rt.sender.(Poller)
	rt.eng = newEngine(cfg, rt.sender)
	rt.sliceCtx = rt.ctx
	if cfg.Host != nil {
		rt.host = cfg.Host(HostOptions{Logger: cfg.Logger, MaxConcurrentSlices: cfg.MaxConcurrentSlices})
		y, _ := rt.host.(Yielder)
		rt.sliceCtx = onHost(rt.ctx, y)
	}
	return rt, nil
}

// ModelCalls says how many model streams are in flight and how many
// slices wait for a place among them.
func (rt *Runtime) ModelCalls() ModelCalls {
	return ModelCalls{InFlight: len(rt.eng.models), Waiting: int(rt.eng.waiting.Load()), Max: cap(rt.eng.models)}
}

// SetModelLimit sets the limit of a provider ("openai") or a model
// ("openai/gpt-4.1"); a zero limit removes it. Calls already waiting are
// granted under the new limit. It returns ErrInvalid for an empty key or a
// negative bound.
func (rt *Runtime) SetModelLimit(key string, lim ModelLimit) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || lim.Concurrent < 0 || lim.RPM < 0 || lim.TPM < 0 {
		return fmt.Errorf("model limit %q (%s): want provider or provider/model and bounds of zero or more: %w", key, lim, infinity.ErrInvalid)
	}
	rt.eng.limits.set(key, lim)
	return nil
}

// ModelLimits returns the limits set, by provider or model.
func (rt *Runtime) ModelLimits() map[string]ModelLimit { return rt.eng.limits.current() }

// WaitingForModel returns the limit (a provider or model) a call of the
// thread waits for its turn at, if one does.
func (rt *Runtime) WaitingForModel(id infinity.ThreadID) (string, bool) {
	return rt.eng.limits.waitingFor(id)
}

// CallingModel reports whether the thread's slice is stopped at a model
// call (waiting for a place among the calls in flight, a rate limit, or
// the answer; see Config.MaxModelCalls), and since when.
func (rt *Runtime) CallingModel(id infinity.ThreadID) (since time.Time, ok bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if mb := rt.active[id]; mb != nil && !mb.calling.IsZero() {
		return mb.calling, true
	}
	return time.Time{}, false
}

// HostStats says how busy the host is: zero when it does not say
// (it has no Stats method) or there is none.
func (rt *Runtime) HostStats() HostStats {
	var st HostStats
	if s, ok := rt.host.(interface{ Stats() HostStats }); ok {
		st = s.Stats()
	}
	st.Detached += int(rt.suspended.Load())
	return st
}

// Sender returns the InputSender the runtime's threads send with.
func (rt *Runtime) Sender() infinity.InputSender { return rt.sender }

// Deliver puts msg into its thread's mailbox and activates the thread's
// actor if it is passivated. It returns ErrInvalid for a malformed message,
// ErrNotImplemented for input kinds this engine does not handle yet,
// ErrNoHost for a runtime without a Host, and ErrStopped after Close.
func (rt *Runtime) Deliver(msg infinity.InputMessage) error {
	if err := supported(msg); err != nil {
		return err
	}
	if rt.host == nil {
		return fmt.Errorf("deliver to %s: %w", msg.GroupID, ErrNoHost)
	}
	rt.mu.Lock()
	if rt.stopped {
		rt.mu.Unlock()
		return fmt.Errorf("deliver to %s: %w", msg.GroupID, ErrStopped)
	}
	mb := rt.activate(msg.GroupID)
	mb.queue = append(mb.queue, msg)
	a := rt.signal(mb)
	rt.mu.Unlock()
	wake(a)
	return nil
}

// activate returns the thread's mailbox, spawning its actor if it is
// passivated; a new actor first drains what the outbox may still hold.
// Without a host the mailbox has no actor. rt.mu is held.
func (rt *Runtime) activate(id infinity.ThreadID) *mailbox {
	mb := rt.active[id]
	if mb == nil {
		// A root Start just created skips the first slice's look at the
		// outbox and the applied records: no slice of it ran yet.
		_, created := rt.newRoots[id]
		delete(rt.newRoots, id)
		mb = &mailbox{id: id, drain: !created}
		if rt.host != nil {
			mb.actor = rt.host.Spawn(id, func() { rt.work(mb) })
		}
		rt.active[id] = mb
	}
	return mb
}

// Supported reports whether this engine can apply msg: ErrInvalid for a
// malformed message, ErrNotImplemented for input kinds it does not handle
// yet. Deliver and Step check every message with it.
func Supported(msg infinity.InputMessage) error { return supported(msg) }

func supported(msg infinity.InputMessage) error {
	if msg.ID == "" {
		return fmt.Errorf("deliver: message without an id: %w", infinity.ErrInvalid)
	}
	return msg.Validate()
}

// signal marks the mailbox signaled and returns its actor for the caller
// to wake once it has released rt.mu (nil: a wake is already on its way,
// the actor runs, or there is no host, which has no actor to wake nor, as
// Deliver refuses input, anything queued for one). Waking outside the lock
// keeps it short: every delivery, slice start and slice end takes it.
// Marking under the lock is what matters: no other wake is sent, and the
// mailbox is not passivated, until the actor runs. rt.mu is held.
func (rt *Runtime) signal(mb *mailbox) Actor {
	if mb.running {
		mb.woken = true // a slice waiting for the user looks again at once
	}
	if !mb.signaled && !mb.running && mb.actor != nil {
		mb.signaled = true
		return mb.actor
	}
	return nil
}

// wake wakes a, as signal returned it (nil: nothing to do).
func wake(a Actor) {
	if a != nil {
		a.Wake()
	}
}

// work is the actor's run function: it runs slices until the mailbox is
// empty. A failed slice puts its batch back and is retried with backoff:
// nothing acknowledged is dropped.
//
// A slice may end its run on the worker early, leaving the rest for later
// (see sliceEnd), so that a pool sized for the processors is not held by
// slices that wait while other threads' wake-ups queue behind them:
//   - a slice whose commit is still on its way to disk: the rest of it runs
//     on a goroutine of its own (finish);
//   - a slice stopped at a model call: the call runs on a goroutine of its
//     own, and its answer wakes the actor again to go on with the slice
//     (suspend).
//
// The thread stays running (and counted busy) until its slice ended; it then
// runs again if more input came meanwhile.
func (rt *Runtime) work(mb *mailbox) {
	id := mb.id
	rt.mu.Lock()
	mb.signaled = false
	asleep := false
	for mb.resume != nil || len(mb.queue) > 0 || mb.drain {
		var (
			batch []infinity.InputMessage
			res   sliceEnd
		)
		resumed := mb.resume != nil
		if resumed {
			s := mb.resume
			batch = s.batch
			mb.resume = nil
			rt.mu.Unlock()
			res = rt.guarded(id, s.resume)
		} else {
			if rt.stopped {
				break
			}
			var drain bool
			batch, drain = mb.queue, mb.drain
			mb.queue, mb.drain, mb.running, mb.woken = nil, false, true, false
			rt.busy++
			rt.mu.Unlock()
			res = rt.runSlice(id, batch, drain)
		}
		if res.finish != nil {
			go rt.finish(mb, batch, res.finish)
			rt.poll()
			return
		}
		if res.susp != nil {
			go rt.suspend(mb, res.susp)
			rt.poll()
			return
		}
		if resumed {
			// The resume ran ahead of the queued runs (RunFirst); the
			// thread's next batch queues behind them like any other.
			rt.endRun(mb, batch, res.asleep, res.err)
			return
		}
		asleep = res.asleep
		rt.mu.Lock()
		if !rt.ended(mb, batch, res.err) {
			break
		}
	}
	rt.park(mb, asleep, nil)
}

// suspend makes a suspended slice's model call (on a goroutine of its own),
// then has a worker go on with the slice: before the runs queued when the
// host is a FirstRunner, through the thread's actor otherwise. After Close
// began, when no worker may come, the slice goes on here.
func (rt *Runtime) suspend(mb *mailbox, s *suspension) {
	rt.call(mb, s)
	rt.mu.Lock()
	if rt.stopped {
		rt.mu.Unlock()
		rt.settle(mb, s)
		return
	}
	mb.resume = s // the thread is still running: nothing else wakes or passivates it
	rt.mu.Unlock()
	if f, ok := rt.host.(FirstRunner); ok {
		f.RunFirst(func() { rt.work(mb) })
		return
	}
	mb.actor.Wake()
}

// call makes a suspended slice's model call, counted in HostStats.Detached
// and said by CallingModel meanwhile.
func (rt *Runtime) call(mb *mailbox, s *suspension) {
	rt.suspended.Add(1)
	rt.mu.Lock()
	mb.calling = time.Now()
	rt.mu.Unlock()
	defer func() {
		rt.mu.Lock()
		mb.calling = time.Time{}
		rt.mu.Unlock()
		rt.suspended.Add(-1)
	}()
	s.call()
}

// settle goes on with a suspended slice on this goroutine until it ends:
// after Close began, when no worker may come.
func (rt *Runtime) settle(mb *mailbox, s *suspension) {
	for {
		res := rt.guarded(mb.id, s.resume)
		switch {
		case res.susp != nil:
			s = res.susp
			rt.call(mb, s)
			continue
		case res.finish != nil:
			rt.finish(mb, s.batch, res.finish)
			return
		}
		rt.endRun(mb, s.batch, res.asleep, res.err)
		return
	}
}

// settleSuspended ends the slices whose model answered before Close began
// and that no worker took since: Close calls it once the host is down,
// whose queued runs are dropped.
func (rt *Runtime) settleSuspended() {
	rt.mu.Lock()
	var left []*mailbox
	for _, mb := range rt.active {
		if mb.resume != nil {
			left = append(left, mb)
		}
	}
	rt.mu.Unlock()
	for _, mb := range left {
		rt.mu.Lock()
		s := mb.resume
		mb.resume = nil
		rt.mu.Unlock()
		if s != nil {
			rt.settle(mb, s)
		}
	}
}

// finish completes a slice that work left to it and wakes the actor again
// if input is waiting.
func (rt *Runtime) finish(mb *mailbox, batch []infinity.InputMessage, finish func() (bool, error)) {
	asleep, err := rt.guard(mb.id, finish)
	rt.endRun(mb, batch, asleep, err)
}

// endRun books the end of a slice that ended outside work's loop (rt.mu
// not held) and has the thread run again if input waits.
func (rt *Runtime) endRun(mb *mailbox, batch []infinity.InputMessage, asleep bool, err error) {
	rt.mu.Lock()
	var next Actor
	if rt.ended(mb, batch, err) && (len(mb.queue) > 0 || mb.drain) && !rt.stopped {
		next = rt.signal(mb)
	}
	rt.park(mb, asleep, next)
}

// ended books the end of a slice of mb (rt.mu held): a failed one puts its
// batch back and schedules a retry. It reports whether the thread may run
// its next batch now (false after a failure: the retry waits).
func (rt *Runtime) ended(mb *mailbox, batch []infinity.InputMessage, err error) bool {
	rt.busy--
	mb.running = false
	if err == nil {
		mb.failures = 0
		mb.stopAwaiting()
		return true
	}
	id := mb.id
	mb.queue = append(batch, mb.queue...)
	mb.drain = true
	if rt.stopped {
		// Close cut the slice short (its context, the sender or the store
		// went first): nothing to retry now. Its input is still queued
		// (durably, in a durable runtime) for the next start.
		rt.cfg.Logger.Info("slice cut short by Close; its input runs at the next start", "thread", id)
		return false
	}
	if errors.Is(err, infinity.ErrAwaitingUser) {
		// Not a failure: the thread waits for a person, and a wake (Wake)
		// when they have acted; it looks again now and then meanwhile. A
		// wake that came while this slice ran (the person acted meanwhile)
		// makes it look again at once.
		if mb.recheck == nil {
			rt.cfg.Logger.Info("thread waits for the user", "thread", id, "why", err)
		}
		mb.failures = 0
		if mb.recheck == nil {
			mb.recheck = time.AfterFunc(awaitingUserRecheck, func() { rt.poke(id) })
		} else {
			mb.recheck.Reset(awaitingUserRecheck)
		}
		again := mb.woken
		mb.woken = false
		return again
	}
	mb.stopAwaiting()
	mb.failures++
	wait := min(50*time.Millisecond<<min(mb.failures, 10), 30*time.Second)
	rt.mu.Unlock()
	rt.eng.emitErr(id, fmt.Errorf("%w (retrying in %s)", err, wait))
	time.AfterFunc(wait, func() { rt.poke(id) })
	rt.mu.Lock()
	return false
}

// park ends an actor run (rt.mu held; released): the actor next, if
// any, is woken for the input that waits; otherwise an idle thread rests
// (passivates at once if asleep). Waiters learn that a slice ended.
func (rt *Runtime) park(mb *mailbox, asleep bool, next Actor) {
	var stop Actor
	if next == nil && !mb.running && len(mb.queue) == 0 {
		stop = rt.rest(mb, asleep)
	}
	// Broadcast on every slice end: WaitIdle waits for busy == 0, Step for
	// the thread's own slice.
	rt.idle.Broadcast()
	rt.mu.Unlock()
	wake(next)
	if stop != nil {
		stop.Stop()
	}
	rt.poll()
}

func (rt *Runtime) poll() {
	if rt.poller != nil {
		rt.poller.Poll()
	}
}

// Poller is a sender whose timers run in this process
// (mailbox/local.Sender). A Runtime whose sender is one calls Poll after
// each actor run of slices, so that wake-ups that are due go out from the
// runtime's own busy goroutines even when Go runs the sender's timer late
// (it runs timers only when a processor schedules).
type Poller interface {
	// Poll delivers the messages that are due, and returns at once when
	// none is.
	Poll()
}

// Step runs one slice for a batch of one thread's messages in the caller's
// goroutine and returns its error instead of retrying it: the path of the
// Lambda handler, where SQS owns redelivery (a failed batch comes back
// after the visibility timeout). It first sends what the thread's outbox
// still holds, and waits while the thread runs a slice of its own. The
// slice runs on ctx, so the invocation's deadline bounds it. It returns
// ErrInvalid for an empty batch or one that mixes threads, the errors of
// Deliver for unsupported messages, and ErrStopped after Close. It is the
// one way to run a slice on a Runtime without a Host.
func (rt *Runtime) Step(ctx context.Context, batch []infinity.InputMessage) error {
	if len(batch) == 0 {
		return fmt.Errorf("step: empty batch: %w", infinity.ErrInvalid)
	}
	id := batch[0].GroupID
	for _, msg := range batch {
		if msg.GroupID != id {
			return fmt.Errorf("step: a batch for %s holds a message for %s: %w", id, msg.GroupID, infinity.ErrInvalid)
		}
		if err := supported(msg); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() {
		rt.mu.Lock()
		rt.idle.Broadcast()
		rt.mu.Unlock()
	})
	defer stop()
	rt.mu.Lock()
	var mb *mailbox
	for {
		if rt.stopped {
			rt.mu.Unlock()
			return fmt.Errorf("step %s: %w", id, ErrStopped)
		}
		if err := ctx.Err(); err != nil {
			rt.mu.Unlock()
			return fmt.Errorf("step %s: %w", id, err)
		}
		mb = rt.activate(id)
		if !mb.running && !mb.signaled {
			break
		}
		rt.idle.Wait()
	}
	mb.running, mb.woken = true, false
	mb.drain = false
	rt.busy++
	rt.mu.Unlock()

	asleep, err := func() (asleep bool, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("slice %s: %w: %v", id, errSlicePanic, p)
			}
		}()
		return rt.eng.slice(ctx, id, batch, true)
	}()

	rt.mu.Lock()
	rt.busy--
	mb.running = false
	if err != nil {
		mb.drain = true // the next slice re-sends what the outbox holds
	}
	var next, idle Actor
	if len(mb.queue) > 0 {
		next = rt.signal(mb)
	} else {
		idle = rt.rest(mb, asleep && err == nil)
	}
	rt.idle.Broadcast()
	rt.mu.Unlock()
	wake(next)
	if idle != nil {
		idle.Stop()
	}
	return err
}

// WaitNotifications waits until the tool-server notifications that slices
// made (Config.Notifier) have returned, or ctx ends. The Lambda handler
// calls it after a batch: work left on a goroutine when an invocation
// returns is frozen with the container. It returns as soon as none is in
// flight.
func (rt *Runtime) WaitNotifications(ctx context.Context) error {
	select {
	case <-rt.eng.notified():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for notifications: %w", ctx.Err())
	}
}

// rest is what a thread's mailbox does when its last slice ended and no
// input waits (rt.mu held): a thread that slept (asleep: waiting on passive
// calls only, so only a timer or an outside message wakes it) passivates at
// once; any other waits Config.Idle for more input.
// It returns the actor to stop once rt.mu is released (nil: none).
func (rt *Runtime) rest(mb *mailbox, asleep bool) (stop Actor) {
	if asleep && !mb.drain && !mb.signaled {
		if mb.timer != nil {
			mb.timer.Stop()
		}
		return rt.passivateLocked(mb)
	}
	rt.armIdle(mb)
	return nil
}

// armIdle (re)starts the thread's idle timer. Passivation uses this timer
// rather than one of the host's (protoactor's SetReceiveTimeout has a timer
// goroutine that writes actor-context fields the actor goroutine reads, a
// data race under -race). rt.mu is held.
func (rt *Runtime) armIdle(mb *mailbox) {
	if mb.timer == nil {
		mb.timer = time.AfterFunc(rt.cfg.Idle, func() { rt.passivate(mb) })
		return
	}
	mb.timer.Reset(rt.cfg.Idle)
}

// runSlice runs one slice, deferring its end when the store allows (see
// work); a panic (in a tool, a provider, an observer) becomes an error, so
// the batch is retried and the mailbox stays usable.
func (rt *Runtime) runSlice(id infinity.ThreadID, batch []infinity.InputMessage, drain bool) sliceEnd {
	return rt.guarded(id, func() sliceEnd { return rt.eng.sliceDeferred(rt.sliceCtx, id, batch, drain, true) })
}

// guarded runs part of a slice, turning a panic into the slice's error.
func (rt *Runtime) guarded(id infinity.ThreadID, part func() sliceEnd) (res sliceEnd) {
	defer recoverSlice(id, &res.err) // a panic leaves finish and susp nil
	return part()
}

// guard runs the end of a deferred slice, turning a panic into an error
// like runSlice.
func (rt *Runtime) guard(id infinity.ThreadID, finish func() (bool, error)) (asleep bool, err error) {
	defer recoverSlice(id, &err)
	return finish()
}

// recoverSlice, deferred, turns a panic of thread id's slice into *err.
func recoverSlice(id infinity.ThreadID, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("slice %s: %w: %v", id, errSlicePanic, p)
	}
}

var errSlicePanic = errors.New("panic in slice")

func (rt *Runtime) poke(id infinity.ThreadID) {
	var a Actor
	rt.mu.Lock()
	if mb := rt.active[id]; mb != nil && !rt.stopped {
		a = rt.signal(mb)
	}
	rt.mu.Unlock()
	wake(a)
}

// passivate stops an idle thread's actor if nothing waits for it. Delivery
// takes the same lock, so no message can reach the actor once it is gone
// from rt.active; the next message spawns a new one. Without a host it only
// forgets the mailbox.
func (rt *Runtime) passivate(mb *mailbox) {
	rt.mu.Lock()
	stop := rt.passivateLocked(mb)
	rt.mu.Unlock()
	if stop != nil {
		stop.Stop()
	}
}

// passivateLocked is passivate with rt.mu held; the caller stops the
// actor it returns (nil: none) once it released rt.mu. The thread is gone
// from rt.active already, so a message that comes meanwhile activates a
// new mailbox and actor; the old actor is idle with no wake-up on its way.
func (rt *Runtime) passivateLocked(mb *mailbox) (stop Actor) {
	if len(mb.queue) > 0 || mb.signaled || mb.running || rt.active[mb.id] != mb {
		return nil // busy again: work re-arms the timer when it is done
	}
	delete(rt.active, mb.id)
	return mb.actor
}

// Active returns how many threads are active: have a live actor or, without
// a host, a mailbox not yet passivated.
func (rt *Runtime) Active() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.active)
}

// WaitIdle blocks until no slice runs and no mailbox holds input, or ctx
// ends. Timers that have not fired do not count.
func (rt *Runtime) WaitIdle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		rt.mu.Lock()
		rt.idle.Broadcast()
		rt.mu.Unlock()
	})
	defer stop()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for !rt.quiet() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rt.idle.Wait()
	}
	return nil
}

func (rt *Runtime) quiet() bool {
	if rt.busy > 0 {
		return false
	}
	for _, mb := range rt.active {
		if len(mb.queue) > 0 {
			return false
		}
	}
	return true
}

// Close stops accepting input, lets running slices finish (until ctx ends,
// then cancels them) and shuts the host down. Queued input that was not
// sliced yet is dropped from memory; a durable sender delivers it again.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	rt.stopped = true
	for _, mb := range rt.active {
		if mb.timer != nil {
			mb.timer.Stop()
		}
		mb.stopAwaiting() // no look for the user after Close
	}
	rt.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		rt.cancel()
		rt.mu.Lock()
		rt.idle.Broadcast()
		rt.mu.Unlock()
	})
	rt.mu.Lock()
	for rt.busy > 0 && ctx.Err() == nil {
		rt.idle.Wait()
	}
	rt.mu.Unlock()
	stop()
	rt.cancel()
	rt.closeOnce.Do(func() {
		// The host first: slices still on its workers may yet send.
		if rt.host != nil {
			rt.host.Shutdown()
			rt.settleSuspended()
		}
		if c, ok := rt.sender.(interface{ Close() }); ok {
			c.Close()
		}
	})
	return ctx.Err()
}

// stopAwaiting ends a wait for the user (rt.mu held).
func (mb *mailbox) stopAwaiting() {
	if mb.recheck != nil {
		mb.recheck.Stop()
		mb.recheck = nil
	}
}
