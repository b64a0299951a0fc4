// Package actors is the Infinity engine: the slice that turns a thread's
// waiting input messages into durable history, the built-in tools, and the
// Runtime that keeps each thread's mailbox and decides when it is active.
//
// In the daemon each active thread is an actor of a Host (package
// actors/protohost, on protoactor-go) which passivates when idle and is
// re-activated from the stores when a message arrives. A sender that keeps
// its timers in the process (mailbox/local) is polled after each run of
// slices (Poller), and RaiseProcs gives the process the Go processors the
// garbage collector needs to leave timers alone. A slice holds one of the
// Host's workers until its commit is applied; with a store that can return
// before the commit is durable (DeferredCommitter: persistence/disk), the
// wait for the fsync and what follows it (events, sends, acknowledgements)
// run on a goroutine of their own, so that the workers go on with other
// threads' slices. On Lambda the
// Runtime has no Host: the handler calls Runtime.Step, which runs a slice in
// its own goroutine, and SQS FIFO's message-group locking serialises each
// thread.
//
// # Models
//
// A thread runs on its agent's model (Agent.Provider and Agent.Model), or
// on the model its ThreadInfo.Model names as "provider/model", served by
// one of Agent.Providers: set when a root starts (StartOptions.Model) or
// when a parent spawns a child (spawn_thread's optional "model"); children
// inherit their parent's. The model's ModelInfo (its provider's Models)
// gives the thread its context window, output limit and image support.
// Every response records its model in Item.Model beside Item.Usage, so
// usage can be priced per model.
//
// # Compaction
//
// After a slice whose last model call used more than three quarters of the
// thread's context window, or on a compaction request (Runtime.Compact),
// the thread spawns a compaction thread (infinity.ThreadCompaction) at a
// safe point: before the response with its first still-open call, or its
// end. That thread inherits the history up to there, asks the model for a
// summary with no tools, closes, and sends the summary back
// (compaction_complete with Covers). The thread commits it as an
// infinity.Summary; from then on its history loads as the summary followed
// by its items from Covers on (infinity.LoadHistory), and so does the
// history of children spawned after it, while children spawned before it
// keep exactly what they inherited. Items are never deleted. Summarised
// calls that can still be answered (asynchronous calls answered with a
// placeholder, active subscriptions) travel in the summary, so late
// results and events for them are recognised; children's reports are
// injected whether or not their spawn call is in view. Compaction works
// the same in the daemon and on Lambda: it is messages and commits.
//
// It may import the root package and the standard library; concrete stores,
// senders, model providers and the actor host are handed in through Config.
// It must not import protoactor-go, so that the Lambda bootstrap does not
// link it.
package actors
