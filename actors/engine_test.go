package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// A root spawns a child, the child spawns a grandchild; reports climb back
// up and the root answers. Children inherit history without copies.
func TestThreeLevelTree(t *testing.T) {
	rules := []scripted.Rule{
		{Name: "root starts", When: scripted.Match{Depth: ip(0), Last: "user"},
			Reply: scripted.Reply{Text: "Delegating.", Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"research the topic","child_of":"$STACK"}`)}}},
		{Name: "root waits", When: scripted.Match{Depth: ip(0), LastTool: "spawn_thread"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{Name: "root done", When: scripted.Match{Depth: ip(0), LastTool: "receive_event__injected"},
			Reply: scripted.Reply{Text: "Final answer: the research is done."}},
		{Name: "child delegates", When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread", LastText: "inside thread"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"dig deeper","child_of":"$STACK"}`)}}},
		{Name: "child waits", When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{Name: "child closes", When: scripted.Match{Depth: ip(1), LastTool: "receive_event__injected"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"child summary"}`)}}},
		{Name: "grandchild works", When: scripted.Match{Depth: ip(2), LastTool: "spawn_thread"},
			Reply: scripted.Reply{Text: "found it", Calls: []scripted.CallSpec{
				call("report_to_parent", `{"report":"deep fact"}`),
				call("close_thread", `{"thread_id":"$THREAD"}`)}}},
	}
	e := newEnv(t, rules)
	root := e.start("Research something.")
	e.waitFor("root's final answer", func() bool {
		own := e.own(root)
		return len(own) > 0 && strings.HasPrefix(own[len(own)-1].Text, "Final answer")
	})
	e.settle()
	noErrors(t, e)

	kids := e.children(root)
	if len(kids) != 1 {
		t.Fatalf("root has %d children, want 1", len(kids))
	}
	child := kids[0]
	grand := e.children(child.ID)
	if len(grand) != 1 {
		t.Fatalf("child has %d children, want 1", len(grand))
	}
	g := e.history(grand[0].ID)
	if len(g.Lineage) != 3 || g.Lineage[0].ID != root || g.Lineage[1].ID != child.ID {
		t.Fatalf("grandchild lineage = %v", g.Stack())
	}
	// The grandchild inherits the root's history through the root's spawn
	// call and the child's through its own spawn call.
	rootOwn := e.own(root)
	if got, want := g.Items[0].Text, "Research something."; got != want {
		t.Fatalf("grandchild's first inherited item = %q, want %q", got, want)
	}
	if g.Inherited != child.SpawnOrder+grand[0].SpawnOrder {
		t.Fatalf("grandchild inherits %d items; spawn orders %d+%d", g.Inherited, child.SpawnOrder, grand[0].SpawnOrder)
	}
	if !e.info(child.ID).Closed || !e.info(grand[0].ID).Closed || e.info(root).Closed {
		t.Fatal("child and grandchild should be closed, the root open")
	}
	// The root saw the child's final report, tied to its spawn call.
	tr := transcript(rootOwn)
	if !strings.Contains(tr, "Final report: child summary") {
		t.Fatalf("root transcript lacks the child's report:\n%s", tr)
	}
	if !strings.Contains(transcript(e.own(child.ID)), "Report from child thread "+string(grand[0].ID)+": deep fact") {
		t.Fatalf("child transcript lacks the grandchild's report:\n%s", transcript(e.own(child.ID)))
	}
	// Token usage: the root's own, and the whole tree's.
	own, err := e.rt.Usage(context.Background(), root, false)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := e.rt.Usage(context.Background(), root, true)
	if err != nil {
		t.Fatal(err)
	}
	want := own.Add(infinity.SumUsage(e.own(child.ID))).Add(infinity.SumUsage(e.own(grand[0].ID)))
	if own.Output == 0 || tree != want {
		t.Fatalf("usage: root %+v, tree %+v, want tree %+v", own, tree, want)
	}
	if _, err := e.rt.Usage(context.Background(), "nope", true); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("usage of an unknown thread: %v", err)
	}
	// Closed threads passivate: no actor remains.
	e.waitFor("passivation", func() bool { return e.rt.Active() == 0 })
}

// Every call of a response is handled: three parallel calls get three
// results, and the async one is dispatched.
func TestParallelToolCalls(t *testing.T) {
	rules := []scripted.Rule{
		{Name: "fan out", When: scripted.Match{Depth: ip(0), Last: "user"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{
				call("spawn_thread", `{"instructions":"task A","child_of":"$STACK"}`),
				call("no_such_tool", `{}`),
				call("spawn_thread", `{"instructions":"task B","child_of":"$STACK"}`),
				call("sleep", `{"seconds":60}`),
			}}},
		{Name: "children close", When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"done"}`)}}},
		{Name: "root after events", When: scripted.Match{Depth: ip(0), Count: &scripted.Count{Tool: "receive_event__injected", Min: 2}},
			Reply: scripted.Reply{Text: "both children reported"}},
		{Name: "root waits", When: scripted.Match{Depth: ip(0)},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
	}
	e := newEnv(t, rules)
	root := e.start("go")
	e.waitFor("both reports", func() bool { return e.last(root) == "both children reported" })
	own := e.own(root)
	calls := []infinity.Item{}
	for _, it := range own[:6] {
		if it.Kind == infinity.KindToolCall {
			calls = append(calls, it)
		}
	}
	if len(calls) != 4 {
		t.Fatalf("first response has %d calls, want 4:\n%s", len(calls), transcript(own))
	}
	if got := resultText(own, calls[1].Call.ID); !strings.Contains(got, `tool "no_such_tool" does not exist`) {
		t.Fatalf("unknown tool result = %q", got)
	}
	if len(e.children(root)) != 2 {
		t.Fatalf("root has %d children, want 2", len(e.children(root)))
	}
	// The sleep was cut short by the reports; its result says so.
	if got := resultText(own, calls[3].Call.ID); !strings.Contains(got, "Interrupted") {
		t.Fatalf("sleep result = %q, want an interruption:\n%s", got, transcript(own))
	}
	// Child B's view of the inherited response: child A's spawn call sits
	// beside its own and gets a synthetic result in the model's view only.
	kids := e.children(root)
	hb := e.history(kids[1].ID)
	if hb.Inherited != kids[1].SpawnOrder || kids[1].SpawnOrder != kids[0].SpawnOrder+2 {
		t.Fatalf("spawn orders A=%d B=%d, B inherits %d", kids[0].SpawnOrder, kids[1].SpawnOrder, hb.Inherited)
	}
	noErrors(t, e)
}

