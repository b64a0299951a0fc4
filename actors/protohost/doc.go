// Package protohost is the daemon's actor host: it runs each active thread
// of an actors.Runtime as a protoactor-go actor, on one actor system per
// Runtime, with a pool of warm worker goroutines as the dispatcher that
// bounds how many slices run at once.
//
// The Runtime keeps the mailboxes and decides activation and passivation;
// this package only spawns, wakes and stops actors. Actors are anonymous
// (a wake-up message carries what to run), so a passivated thread's actor
// is kept on a free list (up to 1,024) for the next activation of any
// thread instead of being stopped, and spawns run on the worker pool. Keeping protoactor-go
// (and what it pulls in: OpenTelemetry, Prometheus, protobuf) here keeps it
// out of binaries that run the engine without actors, such as the Lambda
// bootstrap, which only calls Runtime.Step.
//
// It may import the root package, package actors, the standard library and
// protoactor-go; package actors must not import it.
package protohost
