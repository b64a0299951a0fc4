package file

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/infinity-runtime/infinity"
)

// guard is the locking and journalling both stores wrap around their data
// model: every mutation is checked, journalled and applied under mu, so a
// record is journalled only when its apply succeeds and records are
// journalled in the order they are applied; the caller then waits, without
// the lock, until its record is durable.
//
// Readers wait, after their read, until what they may have observed is
// durable (see barrier). A read of one thread's data needs only that
// thread's mutations durable, not every other thread's: each mutation also
// records its sequence number in the stripe of every thread whose data it
// changes, and such a read waits for its thread's stripe only (threadBarrier).
// Threads that share a stripe make each other wait a little longer, never
// shorter.
type guard struct {
	st *Store
	// lastSeq is the journal sequence number of the last applied mutation;
	// set under mu, read by readers after their read (see barrier).
	lastSeq atomic.Uint64
	// stripes[stripe(id)] is the sequence number of the last applied
	// mutation that changed thread id's data (or that of a thread sharing
	// its stripe); set under mu, read after the read like lastSeq.
	stripes [nStripes]atomic.Uint64

	mu sync.RWMutex
}

// nStripes is how many per-thread barrier stripes a guard has (a power of
// two; 32 KiB per guard).
const nStripes = 4096

var stripeSeed = maphash.MakeSeed()

func stripe(id infinity.ThreadID) int {
	return int(maphash.String(stripeSeed, string(id)) & (nStripes - 1))
}

// barrier waits until every mutation applied so far is durable, so that no
// reader observes (or acts on) a change that a crash could still lose. It
// returns err, or the journal's error if it failed.
func (g *guard) barrier(err error) error {
	if werr := g.st.j.wait(g.lastSeq.Load()); werr != nil && err == nil {
		return werr
	}
	return err
}

// threadBarrier is barrier for a read that observed only the data of the
// threads ids: it waits until every applied mutation of those threads is
// durable. A read that failed (err != nil) waits for the full barrier: its
// error may come from what it did not find.
func (g *guard) threadBarrier(err error, ids ...infinity.ThreadID) error {
	if err != nil {
		return g.barrier(err)
	}
	var seq uint64
	for _, id := range ids {
		seq = max(seq, g.stripes[stripe(id)].Load())
	}
	return g.st.j.wait(seq)
}

// touch records seq as the last mutation of the threads ids (g.mu held).
func (g *guard) touch(seq uint64, ids []infinity.ThreadID) {
	for _, id := range ids {
		g.stripes[stripe(id)].Store(seq)
	}
}

// touchFrom records, under g.mu, a change another guard's mutation (journal
// sequence number seq) made to thread id's data here. Unlike g's own
// mutations, seq may be older than g's last: the barriers keep the newest.
func (g *guard) touchFrom(seq uint64, id infinity.ThreadID) {
	if seq > g.lastSeq.Load() {
		g.lastSeq.Store(seq)
	}
	if st := &g.stripes[stripe(id)]; seq > st.Load() {
		st.Store(seq)
	}
}

// errUnchanged is returned by a check of mutate when the mutation would
// change nothing: then nothing is journalled or applied, and the call
// succeeds (after the barrier).
var errUnchanged = errors.New("unchanged")

// mutate runs check, appends payload to the journal and runs apply, all
// under the write lock, then waits until the record is durable. A failed
// check journals nothing; its error is returned after the barrier. Journal
// errors are prefixed with op and id. touched names every thread whose data
// check reads or apply changes (id itself when nil).
func (g *guard) mutate(op string, id infinity.ThreadID, touched []infinity.ThreadID, payload []byte, check func() error, apply func()) error {
	seq, err := g.record(op, id, touched, payload, check, func(uint64) { apply() })
	if err != nil || seq == 0 {
		return err
	}
	if err := g.st.j.wait(seq); err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}

// mutateLazy is mutate that returns once the record is journalled, before
// it is durable: for changes a crash may lose without harm (a lost
// MarkSent only repeats sends whose stable ids make them no-ops). Readers
// of the thread still wait for the record's fsync (the barrier), and Close
// makes it durable.
func (g *guard) mutateLazy(op string, id infinity.ThreadID, payload []byte, check func() error, apply func()) error {
	_, err := g.record(op, id, nil, payload, check, func(uint64) { apply() })
	return err
}

// record checks, journals and applies a mutation under g.mu and returns
// its journal sequence number; 0 when the check found nothing to change
// (after waiting for the touched threads' barrier).
func (g *guard) record(op string, id infinity.ThreadID, touched []infinity.ThreadID, payload []byte, check func() error, apply func(seq uint64)) (uint64, error) {
	if touched == nil {
		touched = []infinity.ThreadID{id}
	}
	g.mu.Lock()
	if err := check(); err != nil {
		g.mu.Unlock()
		if err == errUnchanged {
			// The check observed only the touched threads.
			return 0, g.threadBarrier(nil, touched...)
		}
		return 0, g.barrier(err)
	}
	seq, err := g.st.j.append(payload)
	if err != nil {
		g.mu.Unlock()
		return 0, fmt.Errorf("%s %s: %w", op, id, err)
	}
	apply(seq)
	g.lastSeq.Store(seq)
	g.touch(seq, touched)
	g.mu.Unlock()
	return seq, nil
}

// read runs f under g's read lock (unless ctx is done) and then waits for
// the barrier.
func read[T any](g *guard, ctx context.Context, f func() (T, error)) (T, error) {
	v, err := locked(g, ctx, f)
	return v, g.barrier(err)
}

// readThread is read for f that observes only thread id's data: it waits
// for that thread's barrier only.
func readThread[T any](g *guard, ctx context.Context, id infinity.ThreadID, f func() (T, error)) (T, error) {
	v, err := locked(g, ctx, f)
	return v, g.threadBarrier(err, id)
}

// locked runs f under g's read lock unless ctx is done.
func locked[T any](g *guard, ctx context.Context, f func() (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return f()
}
