package file

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/infinity-runtime/infinity"
)

// guard is the locking and journalling both stores wrap around their data
// model: every mutation is checked, journalled and applied under mu, so a
// record is journalled only when its apply succeeds and records are
// journalled in the order they are applied; the caller then waits, without
// the lock, until its record is durable.
type guard struct {
	st *Store
	// lastSeq is the journal sequence number of the last applied mutation;
	// set under mu, read by readers after their read (see barrier).
	lastSeq atomic.Uint64

	mu sync.RWMutex
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

// errUnchanged is returned by a check of mutate when the mutation would
// change nothing: then nothing is journalled or applied, and the call
// succeeds (after the barrier).
var errUnchanged = errors.New("unchanged")

// mutate runs check, appends payload to the journal and runs apply, all
// under the write lock, then waits until the record is durable. A failed
// check journals nothing; its error is returned after the barrier. Journal
// errors are prefixed with op and id.
func (g *guard) mutate(op string, id infinity.ThreadID, payload []byte, check func() error, apply func()) error {
	g.mu.Lock()
	if err := check(); err != nil {
		g.mu.Unlock()
		if err == errUnchanged {
			err = nil
		}
		return g.barrier(err)
	}
	seq, err := g.st.j.append(payload)
	if err != nil {
		g.mu.Unlock()
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	apply()
	g.lastSeq.Store(seq)
	g.mu.Unlock()
	if err := g.st.j.wait(seq); err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}

// read runs f under g's read lock (unless ctx is done) and then waits for
// the barrier.
func read[T any](g *guard, ctx context.Context, f func() (T, error)) (T, error) {
	var v T
	err := ctx.Err()
	if err == nil {
		g.mu.RLock()
		v, err = f()
		g.mu.RUnlock()
	}
	return v, g.barrier(err)
}
