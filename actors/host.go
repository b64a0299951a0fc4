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
