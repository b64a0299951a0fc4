package model

import (
	"cmp"
	"fmt"
	"maps"
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
	s.inboxPeak = max(s.inboxPeak, len(s.inbox))
}

// ApplyOutbox puts the messages of a commit's outbox into the inbox (those
// whose ids wait there already excepted) and returns the threads it put
// messages for.
func (s *State) ApplyOutbox(outbox []infinity.Outgoing) []infinity.ThreadID {
	var to []infinity.ThreadID
	for _, o := range outbox {
		if o.Message != nil && !s.Waits(o.Message.GroupID, o.Message.ID) {
			s.ApplyPut(*o.Message, o.At)
			to = append(to, o.Message.GroupID)
		}
	}
	return to
}

// ApplyDrop removes msgs from the thread's inbox; absent ids are ignored.
func (s *State) ApplyDrop(id infinity.ThreadID, msgs []infinity.MessageID) {
	for _, m := range msgs {
		delete(s.inbox, appliedKey{id, m})
	}
	s.shrinkInbox()
}

// WaitsAny reports whether the inbox holds any of msgs for the thread.
func (s *State) WaitsAny(id infinity.ThreadID, msgs []infinity.MessageID) bool {
	for _, m := range msgs {
		if s.Waits(id, m) {
			return true
		}
	}
	return false
}

// inboxShrinkMin is the peak below which the inbox map is never copied.
const inboxShrinkMin = 1024

// shrinkInbox copies the inbox into a map of its live size once it holds
// under a quarter of its peak: a burst of waiting messages (10,000 timers
// armed at once) does not keep its table for good. The copy costs the
// live entries, paid for by the three quarters dropped since the peak.
func (s *State) shrinkInbox() {
	if s.inboxPeak < inboxShrinkMin || len(s.inbox)*4 > s.inboxPeak {
		return
	}
	s.inbox = maps.Clone(s.inbox)
	s.inboxPeak = len(s.inbox)
}

// WaitingCount returns how many messages the inbox holds.
func (s *State) WaitingCount() int { return len(s.inbox) }

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
