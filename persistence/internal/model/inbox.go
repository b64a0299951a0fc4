package model

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
)

// queued is one message in the inbox; seq orders the inbox.
type queued struct {
	msg infinity.InputMessage
	at  time.Time
	seq uint64
}

// CheckPut checks Inbox.Put's message before any lock.
func CheckPut(msg infinity.InputMessage) error {
	if msg.ID == "" || msg.GroupID == "" {
		return fmt.Errorf("inbox put: message without an id or a thread: %w", infinity.ErrInvalid)
	}
	return nil
}

// Waits reports whether the inbox holds msg for the thread.
func (s *State) Waits(id infinity.ThreadID, msg infinity.MessageID) bool {
	_, ok := s.inbox[appliedKey{id, msg}]
	return ok
}

// ApplyPut adds msg, which the caller owns no more, to the inbox unless its
// id waits there already.
func (s *State) ApplyPut(msg infinity.InputMessage, at time.Time) {
	k := appliedKey{msg.GroupID, msg.ID}
	if _, ok := s.inbox[k]; ok {
		return
	}
	s.seq++
	s.inbox[k] = &queued{msg: msg, at: at, seq: s.seq}
}

// ApplyDrop removes msgs from the thread's inbox; absent ids are ignored.
func (s *State) ApplyDrop(id infinity.ThreadID, msgs []infinity.MessageID) {
	for _, m := range msgs {
		delete(s.inbox, appliedKey{id, m})
	}
}

// Waiting returns a copy of the inbox in the order it was filled.
func (s *State) Waiting() []infinity.Queued {
	all := make([]*queued, 0, len(s.inbox))
	for _, q := range s.inbox {
		all = append(all, q)
	}
	slices.SortFunc(all, func(a, b *queued) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]infinity.Queued, len(all))
	for i, q := range all {
		out[i] = infinity.Queued{Message: CloneMessage(q.msg), At: q.at}
	}
	return out
}
