package local_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/internal/syncbuf"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/mailbox/sendertest"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// chanDeliverer pushes delivered messages into a channel. If fail is set, it
// refuses messages while fail returns true.
type chanDeliverer struct {
	ch       chan infinity.InputMessage
	attempts atomic.Int64
	fail     func() bool
}

func newChanDeliverer() *chanDeliverer {
	return &chanDeliverer{ch: make(chan infinity.InputMessage, 1024)}
}

var errRefused = errors.New("host refused")

func (d *chanDeliverer) Deliver(m infinity.InputMessage) error {
	d.attempts.Add(1)
	if d.fail != nil && d.fail() {
		return errRefused
	}
	d.ch <- m
	return nil
}

func (d *chanDeliverer) Received(ctx context.Context) (infinity.InputMessage, error) {
	select {
	case m := <-d.ch:
		return m, nil
	case <-ctx.Done():
		return infinity.InputMessage{}, ctx.Err()
	}
}

func TestConformance(t *testing.T) { runConformance(t, nil) }

// runConformance runs the sender suite on a fake clock; opts adds options
// built on that clock.
func runConformance(t *testing.T, opts func(t *testing.T, c *clocktest.Clock) []local.Option) {
	sendertest.Run(t, func(t *testing.T) sendertest.Harness {
		d := newChanDeliverer()
		c := clocktest.New(epoch)
		o := []local.Option{local.WithClock(c)}
		if opts != nil {
			o = append(o, opts(t, c)...)
		}
		s := local.New(d, o...)
		t.Cleanup(s.Close)
		return sendertest.Harness{Sender: s, Clock: c, Received: d.Received}
	})
}

func TestConformanceRealClock(t *testing.T) {
	sendertest.Run(t, func(t *testing.T) sendertest.Harness {
		d := newChanDeliverer()
		s := local.New(d)
		t.Cleanup(s.Close)
		return sendertest.Harness{Sender: s, Received: d.Received}
	})
}

func msg(thread, id string) infinity.InputMessage {
	return infinity.InputMessage{
		ID:      infinity.MessageID(id),
		GroupID: infinity.ThreadID(thread),
		Content: infinity.TextContent("hi"),
	}
}

func mustSend(t *testing.T, s *local.Sender, m infinity.InputMessage, at time.Time) {
	t.Helper()
	if err := s.Send(context.Background(), m, at); err != nil {
		t.Fatalf("Send %s: %v", m.ID, err)
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func expectNone(t *testing.T, d *chanDeliverer) {
	t.Helper()
	select {
	case m := <-d.ch:
		t.Fatalf("unexpected delivery of %s to %s", m.ID, m.GroupID)
	case <-time.After(100 * time.Millisecond):
	}
}

func expectIDs(t *testing.T, d *chanDeliverer, ids ...string) {
	t.Helper()
	want := make(map[string]bool)
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		select {
		case m := <-d.ch:
			if !want[string(m.ID)] {
				t.Fatalf("unexpected delivery of %s", m.ID)
			}
			delete(want, string(m.ID))
		case <-time.After(5 * time.Second):
			t.Fatalf("still waiting for %v", want)
		}
	}
	expectNone(t, d)
}

func TestCancelThread(t *testing.T) {
	d := newChanDeliverer()
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(c))
	defer s.Close()

	for i := range 4 {
		mustSend(t, s, msg("a", fmt.Sprintf("a%d", i)), epoch.Add(time.Duration(i+1)*time.Minute))
	}
	mustSend(t, s, msg("b", "b0"), epoch.Add(time.Hour))
	if got := s.Pending(); got != 5 {
		t.Fatalf("Pending = %d, want 5", got)
	}

	// a0 fires and leaves the thread's list.
	c.Advance(time.Minute)
	expectIDs(t, d, "a0")
	eventually(t, "a0 to leave the registry", func() bool { return s.Pending() == 4 })

	if m, ok := s.Queued("a", "a2"); !ok || m.ID != "a2" {
		t.Fatalf("Queued(a, a2) = %v, %v", m, ok)
	}
	if _, ok := s.Queued("a", "a0"); ok {
		t.Fatal("a delivered message is still queued")
	}
	if n := s.CancelThread("a"); n != 3 {
		t.Fatalf("CancelThread(a) = %d, want 3", n)
	}
	if _, ok := s.Queued("a", "a2"); ok {
		t.Fatal("a cancelled message is still queued")
	}
	if n := s.CancelThread("a"); n != 0 {
		t.Fatalf("second CancelThread(a) = %d, want 0", n)
	}
	if n := s.CancelThread("unknown"); n != 0 {
		t.Fatalf("CancelThread(unknown) = %d, want 0", n)
	}
	if got := s.Pending(); got != 1 {
		t.Fatalf("Pending = %d after CancelThread, want 1", got)
	}
	if got := c.Pending(); got != 1 {
		t.Fatalf("clock has %d timers after CancelThread, want 1 (stopped)", got)
	}
	c.Advance(2 * time.Hour)
	expectIDs(t, d, "b0")

	// The thread can be scheduled again after cancelling.
	mustSend(t, s, msg("a", "a1"), c.Now().Add(time.Minute))
	c.Advance(time.Minute)
	expectIDs(t, d, "a1")
}

