package actors_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// requests records what the model was asked, per thread.
type requests struct {
	mu  sync.Mutex
	got map[infinity.ThreadID][]infinity.CompletionRequest
}

func (q *requests) record(req infinity.CompletionRequest) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.got[req.Thread] = append(q.got[req.Thread], req)
	return false
}

func (q *requests) of(id infinity.ThreadID) []infinity.CompletionRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]infinity.CompletionRequest(nil), q.got[id]...)
}

func startsWithSummary(req infinity.CompletionRequest) bool {
	return len(req.Items) > 0 && strings.HasPrefix(req.Items[0].Text, "[Summary of the earlier conversation")
}

// A long thread with a small context window compacts and keeps working: a
// compaction thread summarises it, later completions see the summary and
// the tail, the store keeps every item, a child spawned before the
// compaction still sees exactly what it inherited, and a late tool result
// and a child's report for calls the summary replaced still reach the
// thread.
func TestCompaction(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	q := &requests{got: map[infinity.ThreadID][]infinity.CompletionRequest{}}
	rules := []scripted.Rule{
		{Name: "record", If: q.record},
		{Name: "summarise", When: scripted.Match{System: "You write summaries"},
			Reply: scripted.Reply{Text: "SUMMARY: the user sent long notes; a fetch is running; child A waits for orders."}},
		{Name: "root begins", When: scripted.Match{Depth: ip(0), Last: "user", LastText: "begin"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{
				call("spawn_thread", `{"instructions":"wait for orders","child_of":"$STACK"}`),
				call("fetch", `{"url":"x"}`)}}},
		{Name: "root after the summary", When: scripted.Match{Depth: ip(0), Last: "user"}, If: startsWithSummary,
			Reply: scripted.Reply{Text: "continuing from the summary"}},
		{Name: "root notes", When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Text: "noted"}},
		{Name: "root hears back", When: scripted.Match{Depth: ip(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "heard back"}},
		{Name: "child waits", When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{Name: "child reports", When: scripted.Match{Depth: ip(1), Last: "user"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"child A done"}`)}}},
	}
	model, err := scripted.New(scripted.Script{Rules: rules, ContextWindow: 2000})
	if err != nil {
		t.Fatal(err)
	}
	var (
		emu       sync.Mutex
		compacted []*infinity.Summary
	)
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Model = model
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}, ProviderName: "scripted", Model: "scripted"}}
		obs := c.Observer
		c.Observer = func(ev actors.Event) {
			obs(ev)
			if ev.Kind == actors.EventCompacted {
				emu.Lock()
				compacted = append(compacted, ev.Summary)
				emu.Unlock()
			}
		}
	})
	ctx := context.Background()
	root := e.start("Let us begin.")
	var fetch infinity.ToolCall
	select {
	case fetch = <-tool.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the async tool was never invoked")
	}
	e.settle()
	kids := e.children(root)
	if len(kids) != 1 {
		t.Fatalf("root has %d children, want 1", len(kids))
	}
	childA := kids[0]
	before := e.history(childA.ID) // what A inherited

	// Long notes push the root past 75% of its 2,000-token window.
	note := strings.Repeat("a long note about the weather and the sea. ", 45) // ~2,000 characters
	for i := 0; i < 6 && !e.info(root).Compacted; i++ {
		e.send(root, note)
		e.settle()
	}
	e.settle()
	if !e.info(root).Compacted {
		t.Fatalf("the root never compacted; transcript:\n%s", transcript(e.own(root)))
	}
	noErrors(t, e)

	// One compaction thread, closed, with the summary's text as its answer.
	var comps []infinity.ThreadInfo
	for _, k := range e.children(root) {
		if k.Kind == infinity.ThreadCompaction {
			comps = append(comps, k)
		}
	}
	if len(comps) != 1 || !comps[0].Closed {
		t.Fatalf("compaction threads = %+v, want one, closed", comps)
	}
	h := e.history(root)
	if h.Summary == nil || h.SummaryOf != root || !strings.HasPrefix(h.Summary.Text, "SUMMARY:") || h.Summary.Covers != comps[0].SpawnOrder || h.Summary.Thread != comps[0].ID {
		t.Fatalf("root's summary = %+v (of %s), compaction thread %+v", h.Summary, h.SummaryOf, comps[0])
	}
	emu.Lock()
	if len(compacted) != 1 || compacted[0].Text != h.Summary.Text {
		t.Errorf("EventCompacted: %+v", compacted)
	}
	emu.Unlock()
	// The pending fetch is carried by the summary; the store keeps all items.
	if len(h.Summary.Calls) != 1 || h.Summary.Calls[0].Call.ID != fetch.ID || h.Summary.Calls[0].State != infinity.ResultPending {
		t.Errorf("summary calls = %+v, want the pending fetch %s", h.Summary.Calls, fetch.ID)
	}
	all, err := e.conv.Items(ctx, root, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if h.Len() != len(all) || len(h.Own()) >= len(all) {
		t.Errorf("history len %d (own loaded %d), store has %d items", h.Len(), len(h.Own()), len(all))
	}

	// The root keeps working from the summary.
	e.send(root, "Where are we?")
	e.waitFor("a reply from the summary", func() bool { return e.last(root) == "continuing from the summary" })
	reqs := q.of(root)
	lastReq := reqs[len(reqs)-1]
	if !startsWithSummary(lastReq) || strings.Contains(transcript(lastReq.Items), "Let us begin.") {
		t.Fatalf("the root's request after compaction:\n%s", transcript(lastReq.Items))
	}
	if used := lastReq.Items; len(used) >= len(all) {
		t.Errorf("the compacted request has %d items, the whole history %d", len(used), len(all))
	}

	// A, spawned before the compaction, still has exactly what it inherited.
	after := e.history(childA.ID)
	if after.Summary != nil || transcript(after.Items) != transcript(before.Items) || !strings.HasPrefix(after.Items[0].Text, "Let us begin.") {
		t.Fatalf("child A's history changed with its parent's compaction:\nbefore:\n%s\nafter:\n%s", transcript(before.Items), transcript(after.Items))
	}
	e.send(childA.ID, "Report now.")
	e.waitFor("child A closed", func() bool { return e.info(childA.ID).Closed })
	reqs = q.of(childA.ID)
	if first := reqs[len(reqs)-1].Items[0]; first.Text != "Let us begin." {
		t.Fatalf("child A's model request starts with %q, want its exact inherited history", first.Text)
	}

	// A's report and the fetch's late result, for calls the summary
	// replaced, reach the root.
	e.waitFor("A's report at the root", func() bool { return strings.Contains(transcript(e.own(root)), "child A done") })
	if err := e.rt.SendMessage(ctx, infinity.InputMessage{ID: "late-fetch", GroupID: root, Content: infinity.ResultContent(fetch.ID, "page body")}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the late fetch result at the root", func() bool { return strings.Contains(transcript(e.own(root)), "page body") })
	e.settle()
	// Injected as the fetch's late result: the summary carried the call.
	if tr := transcript(e.own(root)); !strings.Contains(tr, `"kind":"late_result","original_tool_call_id":"`+fetch.ID+`","original_tool_name":"fetch"`) {
		t.Errorf("the late result was not injected as the fetch's:\n%s", tr)
	}
	noErrors(t, e)
}
