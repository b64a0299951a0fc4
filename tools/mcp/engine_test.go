package mcp_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
	"github.com/infinity-runtime/infinity/tools/mcp"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

// A thread calls an MCP tool through the engine and answers with its result.
func TestEngineCallsMCPTool(t *testing.T) {
	url, stop := mcptest.New()
	defer stop()
	s := connect(t, url, mcp.WithTimeout(5*time.Second))

	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "add", Args: json.RawMessage(`{"a":2,"b":3}`)}}}},
		{When: scripted.Match{LastTool: "add"}, Reply: scripted.Reply{Text: "The sum is 5."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	rt, err := actors.New(actors.Config{
		Conversations: memory.NewConversationStore(),
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(d actors.Deliverer) infinity.InputSender { return local.New(d) },
		Host:          protohost.New,
		Agents:        []actors.Agent{{Name: "calc", System: "You add numbers.", Tools: s.Tools()}},
		Observer: func(ev actors.Event) {
			if ev.Kind == actors.EventItem && ev.Item.Kind == infinity.KindAssistant {
				select {
				case answered <- ev.Item.Text:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())

	root, err := rt.Start(context.Background(), actors.StartOptions{Agent: "calc", Text: "What is 2 + 3?"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case text := <-answered:
		if text != "The sum is 5." {
			t.Errorf("answer = %q", text)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	h, err := rt.History(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []infinity.ItemKind
	for _, it := range h.Items {
		kinds = append(kinds, it.Kind)
	}
	want := []infinity.ItemKind{infinity.KindUser, infinity.KindToolCall, infinity.KindToolResult, infinity.KindAssistant}
	if len(kinds) != len(want) {
		t.Fatalf("history kinds = %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("history kinds = %v, want %v", kinds, want)
		}
	}
	call, res := h.Items[1].Call, h.Items[2].Result
	if call.Name != "add" || string(call.Args) != `{"a":2,"b":3}` {
		t.Errorf("call = %+v", call)
	}
	if res.CallID != call.ID || res.IsError || res.Text() != "5" {
		t.Errorf("result = %+v", res)
	}
	if h.Items[3].Text != "The sum is 5." {
		t.Errorf("answer item = %+v", h.Items[3])
	}
}
