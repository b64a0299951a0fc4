package memory

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
	"github.com/infinity-runtime/infinity/persistence/storetest"
)

func TestConversationStore(t *testing.T) {
	storetest.RunConversation(t, func(*testing.T) infinity.ConversationStore {
		return NewConversationStore()
	})
}

func TestStateStore(t *testing.T) {
	storetest.RunState(t, func(_ *testing.T, clock infinity.Clock) infinity.StateStore {
		return NewStateStore(clock)
	})
}

func TestInbox(t *testing.T) {
	storetest.RunInbox(t, func(_ *testing.T, clock infinity.Clock) storetest.InboxStore {
		return NewStateStore(clock)
	})
}

func TestNilClock(t *testing.T) {
	s := NewStateStore(nil)
	ctx := t.Context()
	if err := s.MarkProcessed(ctx, "t", []infinity.MessageID{"m"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Processed(ctx, "t", "m"); err != nil || !ok {
		t.Fatalf("Processed = %v, %v; want true", ok, err)
	}
}

func TestBadTTL(t *testing.T) {
	s := NewStateStore(clocktest.New(time.Unix(0, 0)))
	for _, ttl := range []time.Duration{0, -time.Second} {
		err := s.MarkProcessed(t.Context(), "t", []infinity.MessageID{"m"}, ttl)
		if !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("MarkProcessed with ttl %v: %v, want ErrInvalid", ttl, err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := NewConversationStore()
	if err := c.CreateThread(ctx, infinity.ThreadInfo{ID: "r", Root: "r"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateThread with a canceled context: %v", err)
	}
	if _, _, err := NewStateStore(nil).Load(ctx, "r"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a canceled context: %v", err)
	}
}

func TestEmptyIDs(t *testing.T) {
	ctx := t.Context()
	s := NewConversationStore()
	if err := s.CreateThread(ctx, infinity.ThreadInfo{ID: "r", Root: "r"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []infinity.Commit{
		{Thread: "r", Applied: []infinity.MessageID{""}},
		{Thread: "r", Outbox: []infinity.Outgoing{{}}},
	} {
		if _, err := s.Commit(ctx, c); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("Commit %+v: %v, want ErrInvalid", c, err)
		}
	}
}

// TestAppliedOverflow checks the switch from a thread's inline applied ids
// to the store-wide overflow map.
func TestAppliedOverflow(t *testing.T) {
	ctx := t.Context()
	s := NewConversationStore()
	for _, id := range []infinity.ThreadID{"a", "b"} {
		if err := s.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3 * model.AppliedInline
	var all []infinity.MessageID
	for i := range n {
		all = append(all, infinity.MessageID(fmt.Sprintf("m%d", i)))
	}
	if _, err := s.Commit(ctx, infinity.Commit{Thread: "a", Applied: all}); err != nil {
		t.Fatal(err)
	}
	if got := s.m.InlineApplied("a"); got != model.AppliedInline {
		t.Errorf("inline applied ids = %d, want %d", got, model.AppliedInline)
	}
	if got := s.m.OverflowLen(); got != n-model.AppliedInline {
		t.Errorf("overflow applied ids = %d, want %d", got, n-model.AppliedInline)
	}
	for _, m := range all {
		if ok, _ := s.Applied(ctx, "a", m); !ok {
			t.Errorf("Applied(a, %s) = false", m)
		}
		if ok, _ := s.Applied(ctx, "b", m); ok {
			t.Errorf("Applied(b, %s) = true", m)
		}
	}
}

// TestProcessedPurged checks that expired marks do not pile up: a sweep
// runs after as many marks as the last sweep left live (at least model.SweepMin),
// and a map that shrank to a quarter of its peak is reallocated.
func TestProcessedPurged(t *testing.T) {
	ctx := t.Context()
	clock := clocktest.New(time.Unix(1_700_000_000, 0))
	s := NewStateStore(clock)
	const n = 10_000
	markAll := func(thread infinity.ThreadID, count int) {
		for i := range count {
			m := infinity.MessageID(fmt.Sprintf("m%d", i))
			if err := s.MarkProcessed(ctx, thread, []infinity.MessageID{m}, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := s.m.MarksOf
	markAll("a", n)
	clock.Advance(2 * time.Minute)
	markAll("b", n)
	if k := count("a"); k != 0 {
		t.Errorf("%d expired marks of a left after %d new marks", k, n)
	}
	if k := count("b"); k != n {
		t.Errorf("%d live marks of b, want %d", k, n)
	}

	// Everything expires; rounds of few marks eventually purge it and
	// shrink the map.
	for round := range 2 * n / model.SweepMin {
		clock.Advance(2 * time.Minute)
		markAll(infinity.ThreadID(fmt.Sprintf("c%d", round)), model.SweepMin)
	}
	if got := s.m.Marks(); got > 2*model.SweepMin {
		t.Errorf("after everything expired: %d entries, want at most %d", got, 2*model.SweepMin)
	}
	if got := s.m.Peak(); got > 2*model.SweepMin {
		t.Errorf("peak = %d, want the map reallocated", got)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerThread measures the heap held per thread by both stores
// for 100,000 root threads, each with two history items (a user input and an
// assistant reply with usage), one applied message id and one processed id.
// Ids are generated as the engine does (NewThreadID, NewMessageID, DeriveID)
// and counted; item texts are shared constants, so content is not.
func BenchmarkMemoryPerThread(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	now := time.Now()
	var total, conv, state float64
	for b.Loop() {
		// The id slices are allocated before the first reading and kept
		// until after the last, so they cancel out; the id strings they
		// point to are held by the stores and count.
		ids := make([]infinity.ThreadID, n)
		msgs := make([]infinity.MessageID, n)
		start := heapAlloc()
		cs := NewConversationStore()
		ss := NewStateStore(clocktest.New(now))
		for i := range n {
			id := infinity.NewThreadID()
			m := infinity.NewMessageID()
			ids[i], msgs[i] = id, m
			if err := cs.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Agent: "main", Created: now}); err != nil {
				b.Fatal(err)
			}
			_, err := cs.Commit(ctx, infinity.Commit{
				Thread: id,
				Items: []infinity.Item{
					{ID: string(m), Kind: infinity.KindUser, Text: "What is the weather like?", At: now},
					{ID: infinity.DeriveID("i", string(id), "0"), Kind: infinity.KindAssistant, Text: "Sunny.", Usage: &infinity.Usage{Input: 12, Output: 3}, At: now},
				},
				Applied: []infinity.MessageID{m},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		mid := heapAlloc()
		for i := range n {
			if err := ss.MarkProcessed(ctx, ids[i], []infinity.MessageID{msgs[i]}, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		end := heapAlloc()
		runtime.KeepAlive(cs)
		runtime.KeepAlive(ss)
		runtime.KeepAlive(ids)
		runtime.KeepAlive(msgs)
		total = float64(end-start) / n
		conv = float64(mid-start) / n
		state = float64(end-mid) / n
	}
	b.ReportMetric(total, "bytes/thread")
	b.ReportMetric(conv, "conv-bytes/thread")
	b.ReportMetric(state, "state-bytes/thread")
}

func TestTreeDeletion(t *testing.T) {
	storetest.RunTreeDeletion(t, func(*testing.T) infinity.ConversationStore { return NewConversationStore() })
}

func TestStateDeletion(t *testing.T) {
	storetest.RunStateDeletion(t, func(_ *testing.T, c infinity.Clock) infinity.StateStore { return NewStateStore(c) })
}