// CancelThread must unlink entries from the middle, head and tail of a
// thread's list correctly.
func TestCancelThreadAfterPartialDelivery(t *testing.T) {
	for _, fire := range []int{0, 1, 2} {
		t.Run(fmt.Sprint(fire), func(t *testing.T) {
			d := newChanDeliverer()
			c := clocktest.New(epoch)
			s := local.New(d, local.WithClock(c))
			defer s.Close()
			for i := range 3 {
				at := epoch.Add(time.Hour)
				if i == fire {
					at = epoch.Add(time.Minute)
				}
				mustSend(t, s, msg("a", fmt.Sprintf("a%d", i)), at)
			}
			c.Advance(time.Minute)
			expectIDs(t, d, fmt.Sprintf("a%d", fire))
			eventually(t, "delivery to leave the registry", func() bool { return s.Pending() == 2 })
			if n := s.CancelThread("a"); n != 2 {
				t.Fatalf("CancelThread = %d, want 2", n)
			}
			c.Advance(2 * time.Hour)
			expectNone(t, d)
		})
	}
}

func TestClose(t *testing.T) {
	d := newChanDeliverer()
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(c))
	mustSend(t, s, msg("a", "a0"), epoch.Add(time.Minute))
	mustSend(t, s, msg("b", "b0"), epoch.Add(time.Hour))
	s.Close()
	s.Close() // idempotent

	if got := s.Pending(); got != 0 {
		t.Fatalf("Pending after Close = %d", got)
	}
	if got := c.Pending(); got != 0 {
		t.Fatalf("clock has %d timers after Close, want 0", got)
	}
	for _, at := range []time.Time{{}, epoch.Add(time.Hour)} {
		if err := s.Send(context.Background(), msg("a", "a1"), at); !errors.Is(err, local.ErrStopped) {
			t.Fatalf("Send after Close (at %v) = %v, want ErrStopped", at, err)
		}
	}
	if n := s.CancelThread("a"); n != 0 {
		t.Fatalf("CancelThread after Close = %d", n)
	}
	c.Advance(2 * time.Hour)
	expectNone(t, d)
}

// unstoppableClock's timers cannot be stopped, like a timer that has already
// fired but whose function has not run yet.
type unstoppableClock struct{ *clocktest.Clock }

func (c unstoppableClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.Clock.AfterFunc(d, f)
	return func() bool { return false }
}

func TestTimerFiringAfterCloseDoesNothing(t *testing.T) {
	d := newChanDeliverer()
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(unstoppableClock{c}))
	mustSend(t, s, msg("a", "a0"), epoch.Add(time.Minute))
	s.Close()
	c.Advance(time.Hour)
	eventually(t, "the timer to fire", func() bool { return c.Pending() == 0 })
	expectNone(t, d)
	if n := d.attempts.Load(); n != 0 {
		t.Fatalf("Deliver called %d times after Close", n)
	}
}

