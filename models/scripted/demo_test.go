package scripted

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

// thread is one simulated thread of the demo: its lineage and history.
type thread struct {
	id    infinity.ThreadID
	stack []infinity.ThreadID
	items []infinity.Item
}

// turn sends the thread's history to p, checks the reply against want and
// appends the reply to the history as the engine would: an assistant text
// item, then one tool-call item per call.
func (th *thread) turn(t *testing.T, p *Provider, want turnWant) []*infinity.ToolCall {
	t.Helper()
	req := infinity.CompletionRequest{Model: "scripted", System: "You are the demo agent.", Items: th.items, Thread: th.id, Stack: th.stack}
	r := collect(t, p.Stream(context.Background(), req))
	if r.err != nil {
		t.Fatalf("%s: %v", want.name, r.err)
	}
	if !strings.Contains(r.text, want.text) {
		t.Errorf("%s: text %q, want it to contain %q", want.name, r.text, want.text)
	}
	if got := callNames(r.calls); got != want.calls {
		t.Fatalf("%s: calls %q, want %q", want.name, got, want.calls)
	}
	wantStop := infinity.StopEnd
	if len(r.calls) > 0 {
		wantStop = infinity.StopToolUse
	}
	if r.done.Stop != wantStop {
		t.Errorf("%s: stop %q, want %q", want.name, r.done.Stop, wantStop)
	}
	if r.text != "" {
		th.items = append(th.items, assistantItem(r.text))
	}
	for _, c := range r.calls {
		th.items = append(th.items, infinity.Item{Kind: infinity.KindToolCall, Call: c})
	}
	return r.calls
}

type turnWant struct {
	name  string
	text  string // a substring of the reply text
	calls string // the call names, comma-separated
}

