package actors_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

func benchRuntime(b *testing.B, rules []scripted.Rule, idle time.Duration) (*actors.Runtime, infinity.ConversationStore) {
	b.Helper()
	model, err := scripted.New(scripted.Script{Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{
		Conversations: conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(d actors.Deliverer) infinity.InputSender { return local.New(d) },
		Host:          protohost.New,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Idle:          idle,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt, conv
}

func makeRoots(b *testing.B, conv infinity.ConversationStore, n int) []infinity.ThreadID {
	b.Helper()
	ids := make([]infinity.ThreadID, n)
	for i := range ids {
		ids[i] = infinity.ThreadID(fmt.Sprintf("t%08d", i))
		if err := conv.CreateThread(context.Background(), infinity.ThreadInfo{ID: ids[i], Root: ids[i]}); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// BenchmarkSlice measures whole slices per second: b.N threads each get one
// user message; each slice activates the thread's actor, loads it, runs a
// zero-latency scripted completion, commits, and marks the input processed.
func BenchmarkSlice(b *testing.B) {
	rt, conv := benchRuntime(b, []scripted.Rule{{Reply: scripted.Reply{Text: "ok"}}}, 10*time.Second)
	ids := makeRoots(b, conv, b.N)
	msgs := make([]infinity.InputMessage, b.N)
	for i, id := range ids {
		msgs[i] = infinity.InputMessage{ID: infinity.MessageID(fmt.Sprintf("m%d", i)), GroupID: id, Content: infinity.TextContent("hello")}
	}
	b.ResetTimer()
	for _, m := range msgs {
		if err := rt.Deliver(m); err != nil {
			b.Fatal(err)
		}
	}
	if err := rt.WaitIdle(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "slices/s")
	if n, _ := conv.Len(context.Background(), ids[len(ids)-1]); n != 2 {
		b.Fatalf("last thread has %d items, want 2", n)
	}
}

// BenchmarkPassivatedThreads measures the heap each waiting thread costs:
// 100,000 threads each ran one slice, called sleep_until_event_or_input
// (two items of history) and passivated. No goroutine, actor or timer is
// left per thread; what remains is the stores' records.
func BenchmarkPassivatedThreads(b *testing.B) {
	const n = 100_000
	for range b.N {
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()

		rt, conv := benchRuntime(b, []scripted.Rule{{Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "sleep_until_event_or_input"}}}}}, 20*time.Millisecond)
		ids := makeRoots(b, conv, n)
		for i, id := range ids {
			if err := rt.Deliver(infinity.InputMessage{ID: infinity.MessageID(fmt.Sprintf("m%d", i)), GroupID: id, Content: infinity.TextContent("wait for me")}); err != nil {
				b.Fatal(err)
			}
		}
		if err := rt.WaitIdle(context.Background()); err != nil {
			b.Fatal(err)
		}
		for rt.Active() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let stopped actors unwind
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/thread")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/thread")
		if l, _ := conv.Len(context.Background(), ids[n-1]); l != 2 {
			b.Fatalf("thread has %d items, want 2", l)
		}
		runtime.KeepAlive(rt)
		runtime.KeepAlive(conv)
	}
}
