package daemon

import (
	"testing"
	"time"
)

// A remembered message is dropped when applied, with its closed thread, or
// after sendsKeep; the first text claimed under an id stays.
func TestSendsRemember(t *testing.T) {
	now := time.Unix(0, 0)
	s := newSends(func() time.Time { return now })
	if _, ok := s.claim("t", "m1", "one"); !ok {
		t.Fatal("m1 not claimed")
	}
	if text, ok := s.claim("t", "m1", "two"); ok || text != "one" {
		t.Fatalf("m1 again: %q, %v", text, ok)
	}
	s.claim("t", "m2", "x")
	s.claim("u", "m1", "y")
	s.forget("t", "m2")
	s.forgetThread("u")
	if s.size() != 1 {
		t.Fatalf("%d remembered, want 1", s.size())
	}
	now = now.Add(time.Minute)
	s.forget("t", "m1")
	s.claim("t", "m1", "one") // claimed again: a newer entry of order
	now = now.Add(sendsKeep - time.Minute)
	s.claim("v", "m9", "z") // expires what is sendsKeep old; m1's new claim is not
	if _, ok := s.lookup("t", "m1"); !ok || s.size() != 2 {
		t.Fatalf("after sendsKeep from the first claims: %d remembered, order %v", s.size(), s.order)
	}
	now = now.Add(time.Minute)
	s.claim("v", "m10", "z")
	if _, ok := s.lookup("t", "m1"); ok || s.size() != 2 || len(s.order) != 2 {
		t.Fatalf("after sendsKeep: %d remembered, order %v", s.size(), s.order)
	}
}