func TestDemoScript(t *testing.T) {
	p := mustNew(t, Demo())
	root := &thread{id: "troot", stack: []infinity.ThreadID{"troot"}}

	// The user starts the demo; the root spawns three children at once.
	root.items = append(root.items, userItem("Run the demo."))
	spawns := root.turn(t, p, turnWant{name: "root start", text: "three child threads", calls: "spawn_thread,spawn_thread,spawn_thread"})
	markers := []string{"task A", "task B", "task C"}
	for i, c := range spawns {
		a := argsMap(t, c)
		if got := a["child_of"]; !reflect.DeepEqual(got, []any{"troot"}) {
			t.Errorf("spawn %d child_of = %#v, want [troot]", i, got)
		}
		if instr, _ := a["instructions"].(string); !strings.Contains(instr, markers[i]) {
			t.Errorf("spawn %d instructions %q lack %q", i, instr, markers[i])
		}
	}

	// The engine creates the children: each inherits the root's history
	// through its own spawn call, then the spawn's result.
	children := make([]*thread, 3)
	spawnAt := len(root.items) - 3
	for i, c := range spawns {
		id := infinity.ThreadID("tchild" + string(rune('a'+i)))
		items := append([]infinity.Item(nil), root.items[:spawnAt+i+1]...)
		items = append(items, resultItem(c.ID, "You are now inside thread "+string(id)+". Your task: "+argsMap(t, c)["instructions"].(string)))
		children[i] = &thread{id: id, stack: []infinity.ThreadID{"troot", id}, items: items}
	}

	// The root gets its spawn results and waits.
	for _, c := range spawns {
		root.items = append(root.items, resultItem(c.ID, "Spawned a child thread."))
	}
	waits := root.turn(t, p, turnWant{name: "root after spawning", text: "wait", calls: "sleep_until_event_or_input"})
	// A wait that ends with nothing to report is renewed.
	root.items = append(root.items, resultItem(waits[0].ID, "Nothing happened."))
	waits = root.turn(t, p, turnWant{name: "root wait timed out", calls: "sleep_until_event_or_input"})

	// Each child sleeps first, for a different time.
	sleeps := make([]*infinity.ToolCall, 3)
	for i, ch := range children {
		calls := ch.turn(t, p, turnWant{name: "child " + markers[i] + " start", calls: "sleep"})
		sleeps[i] = calls[0]
		a := argsMap(t, calls[0])
		if a["seconds"] != float64(3+i) || a["reason"] == "" {
			t.Errorf("child %d sleep args %s, want %d seconds and a reason", i, calls[0].Args, 3+i)
		}
	}
	if sleeps[0].ID == sleeps[1].ID || sleeps[1].ID == sleeps[2].ID {
		t.Errorf("children share call ids: %s %s %s", sleeps[0].ID, sleeps[1].ID, sleeps[2].ID)
	}

	// After the sleep each child closes itself with a final report.
	reports := make([]string, 3)
	for i, ch := range children {
		ch.items = append(ch.items, resultItem(sleeps[i].ID, "Slept."))
		calls := ch.turn(t, p, turnWant{name: "child " + markers[i] + " after sleep", calls: "close_thread"})
		reports[i], _ = argsMap(t, calls[0])["report_to_parent"].(string)
		if want := string(rune('A'+i)) + ":"; !strings.HasPrefix(reports[i], want) {
			t.Errorf("child %d report %q, want it to start with %q", i, reports[i], want)
		}
		if got := argsMap(t, calls[0])["thread_id"]; got != string(ch.id) {
			t.Errorf("child %d closes %v, want itself (%s)", i, got, ch.id)
		}
		// Should the engine run the child once more, it just ends.
		ch.items = append(ch.items, resultItem(calls[0].ID, "Closed."))
		ch.turn(t, p, turnWant{name: "child " + markers[i] + " closed", text: "done"})
	}

	// A user message while the children work does not spawn again.
	root.items = append(root.items, resultItem(waits[0].ID, "Interrupted by new input."), userItem("Are you done?"))
	waits = root.turn(t, p, turnWant{name: "root asked while waiting", text: "still working", calls: "sleep_until_event_or_input"})

	// The reports arrive one by one (out of order, C first), each cutting
	// the root's wait short.
	want := []turnWant{
		{name: "root after 1 report", text: "first report", calls: "sleep_until_event_or_input"},
		{name: "root after 2 reports", text: "Two of three", calls: "sleep_until_event_or_input"},
		{name: "root after 3 reports", text: "All three children reported", calls: ""},
	}
	for n, i := range []int{2, 0, 1} {
		inj := infinity.DeriveID("call_", "inject", string(children[i].id))
		root.items = append(root.items,
			resultItem(waits[0].ID, "Interrupted by new input."),
			callItem(inj, "receive_event__injected", `{}`),
			resultItem(inj, reports[i]))
		waits = root.turn(t, p, want[n])
	}

	// A later question gets an answer, not a new round of children.
	root.items = append(root.items, userItem("Thanks!"))
	root.turn(t, p, turnWant{name: "root after the end", text: "already reported"})
}

// TestDemoFallbacks covers the generic child rules: a child without a
// known task marker, or a grandchild.
func TestDemoFallbacks(t *testing.T) {
	p := mustNew(t, Demo())
	gc := &thread{id: "g", stack: []infinity.ThreadID{"r", "c", "g"}, items: []infinity.Item{
		userItem("Run."),
		callItem("s1", "spawn_thread", `{"instructions":"something else"}`),
		resultItem("s1", "You are now inside thread g. Your task: something else"),
	}}
	calls := gc.turn(t, p, turnWant{name: "grandchild start", calls: "sleep"})
	gc.items = append(gc.items, resultItem(calls[0].ID, "Slept."))
	calls = gc.turn(t, p, turnWant{name: "grandchild after sleep", calls: "close_thread"})
	if got, want := argsMap(t, calls[0])["report_to_parent"], "Thread g (depth 2, child of c) finished its task."; got != want {
		t.Errorf("report %q, want %q", got, want)
	}
}

func TestDemoCopies(t *testing.T) {
	a := Demo()
	a.Rules[0].Name = "changed"
	if Demo().Rules[0].Name == "changed" {
		t.Fatal("Demo returns shared rules")
	}
}
