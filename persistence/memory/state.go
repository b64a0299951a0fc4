package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity"
)

// sweepMin is the fewest marks between two sweeps of expired processed ids.
const sweepMin = 256

// StateStore is an in-memory infinity.StateStore. The zero value is not
// usable; call NewStateStore.
type StateStore struct {
	clock infinity.Clock

	mu sync.RWMutex
	// processed maps (thread, message) to the expiry, in Unix nanoseconds of
	// the store's clock.
	processed map[appliedKey]int64
	records   map[infinity.ThreadID]record
	// marks counts marks since the last sweep and live how many entries
	// the last sweep left: sweeping again after max(sweepMin, live) marks
	// keeps the map under about twice its live size at an amortised
	// constant cost per mark. peak is the most entries processed held since
	// it was allocated.
	marks, live, peak int
}

type record struct {
	state   infinity.State
	version infinity.Version
}

var _ infinity.StateStore = (*StateStore)(nil)

// NewStateStore returns an empty store that measures expiry on clock (nil
// means infinity.SystemClock{}).
func NewStateStore(clock infinity.Clock) *StateStore {
	if clock == nil {
		clock = infinity.SystemClock{}
	}
	return &StateStore{
		clock:     clock,
		processed: make(map[appliedKey]int64),
		records:   make(map[infinity.ThreadID]record),
	}
}

// Processed reports whether msg was marked processed for the thread and the
// mark has not expired (the clock reads before its expiry).
func (s *StateStore) Processed(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	exp, ok := s.processed[appliedKey{id, msg}]
	s.mu.RUnlock()
	return ok && now < exp, nil
}

// MarkProcessed records msgs as processed for the thread until ttl from now,
// replacing earlier marks of the same ids. A ttl that is not positive is
// ErrInvalid. Expired marks are purged as marks are added, at an amortised
// constant cost per mark.
func (s *StateStore) MarkProcessed(ctx context.Context, id infinity.ThreadID, msgs []infinity.MessageID, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("mark processed %s: ttl %v: %w", id, ttl, infinity.ErrInvalid)
	}
	if len(msgs) == 0 {
		return nil
	}
	now := s.clock.Now().UnixNano()
	exp := now + int64(ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.processed[appliedKey{id, m}] = exp
	}
	s.marks += len(msgs)
	s.peak = max(s.peak, len(s.processed))
	if s.marks >= max(sweepMin, s.live) {
		s.sweep(now)
	}
	return nil
}

// sweep deletes expired marks and, when the map has shrunk to a fraction of
// its peak, reallocates it (Go maps do not give memory back on delete). The
// caller holds s.mu for writing.
func (s *StateStore) sweep(now int64) {
	for k, exp := range s.processed {
		if now >= exp {
			delete(s.processed, k)
		}
	}
	s.marks = 0
	s.live = len(s.processed)
	if n := s.live; s.peak > sweepMin && n < s.peak/4 {
		m := make(map[appliedKey]int64, n)
		for k, v := range s.processed {
			m[k] = v
		}
		s.processed = m
		s.peak = n
	}
}

// Load returns the thread's state and version, or ErrNotFound if it was
// never saved.
func (s *StateStore) Load(ctx context.Context, id infinity.ThreadID) (infinity.State, infinity.Version, error) {
	if err := ctx.Err(); err != nil {
		return infinity.State{}, 0, err
	}
	s.mu.RLock()
	r, ok := s.records[id]
	s.mu.RUnlock()
	if !ok {
		return infinity.State{}, 0, fmt.Errorf("load state %s: %w", id, infinity.ErrNotFound)
	}
	// r.state is never mutated in place (Save replaces it), so copying it
	// outside the lock is safe.
	return cloneState(r.state), r.version, nil
}

// Save stores st if the stored version is v (0: no record yet) and returns
// the new version, v+1. Otherwise it returns ErrConflict.
func (s *StateStore) Save(ctx context.Context, id infinity.ThreadID, st infinity.State, v infinity.Version) (infinity.Version, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st = cloneState(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[id] // zero record (version 0) when there is none
	if r.version != v {
		return 0, fmt.Errorf("save state %s: version %d, stored %d: %w", id, v, r.version, infinity.ErrConflict)
	}
	r = record{state: st, version: v + 1}
	s.records[id] = r
	return r.version, nil
}
