package model

import (
	"fmt"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// A burst of waiting messages does not keep its map: once under a quarter
// of the peak is left, the inbox is copied into a map of its live size,
// with the same messages in the same order.
func TestInboxShrinks(t *testing.T) {
	s := NewState()
	const n = 4 * inboxShrinkMin
	id := infinity.ThreadID("t")
	for i := range n {
		s.ApplyPut(infinity.InputMessage{ID: infinity.MessageID(fmt.Sprint(i)), GroupID: id}, time.Time{})
	}
	before := s.inbox
	var drop []infinity.MessageID
	for i := range n - n/4 + 1 {
		drop = append(drop, infinity.MessageID(fmt.Sprint(i)))
	}
	s.ApplyDrop(id, drop)
	if len(s.inbox) != n/4-1 || s.inboxPeak != n/4-1 {
		t.Fatalf("inbox holds %d (peak %d), want %d", len(s.inbox), s.inboxPeak, n/4-1)
	}
	after := s.inbox
	after[appliedKey{"x", "y"}] = nil // a copy: the old map does not see it
	if _, ok := before[appliedKey{"x", "y"}]; ok {
		t.Fatal("the inbox was not copied")
	}
	delete(after, appliedKey{"x", "y"})
	w := s.Waiting()
	if len(w) != n/4-1 || w[0].Message.ID != infinity.MessageID(fmt.Sprint(n-n/4+1)) {
		t.Fatalf("waiting after the shrink: %d, first %v", len(w), w[0].Message.ID)
	}
}