func TestTimerFiringAfterCancelThreadDoesNothing(t *testing.T) {
	d := newChanDeliverer()
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(unstoppableClock{c}))
	defer s.Close()
	mustSend(t, s, msg("a", "a0"), epoch.Add(time.Minute))
	if n := s.CancelThread("a"); n != 1 {
		t.Fatalf("CancelThread = %d, want 1", n)
	}
	c.Advance(time.Hour)
	eventually(t, "the timer to fire", func() bool { return c.Pending() == 0 })
	expectNone(t, d)
}

// syncBuffer collects output written from many goroutines.
type syncBuffer = syncbuf.Buffer

func TestRetryUntilDelivered(t *testing.T) {
	d := newChanDeliverer()
	var failures atomic.Int64
	failures.Store(3)
	d.fail = func() bool { return failures.Add(-1) >= 0 }
	c := clocktest.New(epoch)
	var logs syncBuffer
	s := local.New(d, local.WithClock(c), local.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer s.Close()

	mustSend(t, s, msg("thread-r", "msg-r"), epoch.Add(time.Minute))
	c.Advance(time.Minute)

	// Failed attempts are retried after 100 ms, 200 ms and 400 ms.
	for i, backoff := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		attempts := int64(i + 1)
		eventually(t, fmt.Sprintf("attempt %d to be retried", attempts), func() bool {
			return d.attempts.Load() == attempts && c.Pending() == 1
		})
		if got := s.Pending(); got != 1 {
			t.Fatalf("Pending while retrying = %d, want 1", got)
		}
		c.Advance(backoff - time.Millisecond)
		expectNone(t, d)
		if got := d.attempts.Load(); got != attempts {
			t.Fatalf("retried before the backoff: %d attempts", got)
		}
		c.Advance(time.Millisecond)
	}
	expectIDs(t, d, "msg-r")
	if got := d.attempts.Load(); got != 4 {
		t.Fatalf("%d attempts, want 4", got)
	}
	eventually(t, "the delivered message to leave the registry", func() bool { return s.Pending() == 0 })
	eventually(t, "three log lines", func() bool { return strings.Count(logs.String(), "\n") == 3 })
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		for _, attr := range []string{"level=WARN", "thread=thread-r", "message=msg-r", "host refused"} {
			if !strings.Contains(line, attr) {
				t.Errorf("log line %q lacks %q", line, attr)
			}
		}
	}
}

func TestRetryBackoffIsCapped(t *testing.T) {
	d := newChanDeliverer()
	var refuse atomic.Bool
	refuse.Store(true)
	d.fail = refuse.Load
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(c),
		local.WithBackoff(time.Second, 5*time.Second),
		local.WithLogger(slog.New(slog.DiscardHandler)))
	defer s.Close()

	mustSend(t, s, msg("a", "a0"), epoch.Add(time.Minute))
	c.Advance(time.Minute)
	// 1s, 2s, 4s, then capped at 5s.
	for i, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		attempts := int64(i + 1)
		eventually(t, fmt.Sprintf("attempt %d to be retried", attempts), func() bool {
			return d.attempts.Load() == attempts && c.Pending() == 1
		})
		c.Advance(backoff - time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		if got := d.attempts.Load(); got != attempts {
			t.Fatalf("retry %d came before %v", attempts, backoff)
		}
		c.Advance(time.Millisecond)
	}
	eventually(t, "attempt 6", func() bool { return d.attempts.Load() == 6 && c.Pending() == 1 })
	refuse.Store(false)
	c.Advance(5 * time.Second)
	expectIDs(t, d, "a0")
}

