package scripted

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func userItem(text string) infinity.Item {
	return infinity.Item{Kind: infinity.KindUser, Text: text}
}

func assistantItem(text string) infinity.Item {
	return infinity.Item{Kind: infinity.KindAssistant, Text: text}
}

func callItem(id, name, args string) infinity.Item {
	return infinity.Item{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: id, Name: name, Args: json.RawMessage(args)}}
}

func resultItem(id, text string) infinity.Item {
	return infinity.Item{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: id, Parts: []infinity.Part{{Type: "text", Text: text}}}}
}

// response is a collected stream.
type response struct {
	events []infinity.StreamEvent
	deltas []string
	text   string
	calls  []*infinity.ToolCall
	done   *infinity.StreamEvent
	err    error
}

func collect(t testing.TB, seq func(func(infinity.StreamEvent, error) bool)) response {
	t.Helper()
	var r response
	for ev, err := range seq {
		if r.err != nil || r.done != nil {
			t.Fatalf("event after the end of the stream: %+v, %v", ev, err)
		}
		if err != nil {
			r.err = err
			continue
		}
		r.events = append(r.events, ev)
		switch ev.Kind {
		case infinity.StreamText:
			if len(r.calls) > 0 {
				t.Fatalf("text delta %q after a tool call", ev.Text)
			}
			r.deltas = append(r.deltas, ev.Text)
			r.text += ev.Text
		case infinity.StreamToolCall:
			r.calls = append(r.calls, ev.Call)
		case infinity.StreamDone:
			r.done = &ev
		default:
			t.Fatalf("unknown event kind %d", ev.Kind)
		}
	}
	if r.err == nil && r.done == nil {
		t.Fatalf("stream ended without StreamDone or error")
	}
	return r
}

func stream(t testing.TB, p *Provider, req infinity.CompletionRequest) response {
	t.Helper()
	return collect(t, p.Stream(context.Background(), req))
}

func mustNew(t testing.TB, s Script) *Provider {
	t.Helper()
	p, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// rootReq is a root thread's request.
func rootReq(items ...infinity.Item) infinity.CompletionRequest {
	return infinity.CompletionRequest{Thread: "root", Stack: []infinity.ThreadID{"root"}, Items: items}
}

// argsMap decodes call arguments.
func argsMap(t testing.TB, c *infinity.ToolCall) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Args, &m); err != nil {
		t.Fatalf("call %s args %s: %v", c.Name, c.Args, err)
	}
	return m
}

func callNames(calls []*infinity.ToolCall) string {
	var names []string
	for _, c := range calls {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}