// User input during a sleep wakes the thread; the stale wake-up arrives
// later and is recorded without touching history.
func TestSleepInterruptedByInput(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "nap"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep", `{"seconds":3600,"reason":"nap"}`)}}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "awake: $THREAD"}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "slept well"}},
	}
	e := newEnv(t, rules)
	root := e.start("take a nap")
	e.settle()
	e.send(root, "wake up")
	e.waitFor("reply to the interruption", func() bool {
		own := e.own(root)
		return len(own) > 0 && strings.HasPrefix(own[len(own)-1].Text, "awake")
	})
	before := len(e.own(root))
	e.clock.Advance(2 * time.Hour) // the wake-up fires late
	e.settle()
	time.Sleep(20 * time.Millisecond)
	e.settle()
	own := e.own(root)
	if len(own) != before {
		t.Fatalf("stale wake-up changed history:\n%s", transcript(own))
	}
	want := "user: take a nap\ntool_call: sleep {\"seconds\":3600,\"reason\":\"nap\"}\ntool_result: Interrupted: new input arrived first.\nuser: wake up\nassistant: awake: " + string(root) + "\n"
	if got := transcript(own); got != want {
		t.Fatalf("transcript:\n%s\nwant:\n%s", got, want)
	}
	noErrors(t, e)
}

// A thread that goes to sleep passivates at once (its actor stops, nothing
// of it stays in memory) without waiting for Config.Idle; its wake-up
// activates it again. A thread that only answered waits Idle for more input.
func TestSleepingThreadPassivatesAtOnce(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "nap"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep", `{"seconds":60}`)}}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "hello"}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "slept well"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Idle = time.Hour })
	sleeper := e.start("take a nap")
	e.settle()
	e.waitFor("the sleeper's passivation", func() bool { return e.rt.Active() == 0 })
	talker := e.start("hi")
	e.settle()
	time.Sleep(20 * time.Millisecond)
	if n := e.rt.Active(); n != 1 {
		t.Fatalf("Active = %d after a thread answered, want 1 (it waits Idle for more input)", n)
	}
	e.clock.Advance(time.Minute)
	e.waitFor("the wake-up", func() bool {
		own := e.own(sleeper)
		return len(own) > 0 && own[len(own)-1].Text == "slept well"
	})
	if own := e.own(talker); own[len(own)-1].Text != "hello" {
		t.Fatalf("talker:\n%s", transcript(own))
	}
	noErrors(t, e)
}

