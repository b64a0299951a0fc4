package local

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

type funcDeliverer func(infinity.InputMessage) error

func (f funcDeliverer) Deliver(m infinity.InputMessage) error { return f(m) }

// TestSystemClockUsesTimerfd: with the system clock on Linux the sender's
// timer is a timerfd read through the poller; it delivers on time, is
// re-armed for the next message, and Close stops its goroutine.
func TestSystemClockUsesTimerfd(t *testing.T) {
	got := make(chan time.Duration, 2)
	due := map[infinity.MessageID]time.Time{}
	s := New(funcDeliverer(func(m infinity.InputMessage) error {
		got <- time.Since(due[m.ID])
		return nil
	}))
	before := runtime.NumGoroutine()
	now := time.Now()
	due["m1"], due["m2"] = now.Add(30*time.Millisecond), now.Add(60*time.Millisecond)
	for _, id := range []infinity.MessageID{"m2", "m1"} {
		m := infinity.InputMessage{ID: id, GroupID: "t1", Content: infinity.Content{Type: infinity.ContentText, Text: "wake"}}
		if err := s.Send(context.Background(), m, due[id]); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	fdt := s.fdt
	s.mu.Unlock()
	if fdt == nil {
		t.Fatal("no timerfd with the system clock")
	}
	for range 2 {
		select {
		case late := <-got:
			if late < 0 {
				t.Fatalf("delivered %s early", -late)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a timed message was not delivered")
		}
	}
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines: %d before the first timer, %d after Close", before, n)
	}
}
