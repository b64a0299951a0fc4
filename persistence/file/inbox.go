package file

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

var _ infinity.Inbox = (*stateStore)(nil)

// Inbox returns the store's durable inbox. It shares the StateStore's
// journal: marking a message processed takes it out of the inbox in the
// same record.
func (s *Store) Inbox() infinity.Inbox { return s.state }

// Put records msg as due at at and returns once it is durable; a message
// the thread already processed is not recorded (false).
func (s *stateStore) Put(ctx context.Context, msg infinity.InputMessage, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := model.CheckPut(msg); err != nil {
		return false, err
	}
	q := infinity.Queued{Message: model.CloneMessage(msg), At: at}
	rb, err := encodeRecord(record{Op: opPut, Queued: &q})
	if err != nil {
		return false, fmt.Errorf("inbox put %s: %w", msg.GroupID, err)
	}
	defer rb.free()
	now := s.clock.Now().UnixNano()
	processed := false
	err = s.mutate("inbox put", msg.GroupID, nil, rb.b,
		func() error {
			if processed = s.m.Processed(msg.GroupID, msg.ID, now); processed || s.m.Waits(msg.GroupID, msg.ID) {
				return errUnchanged
			}
			return nil
		},
		func() { s.m.ApplyPut(q.Message, at) })
	return err == nil && !processed, err
}

// Drop removes waiting messages; only a call that removes one is
// journalled.
func (s *stateStore) Drop(ctx context.Context, id infinity.ThreadID, msgs ...infinity.MessageID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rb, err := encodeRecord(record{Op: opDrop, Thread: id, Msgs: msgs})
	if err != nil {
		return fmt.Errorf("inbox drop %s: %w", id, err)
	}
	defer rb.free()
	return s.mutate("inbox drop", id, nil, rb.b,
		func() error {
			for _, m := range msgs {
				if s.m.Waits(id, m) {
					return nil
				}
			}
			return errUnchanged
		},
		func() { s.m.ApplyDrop(id, msgs) })
}

// consume takes the messages a commit (journal sequence number seq) applied
// out of the inbox: the commit's record is their drop, in the journal and
// at replay. It runs under the conversation guard's lock, which is taken
// before the state guard's (as Compact does).
func (s *stateStore) consume(seq uint64, id infinity.ThreadID, msgs []infinity.MessageID) {
	if len(msgs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m.WaitsAny(id, msgs) {
		s.m.ApplyDrop(id, msgs)
		s.touchFrom(seq, id)
	}
}

// putOutbox puts the messages of a commit's outbox (journal sequence
// number seq) into the inbox: the commit's record is their Put, in the
// journal and at replay, so the durable sender that drains the outbox
// finds them waiting (Put reports true and journals nothing) and a slice
// that arms a timer waits for one fsync instead of two. Messages are
// shared with the conversation's outbox; neither side changes them. It
// runs under the conversation guard's lock, like consume.
func (s *stateStore) putOutbox(seq uint64, outbox []infinity.Outgoing) {
	if !slices.ContainsFunc(outbox, func(o infinity.Outgoing) bool { return o.Message != nil }) {
		return // no lock for the common commit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.m.ApplyOutbox(outbox) {
		s.touchFrom(seq, id)
	}
}

// Waiting returns every waiting message in the order they were put.
func (s *stateStore) Waiting(ctx context.Context) ([]infinity.Queued, error) {
	return read(&s.guard, ctx, func() ([]infinity.Queued, error) { return s.m.Waiting(), nil })
}