// asyncTool answers later: the test plays the tool server.
type asyncTool struct{ started chan infinity.ToolCall }

func (a asyncTool) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "fetch", Description: "slow fetch", Schema: []byte(`{"type":"object"}`), Async: true}
}

func (a asyncTool) Invoke(_ context.Context, _ infinity.ToolEnv, c infinity.ToolCall) (*infinity.ToolResult, error) {
	a.started <- c
	return nil, nil
}

// User input while an async tool runs: the call is answered "still
// running", the model replies to the user, and the real result, arriving
// late, is injected and acted on rather than dropped.
func TestInputWhileAsyncToolPendingAndLateResult(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "fetch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{"url":"x"}`)}}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "still fetching"}},
		{When: scripted.Match{LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "late result seen"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root := e.start("please fetch")
	var c infinity.ToolCall
	select {
	case c = <-tool.started:
	case <-time.After(5 * time.Second):
		t.Fatal("async tool never invoked")
	}
	e.settle()
	e.send(root, "how is it going?")
	e.waitFor("reply while pending", func() bool { return e.last(root) == "still fetching" })
	// The tool server answers now.
	if err := e.rt.SendMessage(context.Background(), infinity.InputMessage{ID: "res-1", GroupID: root, Content: infinity.ResultContent(c.ID, "page body")}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("late result acted on", func() bool { return e.last(root) == "late result seen" })
	got := transcript(e.own(root))
	for _, want := range []string{"Still running", "tool_call: receive_event__injected", "tool_result: page body"} {
		if !strings.Contains(got, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, got)
		}
	}
	// The same result again (a redelivery with a new id) is stale: ignored.
	n := len(e.own(root))
	_ = e.rt.SendMessage(context.Background(), infinity.InputMessage{ID: "res-2", GroupID: root, Content: infinity.ResultContent(c.ID, "page body")})
	e.settle()
	if len(e.own(root)) != n {
		t.Fatalf("a repeated late result was injected twice:\n%s", transcript(e.own(root)))
	}
	noErrors(t, e)
}

// The same message delivered twice (at-least-once) is applied once, both
// when the copies arrive together and when one arrives after processing.
// With AppliedOnly the same holds from the applied records alone: the
// slice that applies the message writes no processed mark, and the late
// repeat is marked (so that a durable inbox lets it go).
func TestRedeliveredMessageAppliedOnce(t *testing.T) {
	t.Run("processed marks", func(t *testing.T) { testRedelivered(t, false) })
	t.Run("applied only", func(t *testing.T) { testRedelivered(t, true) })
}

func testRedelivered(t *testing.T, appliedOnly bool) {
	rules := []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "ok"}}}
	e := newEnv(t, rules, func(c *actors.Config) { c.AppliedOnly = appliedOnly })
	root := e.start("hello")
	e.settle()
	msg := infinity.InputMessage{ID: "dup-1", GroupID: root, Content: infinity.TextContent("again")}
	for range 3 {
		if err := e.rt.Deliver(msg); err != nil {
			t.Fatal(err)
		}
	}
	e.settle()
	// With processed marks the applying slice marks it. With AppliedOnly
	// it does not, but a copy that reached the thread after that slice
	// began is a late repeat and is marked: which happens depends on the
	// scheduler, so only the first mode is checked here.
	if marked, err := e.state.Processed(context.Background(), root, "dup-1"); err != nil || !appliedOnly && !marked {
		t.Fatalf("processed mark after the applying slice: %v, %v (applied only: %v)", marked, err, appliedOnly)
	}
	if err := e.rt.Deliver(msg); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Text == "again" }); n != 1 {
		t.Fatalf("message applied %d times:\n%s", n, transcript(e.own(root)))
	}
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Text == "ok" }); n != 2 {
		t.Fatalf("model answered %d times, want 2", n)
	}
	if marked, err := e.state.Processed(context.Background(), root, "dup-1"); err != nil || !marked {
		t.Fatalf("processed mark after the repeat: %v, %v", marked, err)
	}
}

