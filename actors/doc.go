// Package actors is the Infinity engine: the slice that turns a thread's
// waiting input messages into durable history, the built-in tools, and the
// Runtime that keeps each thread's mailbox and decides when it is active.
//
// In the daemon each active thread is an actor of a Host (package
// actors/protohost, on protoactor-go) which passivates when idle and is
// re-activated from the stores when a message arrives. On Lambda the
// Runtime has no Host: the handler calls Runtime.Step, which runs a slice in
// its own goroutine, and SQS FIFO's message-group locking serialises each
// thread.
//
// It may import the root package and the standard library; concrete stores,
// senders, model providers and the actor host are handed in through Config.
// It must not import protoactor-go, so that the Lambda bootstrap does not
// link it.
package actors