func TestRetryStopsOnCloseAndCancel(t *testing.T) {
	for _, stop := range []string{"Close", "CancelThread"} {
		t.Run(stop, func(t *testing.T) {
			d := newChanDeliverer()
			d.fail = func() bool { return true }
			c := clocktest.New(epoch)
			s := local.New(d, local.WithClock(c), local.WithLogger(slog.New(slog.DiscardHandler)))
			defer s.Close()
			mustSend(t, s, msg("a", "a0"), epoch.Add(time.Minute))
			c.Advance(time.Minute)
			eventually(t, "the retry to be armed", func() bool { return d.attempts.Load() == 1 && c.Pending() == 1 })
			if stop == "Close" {
				s.Close()
			} else if n := s.CancelThread("a"); n != 1 {
				t.Fatalf("CancelThread = %d, want 1", n)
			}
			if got := c.Pending(); got != 0 {
				t.Fatalf("retry timer still armed after %s", stop)
			}
			c.Advance(time.Hour)
			time.Sleep(50 * time.Millisecond)
			if got := d.attempts.Load(); got != 1 {
				t.Fatalf("%d attempts after %s, want 1", got, stop)
			}
		})
	}
}

func TestSameIDWhilePendingArmsOneTimer(t *testing.T) {
	d := newChanDeliverer()
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(c))
	defer s.Close()

	m := msg("a", "a0")
	mustSend(t, s, m, epoch.Add(time.Minute))
	mustSend(t, s, m, epoch.Add(time.Minute))
	mustSend(t, s, m, epoch.Add(time.Hour))     // a different time replaces nothing
	mustSend(t, s, m, time.Time{})              // "now" means now, even while a copy waits (a repeat is harmless)
	mustSend(t, s, msg("b", "a0"), time.Time{}) // the same id on another thread is another message
	groups := map[infinity.ThreadID]bool{}
	for range 2 {
		select {
		case got := <-d.ch:
			groups[got.GroupID] = true
		case <-time.After(5 * time.Second):
			t.Fatal("the immediate sends were not delivered")
		}
	}
	if !groups["a"] || !groups["b"] {
		t.Fatalf("immediate deliveries went to %v, want a and b", groups)
	}
	if got := s.Pending(); got != 1 {
		t.Fatalf("Pending = %d, want 1", got)
	}
	if got := c.Pending(); got != 1 {
		t.Fatalf("clock has %d timers, want 1", got)
	}
	c.Advance(time.Minute)
	expectIDs(t, d, "a0")
	eventually(t, "the registry to empty", func() bool { return s.Pending() == 0 })

	// Once delivered, the id can be scheduled again.
	mustSend(t, s, m, c.Now().Add(time.Minute))
	if got := s.Pending(); got != 1 {
		t.Fatalf("Pending = %d after re-scheduling, want 1", got)
	}
}

func TestImmediateDeliverError(t *testing.T) {
	d := newChanDeliverer()
	d.fail = func() bool { return true }
	s := local.New(d, local.WithClock(clocktest.New(epoch)))
	defer s.Close()
	err := s.Send(context.Background(), msg("a", "a0"), time.Time{})
	if !errors.Is(err, errRefused) {
		t.Fatalf("Send = %v, want an error wrapping the Deliverer's", err)
	}
	if s.Pending() != 0 {
		t.Fatal("an immediate send that failed was kept for retry")
	}
}

func TestInvalidNamesTheProblem(t *testing.T) {
	s := local.New(newChanDeliverer())
	defer s.Close()
	err := s.Send(context.Background(), msg("a", ""), time.Time{})
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "without an id") {
		t.Fatalf("Send without id = %v", err)
	}
	err = s.Send(context.Background(), msg("", "m1"), time.Time{})
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "group_id") {
		t.Fatalf("Send without thread = %v", err)
	}
}