// flakyStore fails chosen operations once.
type flakyStore struct {
	infinity.ConversationStore
	failCommitBefore, failCommitAfter, failMarkSent atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (f *flakyStore) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	if len(c.Items) > 0 && f.failCommitBefore.CompareAndSwap(true, false) {
		return 0, errInjected
	}
	n, err := f.ConversationStore.Commit(ctx, c)
	if err == nil && len(c.Create) > 0 && f.failCommitAfter.CompareAndSwap(true, false) {
		return 0, errInjected // the commit landed, but the caller never hears so
	}
	return n, err
}

func (f *flakyStore) MarkSent(ctx context.Context, id infinity.ThreadID, out ...string) error {
	if f.failMarkSent.CompareAndSwap(true, false) {
		return errInjected
	}
	return f.ConversationStore.MarkSent(ctx, id, out...)
}

// A store failure anywhere in a slice is retried from persisted history:
// no history item is duplicated, no child spawned twice, nothing lost.
func TestCrashMidSliceResumesWithoutDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(*flakyStore)
	}{
		{"commit fails", func(f *flakyStore) { f.failCommitBefore.Store(true) }},
		{"commit lands but reports failure", func(f *flakyStore) { f.failCommitAfter.Store(true) }},
		{"outbox drain fails", func(f *flakyStore) { f.failMarkSent.Store(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := []scripted.Rule{
				{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Text: "spawning", Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"work","child_of":"$STACK"}`)}}},
				{When: scripted.Match{Depth: ip(0), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
				{When: scripted.Match{Depth: ip(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "all done"}},
				{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"r"}`)}}},
			}
			fs := &flakyStore{}
			tc.arm(fs)
			e := newEnv(t, rules, func(c *actors.Config) {
				fs.ConversationStore = c.Conversations
				c.Conversations = fs
			})
			e.conv = fs
			root := e.start("begin")
			e.waitFor("completion", func() bool { return e.last(root) == "all done" })
			e.settle()
			if len(e.sliceErrors()) == 0 {
				t.Fatal("the injected failure never happened")
			}
			own := e.own(root)
			seen := map[string]bool{}
			for _, it := range own {
				if seen[it.ID] {
					t.Fatalf("item %s appears twice:\n%s", it.ID, transcript(own))
				}
				seen[it.ID] = true
			}
			if n := count(own, func(it infinity.Item) bool { return it.Text == "begin" }); n != 1 {
				t.Fatalf("input applied %d times", n)
			}
			if k := e.children(root); len(k) != 1 {
				t.Fatalf("%d children, want 1", len(k))
			}
		})
	}
}

