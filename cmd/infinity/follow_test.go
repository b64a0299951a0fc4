package main

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// Lines for the follower's tests.
func callLine(id, name, args string) daemon.ItemLine {
	return daemon.ItemLine{Item: &infinity.Item{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: id, Name: name, Args: json.RawMessage(args)}}}
}

func resultLine(call, text string, state infinity.ResultState) daemon.ItemLine {
	return daemon.ItemLine{Item: &infinity.Item{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
		CallID: call, Parts: []infinity.Part{{Type: "text", Text: text}}, State: state}}}
}

func modelLine(text string) daemon.ItemLine {
	return daemon.ItemLine{Item: &infinity.Item{Kind: infinity.KindAssistant, Text: text}}
}

func reportLines(child string) []daemon.ItemLine {
	return []daemon.ItemLine{
		callLine("inj-"+child, injectedTool, `{"child_thread_id":"`+child+`","kind":"thread_report"}`),
		resultLine("inj-"+child, "Child thread "+child+" has closed.", infinity.ResultFinal),
	}
}

// newTestFollower follows a tree whose threads have no lines yet.
func newTestFollower(b *strings.Builder, t daemon.Tree) *follower {
	tr := newTranscript(b)
	tr.stamp = func(infinity.Item) string { return "00:00:00" }
	f := &follower{tr: tr, names: map[infinity.ThreadID]string{t.ID: "root"}, next: map[infinity.ThreadID]int{},
		queue: map[infinity.ThreadID][]daemon.ItemLine{}, held: map[infinity.ThreadID]bool{}, started: map[infinity.ThreadID]bool{}}
	f.round(t)
	return f
}

// round indexes this round's tree (as followTree does after reading it).
func (f *follower) round(t daemon.Tree) {
	f.nodes = map[infinity.ThreadID]daemon.Tree{}
	f.index(t)
}

// queueLines queues lines of a thread, noting their calls as read does.
func (f *follower) queueLines(id infinity.ThreadID, lines ...daemon.ItemLine) {
	for _, l := range lines {
		f.tr.note(l.Item)
		f.queue[id] = append(f.queue[id], l)
	}
}

func node(id string, kids ...daemon.Tree) daemon.Tree {
	t := daemon.Tree{ThreadView: daemon.ThreadView{ID: infinity.ThreadID(id)}, Threads: kids}
	for i := range t.Threads {
		t.Threads[i].Parent = t.ID
	}
	return t
}

