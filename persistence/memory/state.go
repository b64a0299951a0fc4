package memory

import (
	"context"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

// StateStore is an in-memory infinity.StateStore. The zero value is not
// usable; call NewStateStore.
type StateStore struct {
	clock infinity.Clock

	mu sync.RWMutex
	m  *model.State
}

var _ infinity.StateStore = (*StateStore)(nil)

// NewStateStore returns an empty store that measures expiry on clock (nil
// means infinity.SystemClock{}).
func NewStateStore(clock infinity.Clock) *StateStore {
	if clock == nil {
		clock = infinity.SystemClock{}
	}
	return &StateStore{clock: clock, m: model.NewState()}
}

// Processed reports whether msg was marked processed for the thread and the
// mark has not expired (the clock reads before its expiry).
func (s *StateStore) Processed(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Processed(id, msg, now), nil
}

// MarkProcessed records msgs as processed for the thread until ttl from now,
// replacing earlier marks of the same ids. A ttl that is not positive is
// ErrInvalid. Expired marks are purged as marks are added, at an amortised
// constant cost per mark.
func (s *StateStore) MarkProcessed(ctx context.Context, id infinity.ThreadID, msgs []infinity.MessageID, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if some, err := model.CheckMark(id, msgs, ttl); !some {
		return err
	}
	now := s.clock.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.ApplyMark(id, msgs, now, model.Expiry(now, ttl))
	return nil
}

// Load returns the thread's state and version, or ErrNotFound if it was
// never saved.
func (s *StateStore) Load(ctx context.Context, id infinity.ThreadID) (infinity.State, infinity.Version, error) {
	if err := ctx.Err(); err != nil {
		return infinity.State{}, 0, err
	}
	s.mu.RLock()
	st, v, err := s.m.Load(id)
	s.mu.RUnlock()
	// The stored state is never mutated in place, so copying it outside
	// the lock is safe.
	return model.CloneState(st), v, err
}

// Save stores st if the stored version is v (0: no record yet) and returns
// the new version, v+1. Otherwise it returns ErrConflict.
func (s *StateStore) Save(ctx context.Context, id infinity.ThreadID, st infinity.State, v infinity.Version) (infinity.Version, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st = model.CloneState(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.m.CheckSave(id, v); err != nil {
		return 0, err
	}
	s.m.ApplySave(id, st, v+1)
	return v + 1, nil
}

// DeleteThreads forgets the threads' states, processed marks and waiting
// messages (infinity.StateDeleter).
func (s *StateStore) DeleteThreads(ctx context.Context, ids []infinity.ThreadID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.DeleteThreads(ids)
	return nil
}
