// Package local is the in-process InputSender: the one the local runtime
// uses to hand input messages to thread actors living in the same process.
//
// A message due now (a zero or past at) is handed to the Deliverer (the actor
// host, which puts it into the thread's mailbox) synchronously, in the
// caller's goroutine, so sends from one goroutine to one thread arrive in
// order. A message due later is held in memory in one heap ordered by due
// time, which a single clock timer serves: when it fires, one goroutine
// takes every message that is due and delivers them in due order, so a
// burst of wake-ups costs one timer and one goroutine, not one of each per
// message. With the system clock on Linux that timer is a timerfd, read by
// one goroutine through Go's network poller; otherwise it is the clock's
// AfterFunc (a runtime timer). The difference shows on a busy small
// machine: Go runs a runtime timer only when a processor schedules, and
// the garbage collector's mark workers, which can hold both processors of
// a two-core machine for 10-20 ms, do not; they do check the poller.
// Poll delivers what is due from the caller's goroutine: actors.Runtime
// calls it after each slice, so wake-ups also go out from the runtime's
// busy workers. Pending messages are registered by (thread, message id): re-sending a message
// that is still pending is a no-op, since its stable id makes it the same
// message. Delayed messages due at the same instant carry no order guarantee
// among themselves, nor against immediate sends.
//
// A timed delivery that the Deliverer refuses is logged and retried with
// exponential backoff on the same clock until it is delivered, the thread is
// cancelled with CancelThread or the Sender is closed: while the process
// lives, a message is never silently lost.
//
// Durability: without an inbox, pending timers live only in this
// process's memory and a restart loses them. With WithInbox (the daemon
// uses the disk store's), Send makes a message durable before it returns,
// and Restore re-arms (or delivers, when overdue) everything the inbox
// holds after a restart.
//
// Imports: the standard library, golang.org/x/sys/unix (the timerfd) and
// the root package (github.com/infinity-runtime/infinity).
package local