// A child that remembers its parent's plan and tries to spawn with the
// parent's stack is refused.
func TestChildOfRefusal(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"sub","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		// The child replays the parent's call: child_of is the root's stack.
		{When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread", LastText: "inside thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"sub","child_of":["$ROOT"]}`)}}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Text: "understood"}},
	}
	e := newEnv(t, rules)
	root := e.start("go")
	e.waitFor("child reply", func() bool {
		k := e.children(root)
		if len(k) == 0 {
			return false
		}
		return e.last(k[0].ID) == "understood"
	})
	child := e.children(root)[0]
	tr := transcript(e.own(child.ID))
	if !strings.Contains(tr, "does not match your thread stack") || len(e.children(child.ID)) != 0 {
		t.Fatalf("child spawned or was not refused:\n%s", tr)
	}
}

// sleep_until resolves wall time in the named zone; the wake-up fires at
// that instant on the injected clock, not before.
func TestSleepUntilInAnotherTimezone(t *testing.T) {
	// 2026-03-10 09:30 in New York is 13:30 UTC (EDT began on March 8); the
	// clock starts at 12:00 UTC.
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "future"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until", `{"date":"2026-03-10","time":"09:30","timezone":"America/New_York"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "past"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until", `{"date":"2026-03-10","time":"07:00:00","timezone":"Asia/Tokyo"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "gap"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until", `{"date":"2026-03-08","time":"02:30","timezone":"America/New_York"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "fold"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until", `{"date":"2026-11-01","time":"01:30","timezone":"America/New_York"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "half"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until", `{"date":"2026-04-05","time":"01:45","timezone":"Australia/Lord_Howe"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "zone"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until", `{"date":"2026-03-10","time":"02:30","timezone":"Mars/Olympus"}`)}}},
		{When: scripted.Match{LastTool: "sleep_until"}, Reply: scripted.Reply{Text: "woke"}},
	}
	cases := []struct {
		text    string
		advance time.Duration // before this, nothing may happen
		want    string
	}{
		{"future", 90 * time.Minute, "Woke at the target time 2026-03-10 09:30 (America/New_York)."},
		{"past", 0, "The target time 2026-03-10 07:00:00 (Asia/Tokyo) had already passed; woke at once."},
		{"gap", 0, "Error: sleep_until: 2026-03-08 02:30 does not exist in America/New_York (a daylight-saving change skips it)"},
		{"fold", 0, "Error: sleep_until: 2026-11-01 01:30 happens twice in America/New_York (a daylight-saving change repeats it); pick a time outside that hour"},
		{"half", 0, "Error: sleep_until: 2026-04-05 01:45 happens twice in Australia/Lord_Howe (a daylight-saving change repeats it); pick a time outside that hour"},
		{"zone", 0, `Error: sleep_until: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Paris)`},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			e := newEnv(t, rules)
			root := e.start(tc.text)
			woke := func() bool { return e.last(root) == "woke" }
			if tc.advance > 0 {
				e.settle()
				e.clock.Advance(tc.advance - time.Second)
				e.settle()
				if woke() {
					t.Fatal("woke before the target time")
				}
				e.clock.Advance(time.Second)
			}
			e.waitFor("wake", woke)
			own := e.own(root)
			if got := own[len(own)-2].Result.Text(); got != tc.want {
				t.Fatalf("result = %q, want %q", got, tc.want)
			}
		})
	}
}

// A hallucinated tool gets an error result and the slice loops back; the
// model recovers in the same slice.
func TestUnknownToolLoopsBack(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("teleport", `{}`)}}},
		{When: scripted.Match{LastTool: "teleport"}, Reply: scripted.Reply{Text: "sorry, no teleport"}},
	}
	e := newEnv(t, rules)
	root := e.start("teleport me")
	e.waitFor("recovery", func() bool { return e.last(root) == "sorry, no teleport" })
}

// A stream that breaks mid-way is retried; the broken attempt's text is
// never saved.
func TestBrokenStreamRetriedNotHalfSaved(t *testing.T) {
	rules := []scripted.Rule{
		{Times: 2, When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "partial garbage", Error: "connection reset", Retryable: true, MidStream: true}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "clean answer"}},
	}
	e := newEnv(t, rules)
	root := e.start("hi")
	e.waitFor("answer", func() bool { return e.last(root) == "clean answer" })
	if strings.Contains(transcript(e.own(root)), "garbage") {
		t.Fatalf("half a turn was saved:\n%s", transcript(e.own(root)))
	}
}

// A model that fails for good leaves the input saved and reports an error;
// the thread works again on the next input.
func TestModelFailureKeepsInput(t *testing.T) {
	rules := []scripted.Rule{
		{Times: 1, When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Error: "invalid request"}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "fine now"}},
	}
	e := newEnv(t, rules)
	root := e.start("first")
	e.waitFor("error event", func() bool { return len(e.sliceErrors()) > 0 })
	e.settle()
	if got := transcript(e.own(root)); got != "user: first\n" {
		t.Fatalf("transcript after failure:\n%s", got)
	}
	e.send(root, "second")
	e.waitFor("answer", func() bool { return e.last(root) == "fine now" })
}

// A slice that uses up its completion budget sends itself a continue
// message and yields; the work finishes in later slices.
func TestBudgetContinue(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Count: &scripted.Count{Tool: "report_to_parent", Min: 5}}, Reply: scripted.Reply{Text: "done looping"}},
		// report_to_parent from a root fails fast (sync), so each call loops back.
		{Reply: scripted.Reply{Calls: []scripted.CallSpec{call("report_to_parent", `{"report":"x"}`)}}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Budget: actors.Budget{Completions: 2}}} })
	root := e.start("loop")
	e.waitFor("done", func() bool { return e.last(root) == "done looping" })
	if n := count(e.own(root), isCall("report_to_parent")); n != 5 {
		t.Fatalf("%d calls, want 5", n)
	}
	noErrors(t, e)
}

