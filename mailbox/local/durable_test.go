package local_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// The conformance suite again, with the sender durable: on a memory inbox
// and on the disk store's.
func TestConformanceDurable(t *testing.T) {
	runConformance(t, func(_ *testing.T, c *clocktest.Clock) []local.Option {
		return []local.Option{local.WithInbox(memory.NewStateStore(c))}
	})
}

func TestConformanceDurableDisk(t *testing.T) {
	runConformance(t, func(t *testing.T, c *clocktest.Clock) []local.Option {
		return []local.Option{local.WithInbox(openDisk(t, t.TempDir(), c).Inbox())}
	})
}

func openDisk(t *testing.T, dir string, c infinity.Clock) *disk.Store {
	t.Helper()
	st, err := disk.Open(dir, disk.WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// What a durable sender accepted comes back after a restart: due messages
// are delivered at once, later ones are re-armed, processed ones are gone.
func TestRestoreAfterRestart(t *testing.T) {
	dir := t.TempDir()
	c := clocktest.New(epoch)
	down := newChanDeliverer()
	down.fail = func() bool { return true } // the host is going down
	st := openDisk(t, dir, c)
	s := local.New(down, local.WithClock(c), local.WithInbox(st.Inbox()), local.WithLogger(quiet()))
	// Accepted although the host refused it for now: it is durable.
	mustSend(t, s, msg("a", "now"), time.Time{})
	mustSend(t, s, msg("a", "in-a-minute"), epoch.Add(time.Minute))
	mustSend(t, s, msg("b", "in-an-hour"), epoch.Add(time.Hour))
	mustSend(t, s, msg("b", "done"), time.Time{})
	if err := st.State().MarkProcessed(t.Context(), "b", []infinity.MessageID{"done"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	c.Advance(2 * time.Minute)
	st = openDisk(t, dir, c)
	up := newChanDeliverer()
	s = local.New(up, local.WithClock(c), local.WithInbox(st.Inbox()))
	defer s.Close()
	n, err := s.Restore(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("Restore = %d, %v; want 3 messages", n, err)
	}
	expectIDs(t, up, "now", "in-a-minute")
	if p := s.Pending(); p != 1 {
		t.Fatalf("%d timers armed after Restore, want 1", p)
	}
	c.Advance(time.Hour)
	expectIDs(t, up, "in-an-hour")

	// A resend of a processed message is not delivered again.
	mustSend(t, s, msg("b", "done"), time.Time{})
	expectNone(t, up)
}

// A message the host refuses for good fails Send and leaves the inbox.
func TestRefusedLeavesInbox(t *testing.T) {
	c := clocktest.New(epoch)
	inbox := memory.NewStateStore(c)
	s := local.New(&refusingDeliverer{}, local.WithClock(c), local.WithInbox(inbox), local.WithLogger(quiet()))
	defer s.Close()
	err := s.Send(t.Context(), msg("a", "x"), time.Time{})
	if !errors.Is(err, infinity.ErrNotImplemented) {
		t.Fatalf("Send = %v, want ErrNotImplemented", err)
	}
	mustSend(t, s, msg("a", "y"), epoch.Add(time.Minute))
	c.Advance(time.Minute)
	eventually(t, "the refused timer to leave the inbox", func() bool {
		w, err := inbox.Waiting(context.Background())
		return err == nil && len(w) == 0
	})
}

// Send after Close fails and records nothing.
func TestDurableSendAfterClose(t *testing.T) {
	inbox := memory.NewStateStore(nil)
	s := local.New(newChanDeliverer(), local.WithInbox(inbox))
	s.Close()
	if err := s.Send(t.Context(), msg("a", "x"), time.Time{}); !errors.Is(err, local.ErrStopped) {
		t.Fatalf("Send after Close = %v, want ErrStopped", err)
	}
	if w, _ := inbox.Waiting(t.Context()); len(w) != 0 {
		t.Fatalf("inbox holds %d messages after a refused Send", len(w))
	}
}
