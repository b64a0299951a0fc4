package protohost

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// workerIdle is how long a pool worker waits for work before it exits.
const workerIdle = 10 * time.Second

// Host runs threads as protoactor-go actors. Use New as actors.Config.Host.
type Host struct {
	system *actor.ActorSystem
	props  *actor.Props
	pool   *workerPool
}

var _ actors.Host = (*Host)(nil)

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
	h := &Host{pool: newWorkerPool(max, workerIdle)}
	h.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	h.props = actor.PropsFromProducer(func() actor.Actor { return threadActor{} }, actor.WithDispatcher(h.pool))
	return h
}

// Spawn starts an actor that calls run on each wake-up. The thread id is
// not needed: actors are anonymous, and the Runtime maps threads to them.
func (h *Host) Spawn(_ infinity.ThreadID, run func()) actors.Actor {
	return &ref{root: h.system.Root, pid: h.system.Root.Spawn(h.props), run: run}
}

// Shutdown stops the actor system.
func (h *Host) Shutdown() { h.system.Shutdown() }

// ref is a spawned thread actor. It is also the actor's wake-up message, so
// a wake allocates nothing.
type ref struct {
	root *actor.RootContext
	pid  *actor.PID
	run  func()
}

func (r *ref) Wake() { r.root.Send(r.pid, r) }
func (r *ref) Stop() { r.root.Stop(r.pid) }

// threadActor runs one thread's slices. All actors share one Props; the
// actor learns what to run from each wake-up, which is its *ref.
type threadActor struct{}

func (threadActor) Receive(c actor.Context) {
	if r, ok := c.Message().(*ref); ok {
		r.run()
	}
}
