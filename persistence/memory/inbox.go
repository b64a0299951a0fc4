package memory

import (
	"context"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

var _ infinity.Inbox = (*StateStore)(nil)

// Put records msg as due at at; a message the thread already processed is
// not recorded (false). Marking a message processed takes it out.
func (s *StateStore) Put(ctx context.Context, msg infinity.InputMessage, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := model.CheckPut(msg); err != nil {
		return false, err
	}
	msg = model.CloneMessage(msg)
	now := s.clock.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m.Processed(msg.GroupID, msg.ID, now) {
		return false, nil
	}
	s.m.ApplyPut(msg, at)
	return true, nil
}

// Drop removes waiting messages; absent ids are ignored.
func (s *StateStore) Drop(ctx context.Context, id infinity.ThreadID, msgs ...infinity.MessageID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.ApplyDrop(id, msgs)
	return nil
}

// Waiting returns every waiting message in the order they were put.
func (s *StateStore) Waiting(ctx context.Context) ([]infinity.Queued, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Waiting(), nil
}