// close_thread closes the whole subtree; the root cannot be closed; a
// thread cannot close another.
func TestCloseRules(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("close_thread", `{"thread_id":"$THREAD"}`),
			call("spawn_thread", `{"instructions":"middle","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread", LastText: "inside"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("close_thread", `{"thread_id":"$ROOT"}`),
			call("spawn_thread", `{"instructions":"leaf","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(2), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("report_to_parent", `{"report":"leaf up"}`)}}},
		{When: scripted.Match{Depth: ip(2)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(1), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"bye"}`)}}},
	}
	e := newEnv(t, rules)
	root := e.start("go")
	e.waitFor("middle closed", func() bool {
		k := e.children(root)
		return len(k) == 1 && e.info(k[0].ID).Closed
	})
	e.settle()
	mid := e.children(root)[0].ID
	leaf := e.children(mid)[0].ID
	if !e.info(leaf).Closed {
		t.Fatal("closing the middle thread left its child open")
	}
	if e.info(root).Closed {
		t.Fatal("the root was closed")
	}
	if tr := transcript(e.own(root)); !strings.Contains(tr, "the root thread cannot be closed") {
		t.Fatalf("root close not refused:\n%s", tr)
	}
	if tr := transcript(e.own(mid)); !strings.Contains(tr, "is not this thread") {
		t.Fatalf("closing another thread not refused:\n%s", tr)
	}
	// Input to a closed thread is refused by the API and dropped by the engine.
	if _, err := e.rt.Send(context.Background(), leaf, "hello?"); !errors.Is(err, infinity.ErrClosed) {
		t.Fatalf("send to closed thread: %v", err)
	}
	n := len(e.own(leaf))
	_ = e.rt.Deliver(infinity.InputMessage{ID: "late", GroupID: leaf, Content: infinity.TextContent("late")})
	e.settle()
	if len(e.own(leaf)) != n {
		t.Fatal("a closed thread accepted input")
	}
}

// send_message_to_child reaches a direct child, and nothing else.
func TestSendMessageToChild(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "start"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"wait for orders","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "tell"},
			Reply: scripted.Reply{Calls: []scripted.CallSpec{call("send_message_to_child", `{"thread_id":"CHILD","message":"go left"}`), call("send_message_to_child", `{"thread_id":"$THREAD","message":"self"}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "send_message_to_child"}, Reply: scripted.Reply{Text: "told"}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(1), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "child got orders"}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
	}
	root := infinity.ThreadID("root-1")
	e := newEnv(t, rules, func(c *actors.Config) {
		conv := c.Conversations
		c.Model = rewriteModel(c.Model, "CHILD", func() string {
			if kids, _ := conv.Children(context.Background(), root); len(kids) > 0 {
				return string(kids[0].ID)
			}
			return "CHILD"
		})
	})
	if _, err := e.rt.Start(context.Background(), actors.StartOptions{ID: root, Text: "start"}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("child", func() bool { return len(e.children(root)) == 1 })
	e.settle()
	child := e.children(root)[0].ID
	e.send(root, "tell the child")
	e.waitFor("child got the message", func() bool { return e.last(child) == "child got orders" })
	e.waitFor("root done", func() bool { return e.last(root) == "told" })
	tr := transcript(e.own(root))
	if !strings.Contains(tr, "Message sent to child thread "+string(child)) || !strings.Contains(tr, "is not a child of this thread") {
		t.Fatalf("root transcript:\n%s", tr)
	}
	if !strings.Contains(transcript(e.own(child)), "Message from parent thread: go left") {
		t.Fatalf("child transcript:\n%s", transcript(e.own(child)))
	}
	noErrors(t, e)
}

// An idle thread passivates (no actor left) and comes back from the stores
// when a message arrives, as many times as needed.
func TestPassivationAndReactivation(t *testing.T) {
	rules := []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "ok: $THREAD"}}}
	e := newEnv(t, rules)
	root := e.start("round 0")
	for i := 1; i <= 3; i++ {
		e.waitFor("passivation", func() bool { return e.rt.Active() == 0 })
		e.send(root, fmt.Sprintf("round %d", i))
		e.waitFor("reply", func() bool { return len(e.own(root)) == 2*(i+1) })
	}
	e.waitFor("passivation", func() bool { return e.rt.Active() == 0 })
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Kind == infinity.KindAssistant }); n != 4 {
		t.Fatalf("%d replies, want 4:\n%s", n, transcript(e.own(root)))
	}
}

