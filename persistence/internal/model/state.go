package model

import (
	"fmt"
	"math"
	"time"

	"github.com/infinity-runtime/infinity"
)

// SweepMin is the fewest marks between two sweeps of expired processed ids.
const SweepMin = 256

// State is the data of an infinity.StateStore: saved states with their
// versions, and processed marks with their expiry. The zero value is not
// usable; call NewState. Times are Unix nanoseconds of the store's clock,
// read by the caller.
type State struct {
	// processed maps (thread, message) to the expiry.
	processed map[appliedKey]int64
	records   map[infinity.ThreadID]record
	// inbox holds the messages waiting for delivery (see infinity.Inbox);
	// seq numbers them in the order they were put.
	inbox map[appliedKey]*queued
	seq   uint64
	// inboxPeak is the most entries inbox held since it was allocated: a
	// Go map keeps its size, so an inbox that fell to a quarter of its
	// peak is copied into a smaller one (see shrinkInbox).
	inboxPeak int
	// marks counts marks since the last sweep and live how many entries
	// the last sweep left: sweeping again after max(SweepMin, live) marks
	// keeps the map under about twice its live size at an amortised
	// constant cost per mark. peak is the most entries processed held since
	// it was allocated.
	marks, live, peak int
}

type record struct {
	state   infinity.State
	version infinity.Version
}

// NewState returns an empty model.
func NewState() *State {
	return &State{
		processed: make(map[appliedKey]int64),
		records:   make(map[infinity.ThreadID]record),
		inbox:     make(map[appliedKey]*queued),
	}
}

// Processed reports whether msg was marked processed for the thread and the
// mark has not expired at now.
func (s *State) Processed(id infinity.ThreadID, msg infinity.MessageID, now int64) bool {
	exp, ok := s.processed[appliedKey{id, msg}]
	return ok && now < exp
}

// CheckMark checks MarkProcessed's arguments, before any lock: a ttl that
// is not positive is ErrInvalid. It reports whether there is anything to
// mark (no msgs: nothing to apply or journal).
func CheckMark(id infinity.ThreadID, msgs []infinity.MessageID, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("mark processed %s: ttl %v: %w", id, ttl, infinity.ErrInvalid)
	}
	return len(msgs) > 0, nil
}

// Expiry returns now+ttl in Unix nanoseconds, capped instead of wrapping
// around for a ttl meant as "forever".
func Expiry(now int64, ttl time.Duration) int64 {
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// ApplyMark records msgs as processed for the thread until exp, replacing
// earlier marks of the same ids, and takes them out of the inbox. Expired
// marks are purged as marks are added, at an amortised constant cost per
// mark.
func (s *State) ApplyMark(id infinity.ThreadID, msgs []infinity.MessageID, now, exp int64) {
	for _, m := range msgs {
		k := appliedKey{id, m}
		s.processed[k] = exp
		delete(s.inbox, k)
	}
	s.shrinkInbox()
	s.marks += len(msgs)
	s.peak = max(s.peak, len(s.processed))
	if s.marks >= max(SweepMin, s.live) {
		s.sweep(now)
	}
}

// sweep deletes expired marks and, when the map has shrunk to a fraction of
// its peak, reallocates it (Go maps do not give memory back on delete).
func (s *State) sweep(now int64) {
	for k, exp := range s.processed {
		if now >= exp {
			delete(s.processed, k)
		}
	}
	s.marks = 0
	s.live = len(s.processed)
	if n := s.live; s.peak > SweepMin && n < s.peak/4 {
		m := make(map[appliedKey]int64, n)
		for k, v := range s.processed {
			m[k] = v
		}
		s.processed = m
		s.peak = n
	}
}

// Load returns the thread's saved state and version, or ErrNotFound if it
// was never saved. The state is the stored value, not a copy: it is never
// mutated in place (ApplySave replaces it), so the caller may copy it with
// CloneState after releasing the lock.
func (s *State) Load(id infinity.ThreadID) (infinity.State, infinity.Version, error) {
	r, ok := s.records[id]
	if !ok {
		return infinity.State{}, 0, fmt.Errorf("load state %s: %w", id, infinity.ErrNotFound)
	}
	return r.state, r.version, nil
}

// Version returns the thread's stored version, 0 if it was never saved.
func (s *State) Version(id infinity.ThreadID) infinity.Version { return s.records[id].version }

// CheckSave runs Save's check: the stored version (0: no record yet) must be
// v, or it is ErrConflict.
func (s *State) CheckSave(id infinity.ThreadID, v infinity.Version) error {
	if have := s.records[id].version; have != v {
		return fmt.Errorf("save state %s: version %d, stored %d: %w", id, v, have, infinity.ErrConflict)
	}
	return nil
}

// ApplySave stores st, which the caller owns no more, as the thread's state
// at version v (the checked version plus one, or a snapshot's version).
func (s *State) ApplySave(id infinity.ThreadID, st infinity.State, v infinity.Version) {
	s.records[id] = record{state: st, version: v}
}

// Saved is one saved state in a snapshot.
type Saved struct {
	Thread  infinity.ThreadID
	State   infinity.State
	Version infinity.Version
}

// Mark is one processed mark in a snapshot.
type Mark struct {
	Thread infinity.ThreadID
	Msg    infinity.MessageID
	Exp    int64
}

// Capture copies the saved states and the marks unexpired at now for a
// snapshot. The caller holds the lock; the result may be used after
// releasing it (states are never mutated in place).
func (s *State) Capture(now int64) ([]Saved, []Mark) {
	states := make([]Saved, 0, len(s.records))
	for id, r := range s.records {
		states = append(states, Saved{Thread: id, State: r.state, Version: r.version})
	}
	marks := make([]Mark, 0, len(s.processed))
	for k, exp := range s.processed {
		if now < exp {
			marks = append(marks, Mark{Thread: k.thread, Msg: k.msg, Exp: exp})
		}
	}
	return states, marks
}

// RestoreMark adds a processed mark from a snapshot. Call RestoreDone after
// the last one.
func (s *State) RestoreMark(m Mark) {
	s.processed[appliedKey{m.Thread, m.Msg}] = m.Exp
}

// RestoreDone resets the sweep bookkeeping after a snapshot was restored.
func (s *State) RestoreDone() {
	s.live = len(s.processed)
	s.peak = s.live
}

// MarksOf counts the marks held for the thread, expired or not (for tests).
func (s *State) MarksOf(id infinity.ThreadID) int {
	n := 0
	for k := range s.processed {
		if k.thread == id {
			n++
		}
	}
	return n
}

// Marks returns how many marks the map holds, expired or not (for tests).
func (s *State) Marks() int { return len(s.processed) }

// Peak returns the most marks the map held since it was allocated (for
// tests).
func (s *State) Peak() int { return s.peak }

// DeleteThreads forgets the threads' saved states, processed marks and
// waiting messages.
func (s *State) DeleteThreads(ids []infinity.ThreadID) {
	if len(ids) == 0 {
		return
	}
	gone := make(map[infinity.ThreadID]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
		delete(s.records, id)
	}
	for k := range s.processed {
		if gone[k.thread] {
			delete(s.processed, k)
		}
	}
	for k := range s.inbox {
		if gone[k.thread] {
			delete(s.inbox, k)
		}
	}
	s.shrinkInbox()
}
