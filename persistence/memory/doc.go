// Package memory keeps conversations and thread state in memory: an
// implementation of infinity.ConversationStore and infinity.StateStore for
// tests, for embedding the runtime in a single process, and for the engine's
// benchmarks. Nothing is durable; everything is lost when the process exits.
//
// Both stores are safe for concurrent use. They copy what they are given and
// what they return, so callers never share memory with a store. Per-thread
// overhead is kept small (one store-wide map from thread id to a small
// struct, no per-thread maps, locks or goroutines) so that a process can hold
// hundreds of thousands of threads.
//
// The data model (thread records, the checks and apply steps of every
// mutation, the reads, the copies and the expiring processed marks) lives in
// persistence/internal/model, which persistence/file shares; this package
// adds the locking. It imports only the standard library, the root package
// and persistence/internal/model.
package memory