// panicTool panics on its first call.
type panicTool struct{ calls *atomic.Int32 }

func (p panicTool) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "fragile", Schema: []byte(`{"type":"object"}`)}
}

func (p panicTool) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	if p.calls.Add(1) == 1 {
		panic("tool bug")
	}
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: "fine"}}}, nil
}

// A panic inside a slice (here in a tool) is an error: the batch is retried
// and the thread keeps working; the runtime still goes idle and closes.
func TestPanicInSliceIsRetried(t *testing.T) {
	tool := panicTool{calls: new(atomic.Int32)}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fragile", `{}`)}}},
		{When: scripted.Match{LastTool: "fragile"}, Reply: scripted.Reply{Text: "survived"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root := e.start("go")
	e.waitFor("recovery", func() bool { return e.last(root) == "survived" })
	e.settle()
	if len(e.sliceErrors()) == 0 || !strings.Contains(e.sliceErrors()[0].Error(), "tool bug") {
		t.Fatalf("the panic was not reported: %v", e.sliceErrors())
	}
}

// A tool result is input: it ends a sleep the model started beside the call.
func TestResultWakesParallelSleep(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`), call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Contains: "page body"}, Reply: scripted.Reply{Text: "read it"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root := e.start("fetch and wait")
	c := <-tool.started
	if err := e.rt.SendMessage(context.Background(), infinity.InputMessage{ID: "r1", GroupID: root, Content: infinity.ResultContent(c.ID, "page body")}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the model read the result", func() bool { return e.last(root) == "read it" })
}

// A model outage longer than the in-slice retries does not strand a thread:
// the batch is retried later and the thread answers.
func TestModelOutageRetriedLater(t *testing.T) {
	rules := []scripted.Rule{
		{Times: 6, When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Error: "throttled", Retryable: true}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "back"}},
	}
	e := newEnv(t, rules)
	root := e.start("hello")
	e.waitFor("answer after the outage", func() bool { return e.last(root) == "back" })
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Text == "hello" }); n != 1 {
		t.Fatalf("input applied %d times:\n%s", n, transcript(e.own(root)))
	}
}

// Metadata sent with input becomes the root's state, even when the slice
// fails after its commit.
func TestMetadataSurvivesFailureAfterCommit(t *testing.T) {
	fs := &flakyStore{}
	fs.failMarkSent.Store(true)
	rules := []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "ok", Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"x","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Text: "done"}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Text: "child idle"}}}
	e := newEnv(t, rules, func(c *actors.Config) { fs.ConversationStore = c.Conversations; c.Conversations = fs })
	e.conv = fs
	root, err := e.rt.Start(context.Background(), actors.StartOptions{Text: "hi", Metadata: []byte(`{"user_id":"u1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("slice done", func() bool { return e.last(root) == "done" })
	st, _, err := e.state.Load(context.Background(), root)
	if err != nil || string(st.Metadata) != `{"user_id":"u1"}` {
		t.Fatalf("metadata = %s, %v", st.Metadata, err)
	}
}

// A model that imitates receive_event__injected gets an error, and cannot
// make the engine treat a pending call's real result as stale.
func TestImitatedInjectedCallChangesNothing(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	var fetchID atomic.Value
	fetchID.Store("")
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "fetch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("receive_event__injected", `{"kind":"late_result","original_tool_call_id":"FETCH"}`)}}},
		{When: scripted.Match{LastTool: "receive_event__injected", LastText: "page body"}, Reply: scripted.Reply{Text: "real result seen"}},
		{When: scripted.Match{LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "imitation refused"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}}
		c.Model = rewriteModel(c.Model, "FETCH", func() string { return fetchID.Load().(string) })
	})
	root := e.start("please fetch")
	c := <-tool.started
	fetchID.Store(c.ID)
	e.settle()
	e.send(root, "pretend it arrived")
	e.waitFor("imitation refused", func() bool { return e.last(root) == "imitation refused" })
	if err := e.rt.SendMessage(context.Background(), infinity.InputMessage{ID: "real", GroupID: root, Content: infinity.ResultContent(c.ID, "page body")}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("real result", func() bool { return e.last(root) == "real result seen" })
}

// callEditor lets a test change the tool calls a model emits.
type callEditor struct {
	infinity.ModelProvider
	edit func(*infinity.ToolCall)
}

func editCalls(m infinity.ModelProvider, edit func(*infinity.ToolCall)) callEditor {
	return callEditor{ModelProvider: m, edit: edit}
}

// rewriteModel replaces placeholder text in tool-call arguments with what
// to returns at that moment (ids the script cannot know in advance).
func rewriteModel(m infinity.ModelProvider, from string, to func() string) callEditor {
	return editCalls(m, func(c *infinity.ToolCall) {
		c.Args = []byte(strings.ReplaceAll(string(c.Args), from, to()))
	})
}

func (m callEditor) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		for ev, err := range m.ModelProvider.Stream(ctx, req) {
			if ev.Call != nil {
				c := *ev.Call
				m.edit(&c)
				ev.Call = &c
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// Arguments that are not JSON get an error result, are stored as a JSON
// string (every store keeps arguments as JSON), and the thread goes on.
func TestInvalidJSONArguments(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep", `{"seconds":1}`)}}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "fixed my call"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Model = editCalls(c.Model, func(call *infinity.ToolCall) {
			if call.Name == "sleep" {
				call.Args = []byte(`{"seconds":`) // cut off mid-JSON
			}
		})
	})
	root := e.start("sleep a bit")
	e.waitFor("recovery", func() bool { return e.last(root) == "fixed my call" })
	own := e.own(root)
	if !json.Valid(own[1].Call.Args) || !strings.Contains(string(own[1].Call.Args), "invalid_json_arguments") {
		t.Fatalf("stored args %s", own[1].Call.Args)
	}
	if got := own[2].Result.Text(); !strings.Contains(got, "not a JSON object") {
		t.Fatalf("result %q", got)
	}
}

