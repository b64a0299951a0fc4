package daemon

import (
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// What a gap is drawn as: the model's time is running; a gap before an
// input is what the thread waited on at its start, and an async call that
// other input overtook is still waited on until its real result.
func TestLaneStates(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	call := func(s int, id, name string) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolCall, At: at(s), Call: &infinity.ToolCall{ID: id, Name: name, Args: []byte(`{}`)}}
	}
	result := func(s int, id string, st infinity.ResultState) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolResult, At: at(s), Result: &infinity.ToolResult{CallID: id, State: st}}
	}
	items := []infinity.Item{
		{Kind: infinity.KindUser, Text: "go", At: at(0)},
		call(2, "c1", "fetch"),                             // 0–2 running (the model)
		{Kind: infinity.KindUser, Text: "more", At: at(5)}, // 2–5 waiting for the tool
		result(5, "c1", infinity.ResultPending),
		{Kind: infinity.KindAssistant, Text: "ok", At: at(6)}, // 5–6 running
		result(9, "c1", infinity.ResultFinal),                 // 6–9 still the tool
		call(10, "c2", "sleep"),                               // 9–10 running
		result(20, "c2", infinity.ResultFinal),                // 10–20 sleeping
		{Kind: infinity.KindAssistant, Text: "done", At: at(21)},
	}
	l, cut := laneOf(infinity.ThreadInfo{ID: "t", Created: t0}, items, StatusWaiting, at(30))
	if cut {
		t.Fatal("cut")
	}
	want := []struct {
		state    string
		from, to int
	}{
		{SpanRunning, 0, 2}, {SpanTool, 2, 5}, {SpanRunning, 5, 6}, {SpanTool, 6, 9}, {SpanRunning, 9, 10},
		{SpanSleeping, 10, 20}, {SpanRunning, 20, 21}, {SpanInput, 21, 30},
	}
	if len(l.Spans) != len(want) {
		t.Fatalf("spans %+v", l.Spans)
	}
	for i, w := range want {
		s := l.Spans[i]
		if s.State != w.state || !s.From.Equal(at(w.from)) || !s.To.Equal(at(w.to)) {
			t.Errorf("span %d = %s %v–%v, want %s %d–%d s", i, s.State, s.From.Sub(t0), s.To.Sub(t0), w.state, w.from, w.to)
		}
	}
	if !l.Spans[len(l.Spans)-1].Open || len(l.Marks) != len(items) {
		t.Errorf("last span open %v, %d marks", l.Spans[len(l.Spans)-1].Open, len(l.Marks))
	}
}