// Pending timers on the system clock hold no goroutine.
func TestNoGoroutinePerTimer(t *testing.T) {
	s := local.New(newChanDeliverer())
	defer s.Close()
	before := runtime.NumGoroutine()
	at := time.Now().Add(time.Hour)
	for i := range 1000 {
		mustSend(t, s, msg(fmt.Sprintf("t%d", i), "m"), at)
	}
	if got := runtime.NumGoroutine(); got > before+10 {
		t.Fatalf("goroutines grew from %d to %d for 1000 timers", before, got)
	}
}

// Concurrent sends, cancels and deliveries on the real clock (for -race).
func TestConcurrent(t *testing.T) {
	d := &countDeliverer{}
	s := local.New(d, local.WithBackoff(time.Millisecond, 5*time.Millisecond),
		local.WithLogger(slog.New(slog.DiscardHandler)))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				thread := fmt.Sprintf("t%d", (g+i)%5)
				at := time.Time{}
				if i%2 == 0 {
					at = time.Now().Add(time.Duration(i%7) * time.Millisecond)
				}
				err := s.Send(context.Background(), msg(thread, fmt.Sprintf("g%d-%d", g, i)), at)
				if err != nil && !errors.Is(err, errRefused) {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					s.CancelThread(infinity.ThreadID(thread))
				}
				_ = s.Pending()
			}
		})
	}
	wg.Wait()
	time.Sleep(30 * time.Millisecond)
	s.Close()
	if d.n.Load() == 0 {
		t.Fatal("nothing delivered")
	}
}

// countDeliverer counts deliveries and refuses one in three.
type countDeliverer struct{ n, calls atomic.Int64 }

func (d *countDeliverer) Deliver(infinity.InputMessage) error {
	if d.calls.Add(1)%3 == 0 {
		return errRefused
	}
	d.n.Add(1)
	return nil
}

type nopDeliverer struct{}

func (nopDeliverer) Deliver(infinity.InputMessage) error { return nil }

