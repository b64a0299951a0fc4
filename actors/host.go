package actors

import (
	"errors"
	"log/slog"

	infinity "github.com/infinity-runtime/infinity"
)

// ErrNoHost is returned by Deliver and Wake of a Runtime built without
// Config.Host: with no actor host nothing could run the delivered input. A
// host-less Runtime (the Lambda handler's) runs slices only through Step.
var ErrNoHost = errors.New("runtime has no actor host")

// Host runs a Runtime's threads as actors, one per active thread. The
// Runtime keeps each thread's mailbox and decides activation and passivation
// under its own lock; the host only runs the thread's work when woken. The
// daemon's host is package actors/protohost, on protoactor-go.
//
// The Runtime calls Spawn, Actor.Wake and Actor.Stop with its lock held, so
// they must not block or call back into the Runtime synchronously.
type Host interface {
	// Spawn starts an actor for thread id. Each wake-up makes the actor call
	// run on a goroutine of the host's; one actor's runs never overlap.
	Spawn(id infinity.ThreadID, run func()) Actor
	// Shutdown stops every actor. The Runtime calls it last in Close, once
	// no slice runs.
	Shutdown()
}

// Yielder is a Host whose slices may step out of its bound of concurrent
// slices while they block: Detach, called from a slice the host runs, lets
// another of the host's goroutines take the slice's place; Attach, called
// by the same slice once it may go on, waits until it may run again. The
// Runtime pairs them around a wait for a model limit or a place among the
// calls in flight. (A slice waiting for a slow model's answer needs
// neither: it ends its run at the call and the answer wakes its actor.)
type Yielder interface {
	Detach()
	Attach()
}

// FirstRunner is a Host that can run a function on one of its workers
// before the actor runs already queued. The Runtime goes on with a slice
// whose model answered this way (the slice has the thread to itself, as
// in its actor's run), so that slices in progress end before new ones
// begin; with another Host it wakes the thread's actor.
type FirstRunner interface {
	RunFirst(fn func())
}

// HostStats says how busy a host is (a Host may implement
// interface{ Stats() HostStats }).
type HostStats struct {
	// Queued is how many actor runs wait for a worker.
	Queued int `json:"queued"`
	// Working is how many workers the host has, busy or idle for a while
	// (idle ones leave after some seconds); at most
	// Config.MaxConcurrentSlices.
	Working int `json:"working"`
	// Detached is how many slices wait for a model (its answer, a limit
	// or a place) without a worker.
	Detached int `json:"detached"`
}

// Actor is one thread's actor in a Host.
type Actor interface {
	// Wake asks the actor to call its run function; it does not block.
	Wake()
	// Stop stops the actor. The Runtime stops only an idle actor with no
	// wake-up on its way.
	Stop()
}

// HostOptions is what a Host is built with, taken from the Runtime's
// validated Config.
type HostOptions struct {
	// Logger is the Runtime's (Config.Logger): the host and its actor
	// system log there.
	Logger *slog.Logger
	// MaxConcurrentSlices bounds how many actors run at once
	// (Config.MaxConcurrentSlices).
	MaxConcurrentSlices int
}