// A parent's line that brings in a child's report (and the sleep its
// arrival cut short) prints after the child's lines read in the same
// round; children are named in the order the tree lists them (spawn
// order), and their first lines print in that order.
func TestFollowOrder(t *testing.T) {
	var b strings.Builder
	tree := node("r", node("a"), node("b"))
	f := newTestFollower(&b, tree)
	f.queueLines("r", callLine("s1", "spawn_thread", `{}`), callLine("s2", "spawn_thread", `{}`),
		resultLine("s1", "spawned a", infinity.ResultFinal), resultLine("s2", "spawned b", infinity.ResultFinal),
		callLine("z", "sleep_until_event_or_input", `{}`))
	f.queueLines("b", resultLine("s2", "inside b", infinity.ResultFinal), modelLine("b works"))
	f.flush(tree, false, map[infinity.ThreadID]bool{})
	// b's first lines wait a round for a's.
	f.queueLines("a", resultLine("s1", "inside a", infinity.ResultFinal), callLine("c", "close_thread", `{}`), resultLine("c", "Thread closed.", infinity.ResultFinal))
	f.queueLines("r", resultLine("z", "Interrupted: new input arrived first.", infinity.ResultInterrupted))
	f.queueLines("r", reportLines("a")...)
	f.queueLines("r", modelLine("a reported"))
	f.round(tree)
	f.flush(tree, false, map[infinity.ThreadID]bool{})
	want := `00:00:00  root  call spawn_thread {}
00:00:00  root  call spawn_thread {}
00:00:00  root  result spawn_thread: spawned a
00:00:00  root  result spawn_thread: spawned b
00:00:00  root  call sleep_until_event_or_input {}
00:00:00  root/1  result spawn_thread: inside a
00:00:00  root/1  call close_thread {}
00:00:00  root/1  result close_thread: Thread closed.
00:00:00  root  result sleep_until_event_or_input: Interrupted: new input arrived first.
00:00:00  root  call receive_event__injected {"child_thread_id":"a","kind":"thread_report"}
00:00:00  root  result receive_event__injected: Child thread a has closed.
00:00:00  root  model> a reported
00:00:00  root/2  result spawn_thread: inside b
00:00:00  root/2  model> b works
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// A report from a child the tree does not show yet holds the parent's
// lines, and its subtree's, for one round; the last round holds nothing.
func TestFollowHoldsForUnknownChild(t *testing.T) {
	var b strings.Builder
	tree := node("r", node("a"))
	f := newTestFollower(&b, tree)
	f.queueLines("r", modelLine("before"))
	f.queueLines("r", reportLines("x")...)
	f.queueLines("a", modelLine("a works"))
	f.started["a"] = true
	f.flush(tree, false, map[infinity.ThreadID]bool{})
	if b.String() != "00:00:00  root  model> before\n" {
		t.Fatalf("first round:\n%s", b.String())
	}
	// x shows up: its lines come before the report.
	tree = node("r", node("a"), node("x"))
	f.round(tree)
	f.queueLines("x", modelLine("x works"))
	f.flush(tree, false, map[infinity.ThreadID]bool{})
	want := "00:00:00  root  model> before\n00:00:00  root/2  model> x works\n00:00:00  root  call receive_event__injected" +
		` {"child_thread_id":"x","kind":"thread_report"}` + "\n00:00:00  root  result receive_event__injected: Child thread x has closed.\n00:00:00  root/1  model> a works\n"
	if b.String() != want {
		t.Fatalf("second round:\n%s\nwant\n%s", b.String(), want)
	}
	// One that never shows up holds the parent one round only.
	b.Reset()
	f.queueLines("r", reportLines("y")...)
	f.flush(tree, false, map[infinity.ThreadID]bool{})
	if b.String() != "" {
		t.Fatalf("a report from an unknown child printed at once:\n%s", b.String())
	}
	f.round(tree)
	f.flush(tree, false, map[infinity.ThreadID]bool{})
	if !strings.Contains(b.String(), "Child thread y has closed.") {
		t.Fatalf("the report still waits after a round:\n%s", b.String())
	}
	// The last round holds nothing.
	b.Reset()
	f.queueLines("r", reportLines("z")...)
	f.flush(tree, true, map[infinity.ThreadID]bool{})
	if !strings.Contains(b.String(), "Child thread z has closed.") {
		t.Fatalf("the last round held a line:\n%s", b.String())
	}
}

// A child's first result answers its parent's spawn_thread, which logs
// finds in the parent's history; a call nowhere to be found is "(earlier
// call)".
func TestTranscriptNamesEveryResult(t *testing.T) {
	var b strings.Builder
	tr := newTranscript(&b)
	tr.stamp = func(infinity.Item) string { return "00:00:00" }
	tr.lookup = func(call string) (string, bool) {
		return map[string]string{"spawn": "spawn_thread"}[call], call == "spawn"
	}
	for _, l := range []daemon.ItemLine{resultLine("spawn", "You are now inside…", infinity.ResultFinal), resultLine("gone", "old", infinity.ResultFinal)} {
		tr.line("", l)
	}
	want := "00:00:00  result spawn_thread: You are now inside…\n00:00:00  result (earlier call): old\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// Event and compaction threads are named apart from spawn_thread
// children (root/e1, root/c1), so root/2 stays the second spawn's child.
func TestFollowNamesKinds(t *testing.T) {
	kid := func(id, kind string, kids ...daemon.Tree) daemon.Tree {
		return daemon.Tree{ThreadView: daemon.ThreadView{ID: infinity.ThreadID(id), Kind: kind}, Threads: kids}
	}
	tree := kid("r", "", kid("a", ""), kid("ev", "event", kid("evk", "")), kid("b", ""), kid("cp", "compaction"), kid("x", "a kind from a newer daemon"))
	f := &follower{names: map[infinity.ThreadID]string{"r": "root"}, nodes: map[infinity.ThreadID]daemon.Tree{}}
	f.index(tree)
	want := map[infinity.ThreadID]string{"r": "root", "a": "root/1", "ev": "root/e1", "evk": "root/e1/1", "b": "root/2", "cp": "root/c1", "x": "root/3"}
	if !maps.Equal(f.names, want) {
		t.Errorf("names %v, want %v", f.names, want)
	}
}
