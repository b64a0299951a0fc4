// Package disk is the daemon's store: an implementation of
// infinity.ConversationStore, infinity.StateStore and infinity.Inbox in one
// local directory, on Pebble (github.com/cockroachdb/pebble/v2), an
// embedded log-structured merge tree.
//
//	s, err := disk.Open(dir, disk.WithClock(clock))
//	...
//	defer s.Close()
//	conv, state, inbox := s.Conversations(), s.State(), s.Inbox()
//
// # Memory
//
// History lives on disk. A thread's items are read when something asks for
// them (the runtime, when the thread runs); nothing per passivated thread
// needs to stay in memory. What the store holds in memory is bounded,
// whatever the size of the stored history: the engine's block cache
// (WithCacheSize) and memtables (WithMemTableSize), and three caches of
// recently used threads, each kept current by the writers under the
// threads' locks: thread headers (DefaultHeaderCache entries), decoded
// history (WithHistoryCache bytes, least recently used out) and the
// complete small per-thread sets a slice checks new message ids against
// (applied ids, waiting messages, processed marks; most such checks are
// for ids that are not there, which only a complete set answers without
// the engine). The daemon's memory follows its active threads, not its
// months of history.
//
// # Keys
//
// Every key starts with a table tag and, for per-thread tables, the thread
// id (length-prefixed), so a thread's rows of one table are contiguous:
// the thread header (info, length, child and outbox counters), its items
// by position, applied message ids, children by creation order, unsent
// outbox entries by commit order, compaction summaries by position, the
// saved state, processed marks with an index by expiry (swept every
// minute), and the inbox: waiting messages by sequence number, with a
// per-thread index. Values are a format byte (1) followed by JSON, so the
// history stays readable by any JSON tool; items, outbox entries and inbox
// messages are written with a hand-written encoder (package jsonw).
//
// # Writes
//
// Each mutation (a slice's commit, a created thread, an inbox put, a
// processed mark, a saved state) is one batch, checked, built and applied
// under the locks of the threads it touches (a stripe of 256 locks; a
// commit that creates or closes threads takes them all). Batches of
// different threads apply in parallel, without waiting for the
// write-ahead log's fsync; the call then waits for it, and the engine's
// commit pipeline syncs the log for every batch applied meanwhile at once
// (group commit; Stats reports batches and fsyncs). Each batch has a
// ticket, taken before it is applied and recorded for its threads; "ticket
// t is durable" means t and every ticket before it are. The runtime's
// deferred commit (CommitDeferred, actors.DeferredCommitter) returns after
// the apply with a function that waits for its ticket. A read waits, after
// reading, for the tickets of the threads it read (a read across threads:
// every ticket taken), and a mutation that wrote nothing waits for the
// tickets of what its checks read: nothing returned can be taken back by
// a crash. MarkSent and the sweep of expired marks are not waited for:
// losing them in a crash only repeats sends under stable ids, or keeps
// expired marks until the next sweep.
//
// A commit consumes the messages it applied from the inbox and puts its
// outbox's messages into it in the same batch (the runtime then writes no
// processed marks, and a slice that sleeps waits for one fsync);
// CreateRoot creates a root and queues its first message in one batch
// (actors.RootStarter), so a crash cannot leave a root without its first
// message.
//
// # Failures
//
// A directory holds a FORMAT file naming the store and its version. At
// Open, a FORMAT without the engine's MANIFEST, engine files without a
// FORMAT, a FORMAT of another version, a table file the MANIFEST lists
// but the directory lacks, and data the engine finds damaged fail with an
// error wrapping ErrCorrupt that names the file; nothing is started
// around a missing file. The directory is made 0700 and its files 0600.
//
// Writes are refused with ErrNoSpace while the file system has less free
// space than WithMinFree (DefaultMinFree): the engine then never meets a
// full disk in the middle of a write, reads go on, and writes succeed
// again once space is freed, without a restart. A write the engine fails
// stops every later write (close and reopen the store).
//
// # Deleting
//
// DeleteTree (infinity.TreeDeleter) deletes a closed tree and
// DeleteThreads (infinity.StateDeleter) the state, marks and waiting
// messages of threads, each in one batch; the space comes back as the
// engine compacts.
//
// # Upgrade
//
// Earlier versions kept the daemon's store in a journal (package file).
// Open converts such a directory once, crash-safely: it writes the
// journal's content into DIR.converting, marks it complete, renames DIR to
// DIR.journal (kept; delete it once satisfied) and DIR.converting to DIR.
// An Open after a crash finishes or restarts the conversion.
//
// One Store owns one directory (ErrLocked otherwise, through a flock on
// LOCK-infinity). The Store is safe for concurrent use and copies what it
// is given and what it returns.
package disk
