// Package file keeps conversations and thread state durably in a local
// directory: an implementation of infinity.ConversationStore and
// infinity.StateStore for the local daemon.
//
//	s, err := file.Open(dir, file.WithClock(clock))
//	...
//	defer s.Close()
//	conv, state := s.Conversations(), s.State()
//
// # Design
//
// The whole state lives in memory, in the data model the memory package
// uses too (persistence/internal/model), so the semantics, checks and error
// order are the same; snapshots capture and restore it through that
// package. Every mutation (CreateThread, Commit, MarkSent
// that removes something, MarkProcessed, Save) is checked against memory,
// appended as one record to an append-only journal and applied to memory,
// all under the store's lock, so a record is journalled only when its apply
// succeeds and records are journalled in the order they are applied. The
// call then waits, without the lock, until its record is durable (MarkSent
// excepted: it returns once journalled, since losing it in a crash only
// repeats sends under stable ids, which their receivers treat as
// repeats). A failed check writes nothing. Writing a change costs O(the change),
// whatever the number of threads. A commit also takes the messages it
// applied (Commit.Applied) out of the durable inbox (Store.Inbox), in the
// same record, so a runtime that records repeats by the applied records
// alone (actors.Config.AppliedOnly) needs no second write to let them go;
// and it puts the messages of its outbox (a timer, a report to the parent)
// into that inbox, so the durable sender that then sends them finds them
// waiting and writes nothing: a slice that sleeps costs one record and one
// fsync wait.
// A restart decodes the snapshot's and journal's records in parallel
// batches and applies them in order.
//
// One writer goroutine per Store does group commit: it takes every record
// queued so far, writes them with one write, fsyncs once and wakes all their
// callers, while new records queue for the next batch. Stats reports
// records and fsyncs, so Records/Fsyncs is the batching factor. The
// conversation store's CommitDeferred returns before the fsync, with a
// function that waits for it (the engine's slices give their worker back
// meanwhile: actors.DeferredCommitter); Commit is CommitDeferred and that
// wait.
//
// Reads never observe a change that is not yet durable: a read (and a
// mutation that fails its check) waits until every mutation applied before
// it has been fsynced, which is at most the fsync already in progress.
// Reads copy what they return after releasing the store's lock (the items
// and summaries they return are shared, append-only data until then): an
// allocation can make a goroutine assist the garbage collector, and a
// reader that does so under the lock holds up every writer and, behind the
// waiting writer, every other reader.
//
// # Files
//
// A Store owns a directory:
//
//	LOCK                    held with flock(2) while the Store is open
//	journal-NNNN….log       journal segments (16-digit, ascending numbers)
//	snapshot                the last compacted state
//	snapshot.tmp            a snapshot being written (removed on Open)
//
// A journal segment and the snapshot are sequences of records:
//
//	offset 0   uint32 little-endian  payload length n (at most 1 GiB)
//	offset 4   uint32 little-endian  CRC-32C (Castagnoli) of bytes 0..3
//	offset 8   uint32 little-endian  CRC-32C of the payload
//	offset 12  n bytes               payload: one JSON object
//
// Journal payloads have an "op" of "create" (a root ThreadInfo), "commit"
// (the infinity.Commit), "sent" (thread and outbox ids), "mark" (thread,
// message ids, the clock reading and the absolute expiry, so replay does not
// depend on the clock) or "save" (thread, state, new version). A snapshot is
// a "snapshot" header naming the first journal segment it does not cover,
// then one "thread" record per thread (info, items, outbox, children,
// applied ids), one "state" record per saved state, "marks" records with the
// unexpired processed marks, and an "end" trailer with the record count.
//
// # Durability
//
// A mutation (other than MarkSent, above) returns nil only after its
// record was written and fsynced; everything that returned survives a crash of the process or the machine
// (as far as fsync holds on the file system). A new segment, the snapshot's
// rename and segment removals are made durable by fsyncing the directory.
// If a write or fsync fails the Store is poisoned: the failing call and
// every later mutation return the error (the failing mutation's outcome is
// unknown: it may or may not be on disk), and the Store must be closed and
// reopened, which replays what is on disk.
//
// # Recovery
//
// Open replays the snapshot, then the journal segments from the one the
// snapshot names, in order. Only the last segment may end in a torn tail,
// the remains of a write cut short by a crash: a record cut short by the end
// of the file, a whole final record whose payload checksum fails, or a
// damaged header after which no valid record follows anywhere in the file.
// A torn tail is logged (slog, level WARN) and truncated to the last whole
// record; nothing it held had been acknowledged. Anything else is
// corruption: a record with a bad checksum followed by more data, damage in
// an earlier segment or the snapshot, a missing segment, or a record that
// does not decode or apply. Open then fails with an error that wraps
// ErrCorrupt and names the file and the byte offset of the bad record, and
// it modifies no file (the snapshot, the journal and leftovers stay as they
// are for inspection). Segments older than the snapshot's (left by a crash
// during compaction) are removed once everything replayed.
//
// # Compaction
//
// Compact switches the journal to a new segment, captures the state (a
// shallow copy: history, children and applied ids are append-only and
// shared), writes it to snapshot.tmp, fsyncs it, renames it to snapshot,
// fsyncs the directory and removes the older segments. Writers are held
// back only while the journal switches segments (waiting for at most the
// batch being written) and the state is captured; the snapshot is encoded
// and written without any store lock. The Store compacts in the background
// when the current segment passes WithCompactThreshold bytes (default
// DefaultCompactThreshold; 0 disables it). Processed marks that expired
// are dropped from snapshots.
//
// # Locking
//
// One Store owns one directory. Open takes an exclusive, non-blocking
// flock(2) on DIR/LOCK; flock belongs to the open file, so a second Open of
// the same directory fails with ErrLocked in the same process as in
// another, and the kernel releases the lock when the process dies. On
// systems without flock, DIR/LOCK is created with O_EXCL instead and must be
// removed by hand after a crash.
//
// Both stores are safe for concurrent use, and copy what they are given and
// what they return. The package imports only the standard library, the
// root package and persistence/internal/model.
package file
