package protohost

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// shutdownGrace bounds how long Shutdown waits for the workers' jobs.
const shutdownGrace = 5 * time.Second

// workerIdle is how long a pool worker waits for work before it exits.
const workerIdle = 10 * time.Second

// Host runs threads as protoactor-go actors. Use New as actors.Config.Host.
type Host struct {
	system *actor.ActorSystem
	props  *actor.Props
	pool   *workerPool
	// free holds the actors of passivated threads, for the next
	// activations to take instead of spawning (see ref.Stop).
	free chan *actor.PID
	// down is set by Shutdown: the Runtime wakes and stops actors after
	// releasing its lock, so a late call may come after it; it does
	// nothing.
	down atomic.Bool
	log  *slog.Logger
}

// freeActors is how many actors of passivated threads the host keeps for
// reuse; more are stopped. An idle actor is about 1 KB.
const freeActors = 1024

var (
	_ actors.Host        = (*Host)(nil)
	_ actors.Yielder     = (*Host)(nil)
	_ actors.FirstRunner = (*Host)(nil)
)

// New builds a host: an actor system logging to o.Logger and a worker pool
// of at most o.MaxConcurrentSlices goroutines. Its signature is that of
// actors.Config.Host.
func New(o actors.HostOptions) actors.Host {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	max := o.MaxConcurrentSlices
	if max <= 0 {
		max = 256
	}
	h := &Host{pool: newWorkerPool(max, workerIdle), free: make(chan *actor.PID, freeActors), log: logger}
	h.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	// The lock-free mailbox is a few words per actor where the default
	// ring buffer holds ten slots and a mutex (about 450 bytes less per
	// active thread); a thread's actor gets a handful of messages per
	// activation, so its per-message node costs less than it saves.
	h.props = actor.PropsFromProducer(func() actor.Actor { return threadActor{} },
		actor.WithDispatcher(h.pool), actor.WithMailbox(actor.UnboundedLockfree()))
	return h
}

// Spawn returns the actor that calls run on each wake-up. The thread id is
// not needed: actors are anonymous, and the Runtime maps threads to them.
//
// The protoactor actor is spawned on the first Wake, by a worker of the
// host's pool: the Runtime calls Spawn and Wake under its lock, from the
// goroutine that delivers input (for timers, the sender's one timer
// goroutine), and a protoactor spawn (registry entry, mailbox, context,
// Started message) costs about as much as the rest of a delivery. On the
// pool, spawns of a burst of wake-ups run on every processor (a single
// spawner goroutine was a queue of its own: sleepsignal's lateness p99
// fell from ~30 to ~23 ms when they moved). The first wake-up reaches the
// actor's mailbox right after the spawn.
func (h *Host) Spawn(_ infinity.ThreadID, run func()) actors.Actor {
	return &ref{h: h, run: run}
}

// Detach and Attach let a slice wait for a model limit or a place among
// the calls in flight without holding a worker (actors.Yielder).
func (h *Host) Detach() { h.pool.detach() }

// Attach: see Detach.
func (h *Host) Attach() { h.pool.attach() }

// RunFirst runs fn on a worker before the actor runs already queued
// (actors.FirstRunner). After Shutdown it does nothing.
func (h *Host) RunFirst(fn func()) {
	if h.down.Load() {
		return
	}
	h.pool.ScheduleFirst(fn)
}

// Stats says how busy the worker pool is.
func (h *Host) Stats() actors.HostStats {
	working, detached := h.pool.Workers()
	return actors.HostStats{Queued: h.pool.Queued(), Working: working, Detached: detached}
}

// Shutdown stops the actor system; later wakes and stops do nothing.
// It returns once every goroutine the host started has returned, or after
// a grace period (a job that ignores its cancelled context, or a Shutdown
// called from a job), saying so in the log.
func (h *Host) Shutdown() {
	h.down.Store(true)
	h.system.Shutdown()
	if !h.pool.close(shutdownGrace) {
		h.log.Warn("actor host: jobs still running after shutdown; left behind", "grace", shutdownGrace)
	}
}

// ref is a thread actor. It is also the actor's wake-up message, so a wake
// allocates nothing.
type ref struct {
	h   *Host
	pid atomic.Pointer[actor.PID] // nil until spawned
	run func()
}

// Wake sends the wake-up. The first one takes the actor a passivated
// thread left, or has a pool worker spawn one. The Runtime wakes an actor
// again only after its run started, so after the spawn.
func (r *ref) Wake() {
	if r.h.down.Load() {
		return
	}
	if pid := r.pid.Load(); pid != nil {
		r.h.system.Root.Send(pid, r)
		return
	}
	select {
	case pid := <-r.h.free:
		r.pid.Store(pid)
		r.h.system.Root.Send(pid, r)
	default:
		r.h.pool.Schedule(r.spawn)
	}
}

// spawn spawns the actor and sends it its first wake-up.
func (r *ref) spawn() {
	pid := r.h.system.Root.Spawn(r.h.props)
	r.pid.Store(pid)
	r.h.system.Root.Send(pid, r)
}

// Stop passivates the thread: its actor goes to the host's free list for
// another thread's activation (actors are anonymous and hold nothing of a
// thread between wake-ups), or is stopped when the list is full. A
// protoactor spawn and stop (registry entry, context, mailbox, lifecycle
// messages) cost about 8 % of the CPU of a wake-up-heavy run
// (bench/sleepsignal). The Runtime stops only an idle actor with no
// wake-up on its way, so one that was woken has been spawned; if the
// Runtime calls Stop from within the actor's last run, a wake-up for the
// thread that takes the actor next waits in the mailbox until that run
// returns.
func (r *ref) Stop() {
	pid := r.pid.Swap(nil)
	if pid == nil || r.h.down.Load() {
		return
	}
	select {
	case r.h.free <- pid:
	default:
		r.h.system.Root.Stop(pid)
	}
}

// threadActor runs one thread's slices. All actors share one Props; the
// actor learns what to run from each wake-up, which is its *ref.
type threadActor struct{}

func (threadActor) Receive(c actor.Context) {
	if r, ok := c.Message().(*ref); ok {
		r.run()
	}
}
