package daemon

import (
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// sendsKeep is how long an accepted message's text is remembered when its
// thread never applies it (a thread closed meanwhile, a message dropped).
const sendsKeep = time.Hour

// sends remembers the text of each message the API took with an id of its
// caller's, from when it is taken until its thread's history holds it. A
// message handed to its thread but not yet applied is in neither the
// sender's queue nor the history: without this, a resend with other text
// in that window (a slice waiting seconds for a slow model) would be
// accepted and then dropped by the engine as a duplicate.
type sends struct {
	mu    sync.Mutex
	m     map[sendKey]sent
	order []claimed // oldest first, for expiry; some are gone from m
	now   func() time.Time
}

type sendKey struct {
	thread infinity.ThreadID
	id     infinity.MessageID
}

type sent struct {
	text string
	at   time.Time
}

// claimed is an entry of sends.order: a key as it was claimed at.
type claimed struct {
	k  sendKey
	at time.Time
}

func newSends(now func() time.Time) *sends {
	return &sends{m: map[sendKey]sent{}, now: now}
}

// claim records text for the message, unless it has one: then it returns
// that text and false.
func (s *sends) claim(thread infinity.ThreadID, id infinity.MessageID, text string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	k := sendKey{thread, id}
	if e, ok := s.m[k]; ok {
		return e.text, false
	}
	s.m[k] = sent{text: text, at: now}
	s.order = append(s.order, claimed{k, now})
	return "", true
}

// lookup returns the text recorded for the message.
func (s *sends) lookup(thread infinity.ThreadID, id infinity.MessageID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[sendKey{thread, id}]
	return e.text, ok
}

// forget drops a message: its thread applied it, or sending it failed.
func (s *sends) forget(thread infinity.ThreadID, id infinity.MessageID) {
	s.mu.Lock()
	delete(s.m, sendKey{thread, id})
	s.mu.Unlock()
}

// forgetThread drops a closed thread's messages.
func (s *sends) forgetThread(thread infinity.ThreadID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if k.thread == thread {
			delete(s.m, k)
		}
	}
}

// expire drops what is older than sendsKeep. s.mu is held.
func (s *sends) expire(now time.Time) {
	n := 0
	for _, c := range s.order {
		if e, ok := s.m[c.k]; !ok || !e.at.Equal(c.at) {
			n++ // forgotten, or claimed again later (a newer entry of order)
			continue
		}
		if now.Sub(c.at) < sendsKeep {
			break
		}
		delete(s.m, c.k)
		n++
	}
	if n > 0 {
		s.order = s.order[n:]
	}
}

// size is how many messages are remembered.
func (s *sends) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
