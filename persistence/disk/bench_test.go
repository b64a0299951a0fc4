package disk

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// BenchmarkStartAndSleep is what a thread's start costs the store: the
// root and its first message, the slice's history read, its commit (a
// call to sleep, with the timer in the outbox) and the outbox marked sent.
func BenchmarkStartAndSleep(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	conv := s.conv
	var n atomic.Int64
	now := time.Now()
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := infinity.ThreadID(fmt.Sprintf("t-%08d", n.Add(1)))
			first := infinity.InputMessage{ID: "start_" + infinity.MessageID(id), GroupID: id, Content: infinity.TextContent("hello")}
			if err := conv.CreateRoot(ctx, infinity.ThreadInfo{ID: id, Root: id, Created: now}, first); err != nil {
				b.Fatal(err)
			}
			if _, err := s.state.Put(ctx, first, time.Time{}); err != nil {
				b.Fatal(err)
			}
			if _, err := conv.Items(ctx, id, 0, -1); err != nil {
				b.Fatal(err)
			}
			wake := infinity.InputMessage{ID: "wake_" + infinity.MessageID(id), GroupID: id, Content: infinity.ResultContent("c1", "Slept.")}
			_, durable, err := conv.CommitDeferred(ctx, infinity.Commit{Thread: id, Items: []infinity.Item{
				{ID: "u", Kind: infinity.KindUser, Text: "hello", At: now},
				{ID: "c", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c1", Name: "sleep", Args: json.RawMessage(`{"seconds":30}`)}, At: now},
			}, Applied: []infinity.MessageID{first.ID}, Outbox: []infinity.Outgoing{{ID: "o1", Message: &wake, At: now.Add(time.Hour)}}})
			if err != nil {
				b.Fatal(err)
			}
			if err := durable(); err != nil {
				b.Fatal(err)
			}
			if _, err := s.state.Put(ctx, wake, now.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			if err := conv.MarkSent(ctx, id, "o1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	st := s.Stats()
	b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/op")
}
