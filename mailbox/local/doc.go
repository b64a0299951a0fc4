// Package local is the in-process InputSender: the one the local runtime
// uses to hand input messages to thread actors living in the same process.
//
// A message due now (a zero or past at) is handed to the Deliverer (the actor
// host, which puts it into the thread's mailbox) synchronously, in the
// caller's goroutine, so sends from one goroutine to one thread arrive in
// order. A message due later is held in memory in one heap ordered by due
// time, which a single Clock.AfterFunc timer serves (a runtime timer, not a
// goroutine, while it waits): when it fires, one goroutine takes every
// message that is due and delivers them in due order, so a burst of
// wake-ups costs one goroutine and one runtime timer, not one of each per
// message. Pending messages are registered by (thread, message id): re-sending a message
// that is still pending is a no-op, since its stable id makes it the same
// message. Delayed messages due at the same instant carry no order guarantee
// among themselves, nor against immediate sends.
//
// A timed delivery that the Deliverer refuses is logged and retried with
// exponential backoff on the same clock until it is delivered, the thread is
// cancelled with CancelThread or the Sender is closed: while the process
// lives, a message is never silently lost.
//
// Durability: pending timers live only in this process's memory. A restart
// loses every message that was waiting for its time, even though Send
// returned nil for it. Making delayed sends survive restarts (for example by
// re-arming them from the threads' outboxes at start-up) is a later issue.
//
// Imports: the standard library and the root package
// (github.com/infinity-runtime/infinity) only.
package local