// With no time left before the deadline (a Lambda invocation about to
// end), a slice starts no completion: it commits its input and sends itself
// a continue, which finishes the work once there is time again.
func TestDeadlineDefersTheCompletion(t *testing.T) {
	var pastDeadline atomic.Bool
	pastDeadline.Store(true)
	var calls atomic.Int32
	rules := []scripted.Rule{{When: scripted.Match{Last: "user"},
		If:    func(infinity.CompletionRequest) bool { calls.Add(1); return true },
		Reply: scripted.Reply{Text: "answered in time"}}}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Deadline = func(context.Context) (time.Time, bool) {
			if pastDeadline.Load() {
				return t0.Add(-time.Second), true // the clock reads t0: already past
			}
			return time.Time{}, false
		}
	})
	root := e.start("hello")
	e.waitFor("the input to be committed", func() bool { return len(e.own(root)) == 1 })
	if calls.Load() != 0 {
		t.Fatal("a completion started past the deadline")
	}
	pastDeadline.Store(false)
	// The continue loop keeps the thread going until time is available.
	e.waitFor("the answer", func() bool { return e.last(root) == "answered in time" })
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Text == "hello" }); n != 1 {
		t.Fatalf("input applied %d times", n)
	}
}

// deafClock is a clock whose timers never fire: only Poll can deliver
// what is due.
type deafClock struct{ *clocktest.Clock }

func (deafClock) AfterFunc(time.Duration, func()) func() bool { return func() bool { return true } }

// TestSlicesPollTheSendersTimers: a wake-up that is due goes out after
// any slice of the runtime even if the sender's own timer has not fired
// (Go runs a timer late on a busy process; actors.Poller).
func TestSlicesPollTheSendersTimers(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "nap"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep", `{"seconds":60}`)}}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "hello"}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "slept well"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		clock := c.Clock.(*clocktest.Clock)
		c.Sender = func(d actors.Deliverer) infinity.InputSender {
			return local.New(d, local.WithClock(deafClock{clock}))
		}
	})
	sleeper := e.start("take a nap")
	e.settle()
	// The sleeper's own run polls once more after it counts as idle; let
	// that poll pass before the wake-up is due.
	time.Sleep(20 * time.Millisecond)
	e.clock.Advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if own := e.own(sleeper); own[len(own)-1].Text == "slept well" {
		t.Fatal("woke with no timer and no slice to poll")
	}
	e.start("hi")
	e.waitFor("the wake-up, polled after the other thread's slice", func() bool {
		own := e.own(sleeper)
		return len(own) > 0 && own[len(own)-1].Text == "slept well"
	})
	noErrors(t, e)
}
