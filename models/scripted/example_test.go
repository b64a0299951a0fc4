package scripted_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/scripted"
)

func ExampleNew() {
	p, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{Name: "root-spawn",
			When: scripted.Match{Depth: new(0), Last: "user"},
			Reply: scripted.Reply{Text: "Spawning a child.", Calls: []scripted.CallSpec{
				{Name: "spawn_thread", Args: json.RawMessage(`{"instructions": "task A: ...", "child_of": "$STACK"}`)},
			}}},
	}})
	if err != nil {
		panic(err)
	}
	req := infinity.CompletionRequest{
		Thread: "root",
		Stack:  []infinity.ThreadID{"root"},
		Items:  []infinity.Item{{Kind: infinity.KindUser, Text: "Go."}},
	}
	for ev, err := range p.Stream(context.Background(), req) {
		switch {
		case err != nil:
			fmt.Println("error:", err)
		case ev.Kind == infinity.StreamText:
			fmt.Printf("text %q\n", ev.Text)
		case ev.Kind == infinity.StreamToolCall:
			fmt.Println("call", ev.Call.ID, ev.Call.Name, string(ev.Call.Args))
		case ev.Kind == infinity.StreamDone:
			fmt.Println("done", ev.Stop, ev.Usage.Input, ev.Usage.Output)
		}
	}
	// Output:
	// text "Spawning "
	// text "a "
	// text "child."
	// call call_58094192f1a423a8 spawn_thread {"instructions":"task A: ...","child_of":["root"]}
	// done tool_use 1 19
}

// The example of the package documentation.
func ExampleParse() {
	s, err := scripted.Parse([]byte(`{"rules": [
	  {"name": "root-done",
	   "when": {"depth": 0, "last_tool": "receive_event__injected",
	            "count": {"tool": "receive_event__injected", "min": 2}},
	   "reply": {"text": "Both children reported."}},
	  {"name": "root-wait",
	   "when": {"depth": 0, "last": "tool_result"},
	   "reply": {"calls": [{"name": "sleep_until_event_or_input"}]}},
	  {"name": "root-spawn",
	   "when": {"depth": 0, "last": "user"},
	   "reply": {"text": "Spawning two children.", "calls": [
	     {"name": "spawn_thread", "args": {"instructions": "task A: ...", "child_of": "$STACK"}},
	     {"name": "spawn_thread", "args": {"instructions": "task B: ...", "child_of": "$STACK"}}]}},
	  {"name": "child-A-sleep",
	   "when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task A"},
	   "reply": {"calls": [{"name": "sleep", "args": {"seconds": 2, "reason": "working on A"}}]}},
	  {"name": "child-B-sleep",
	   "when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task B"},
	   "reply": {"delay": "100ms",
	             "calls": [{"name": "sleep", "args": {"seconds": 3, "reason": "working on B"}}]}},
	  {"name": "child-report",
	   "when": {"depth": 1, "last_tool": "sleep"},
	   "reply": {"calls": [
	     {"name": "report_to_parent", "args": {"report": "$THREAD is done"}},
	     {"name": "close_thread", "args": {"thread_id": "$THREAD"}}]}}
	]}`))
	if err != nil {
		panic(err)
	}
	for _, r := range s.Rules {
		fmt.Println(r.Name, len(r.Reply.Calls), r.Reply.Delay)
	}

	_, err = scripted.Parse([]byte(`{"rules": [{"when": {"dept": 1}}]}`))
	fmt.Println(err)
	// Output:
	// root-done 0 0s
	// root-wait 1 0s
	// root-spawn 2 0s
	// child-A-sleep 1 0s
	// child-B-sleep 1 100ms
	// child-report 2 0s
	// scripted: parse: rules[0].when: unknown field "dept" (known: contains, count, depth, last, last_text, last_tool, min_depth, system): invalid
}
