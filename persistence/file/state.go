package file

import (
	"context"
	"fmt"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

// stateStore is the journalled infinity.StateStore: the data model shared
// with the memory package (persistence/internal/model) behind a guard that
// checks, journals and applies every mutation under its lock. A mark is
// journalled with its absolute expiry, so replay does not depend on the
// clock.
type stateStore struct {
	guard
	clock infinity.Clock
	m     *model.State
}

var _ infinity.StateStore = (*stateStore)(nil)

func newStateStore(st *Store, clock infinity.Clock) *stateStore {
	if clock == nil {
		clock = infinity.SystemClock{}
	}
	return &stateStore{guard: guard{st: st}, clock: clock, m: model.NewState()}
}

// Processed reports whether msg was marked processed for the thread and the
// mark has not expired (the clock reads before its expiry).
func (s *stateStore) Processed(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	ok := s.m.Processed(id, msg, now)
	s.mu.RUnlock()
	return ok, s.threadBarrier(nil, id)
}

// MarkProcessed records msgs as processed for the thread until ttl from now,
// replacing earlier marks of the same ids. A ttl that is not positive is
// ErrInvalid. It returns once the marks are durable.
func (s *stateStore) MarkProcessed(ctx context.Context, id infinity.ThreadID, msgs []infinity.MessageID, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if some, err := model.CheckMark(id, msgs, ttl); !some {
		return err
	}
	now := s.clock.Now().UnixNano()
	exp := model.Expiry(now, ttl)
	rb, err := encodeRecord(record{Op: opMark, Thread: id, Msgs: msgs, Now: now, Exp: exp})
	if err != nil {
		return fmt.Errorf("mark processed %s: %w", id, err)
	}
	defer rb.free()
	return s.mutate("mark processed", id, nil, rb.b,
		func() error { return nil },
		func() { s.m.ApplyMark(id, msgs, now, exp) })
}

// Load returns the thread's state and version, or ErrNotFound if it was
// never saved.
func (s *stateStore) Load(ctx context.Context, id infinity.ThreadID) (infinity.State, infinity.Version, error) {
	if err := ctx.Err(); err != nil {
		return infinity.State{}, 0, err
	}
	s.mu.RLock()
	st, v, lerr := s.m.Load(id)
	s.mu.RUnlock()
	// A failed journal wins over ErrNotFound.
	if err := s.threadBarrier(nil, id); err != nil {
		return infinity.State{}, 0, err
	}
	if lerr != nil {
		return infinity.State{}, 0, lerr
	}
	// The stored state is never mutated in place (Save replaces it).
	return model.CloneState(st), v, nil
}

// Save stores st if the stored version is v (0: no record yet) and returns
// the new version, v+1, once it is durable. Otherwise it returns
// ErrConflict.
func (s *stateStore) Save(ctx context.Context, id infinity.ThreadID, st infinity.State, v infinity.Version) (infinity.Version, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st = model.CloneState(st)
	rb, err := encodeRecord(record{Op: opSave, Thread: id, State: &st, Version: v + 1})
	if err != nil {
		return 0, fmt.Errorf("save state %s: %w", id, err)
	}
	defer rb.free()
	err = s.mutate("save state", id, nil, rb.b,
		func() error { return s.m.CheckSave(id, v) },
		func() { s.m.ApplySave(id, st, v+1) })
	if err != nil {
		return 0, err
	}
	return v + 1, nil
}