// BenchmarkPendingTimers arms 100,000 timers an hour out on the system clock
// (one thread each, the worst case for the per-thread index) and reports the
// heap they take per timer: the sender's record, its registry entries and
// its slot in the due heap. The messages' strings are built beforehand and not
// counted; the copy of the InputMessage struct the sender keeps is.
func BenchmarkPendingTimers(b *testing.B) {
	const n = 100_000
	msgs := make([]infinity.InputMessage, n)
	for i := range msgs {
		msgs[i] = infinity.InputMessage{
			ID:      infinity.MessageID(fmt.Sprintf("m%020d", i)),
			GroupID: infinity.ThreadID(fmt.Sprintf("t%020d", i)),
			Content: infinity.TextContent("wake up"),
		}
	}
	ctx := context.Background()
	var bytesPerTimer, nsPerTimer float64
	for b.Loop() {
		s := local.New(nopDeliverer{})
		at := time.Now().Add(time.Hour)
		var before, after runtime.MemStats
		settleHeap()
		runtime.ReadMemStats(&before)
		start := time.Now()
		for i := range msgs {
			if err := s.Send(ctx, msgs[i], at); err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if s.Pending() != n {
			b.Fatalf("Pending = %d, want %d", s.Pending(), n)
		}
		bytesPerTimer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		nsPerTimer = float64(elapsed.Nanoseconds()) / n
		s.Close()
	}
	b.ReportMetric(bytesPerTimer, "B/timer")
	b.ReportMetric(nsPerTimer, "ns/timer")
}

// settleHeap collects garbage until the heap stops shrinking. Timers stopped
// by an earlier Close stay in the runtime's per-P timer heaps (keeping their
// closures, and so the sender's records, alive) until the scheduler of that
// P clears them, so it also lets every P schedule a few goroutines.
func settleHeap() {
	var ms runtime.MemStats
	last := ^uint64(0)
	for range 20 {
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) * 4 {
			wg.Go(func() {
				for range 10 {
					runtime.Gosched()
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc >= last {
			return
		}
		last = ms.HeapAlloc
	}
}

// BenchmarkSendNow measures an immediate send to a no-op Deliverer.
func BenchmarkSendNow(b *testing.B) {
	s := local.New(nopDeliverer{})
	defer s.Close()
	m := msg("thread-bench", "m-bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(ctx, m, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

type refusingDeliverer struct{ calls atomic.Int32 }

func (r *refusingDeliverer) Deliver(infinity.InputMessage) error {
	r.calls.Add(1)
	return fmt.Errorf("not yet: %w", infinity.ErrNotImplemented)
}

// A delayed message the host refuses for good is dropped, not retried
// forever.
func TestPermanentRefusalIsDropped(t *testing.T) {
	d := &refusingDeliverer{}
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(c), local.WithLogger(quiet()))
	defer s.Close()
	mustSend(t, s, msg("a", "a0"), epoch.Add(time.Minute))
	c.Advance(time.Minute)
	eventually(t, "the refused message to be dropped", func() bool { return s.Pending() == 0 })
	c.Advance(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if n := d.calls.Load(); n != 1 {
		t.Fatalf("delivery tried %d times, want 1", n)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// creepingClock moves forward by step at every reading while creep is
// set: time that passes while Send works (a wait for the sender's lock,
// a descheduled goroutine).
type creepingClock struct {
	*clocktest.Clock
	step  time.Duration
	creep atomic.Bool
}

func (c *creepingClock) Now() time.Time {
	if c.creep.Load() {
		c.Advance(c.step)
	}
	return c.Clock.Now()
}

// TestTimerFiresAtItsDueTime: a timed message is due at the time its
// sender asked for, however long Send itself took. (The sender used to
// turn at into a delay before it took its lock, and back into a time
// after: every wait for the lock moved the wake-up later by as much.)
func TestTimerFiresAtItsDueTime(t *testing.T) {
	d := newChanDeliverer()
	c := &creepingClock{Clock: clocktest.New(epoch), step: time.Second}
	s := local.New(d, local.WithClock(c))
	defer s.Close()
	at := epoch.Add(10 * time.Second)
	c.creep.Store(true)
	if err := s.Send(context.Background(), msg("t1", "m1"), at); err != nil {
		t.Fatal(err)
	}
	c.creep.Store(false)
	if now := c.Now(); !now.Before(at) {
		t.Fatalf("the clock passed the due time during Send (%s); the test needs a smaller step", now)
	}
	c.Set(at)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := d.Received(ctx)
	if err != nil {
		t.Fatalf("nothing delivered when the clock reached the due time: %v", err)
	}
	if m.ID != "m1" {
		t.Fatalf("delivered %s", m.ID)
	}
}

// deafClock is a clock whose timers never fire: only Poll delivers.
type deafClock struct{ *clocktest.Clock }

func (deafClock) AfterFunc(time.Duration, func()) func() bool { return func() bool { return true } }

// TestPollDeliversWhatIsDue: Poll delivers the due messages in due order
// (and nothing early) when the sender's own timer does not fire.
func TestPollDeliversWhatIsDue(t *testing.T) {
	d := newChanDeliverer()
	c := clocktest.New(epoch)
	s := local.New(d, local.WithClock(deafClock{c}))
	defer s.Close()
	s.Poll() // nothing armed
	mustSend(t, s, msg("a", "late"), epoch.Add(2*time.Second))
	mustSend(t, s, msg("b", "early"), epoch.Add(time.Second))
	s.Poll()
	expectNone(t, d)
	c.Advance(time.Second)
	s.Poll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m, err := d.Received(ctx); err != nil || m.ID != "early" {
		t.Fatalf("first Poll delivered %v, %v; want early", m.ID, err)
	}
	expectNone(t, d)
	c.Advance(time.Hour)
	s.Poll()
	if m, err := d.Received(ctx); err != nil || m.ID != "late" {
		t.Fatalf("second Poll delivered %v, %v; want late", m.ID, err)
	}
	if n := s.Pending(); n != 0 {
		t.Fatalf("Pending = %d after both were delivered", n)
	}
	s.Close()
	s.Poll() // after Close: nothing, no panic
}
