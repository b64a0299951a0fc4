// Package model is the in-memory data model shared by the conversation and
// state stores of persistence/memory and persistence/file: the thread
// records, the checks and the apply steps of every mutation, the reads, the
// clone helpers, the expiring processed-id map and what a snapshot needs to
// capture and restore the whole state.
//
// Nothing here locks, journals or looks at a context. Each mutation is split
// into a check (which changes nothing and returns the error the store
// reports) and an apply (which cannot fail once its check passed), so that a
// store can do
//
//	lock → check → apply → unlock                        (memory)
//	lock → check → journal → apply → unlock → wait fsync (file)
//
// and a journal replay can run the same check and apply. The caller
// serialises access: reads may share a read lock, checks and applies need
// the write lock. Values passed to an apply are stored as they are (the
// caller copies what it does not own); reads return copies.
//
// Per-thread overhead is kept small (one map from thread id to a small
// struct, no per-thread maps) so that a process can hold hundreds of
// thousands of threads.
//
// The package imports only the standard library and the root package; it is
// imported by persistence/memory and persistence/file.
package model
