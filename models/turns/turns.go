// Package turns groups a thread's history items into the alternating turns
// that chat-model APIs expect, for the network model providers: consecutive
// assistant text and tool calls form one assistant turn; consecutive tool
// results and user text form one user turn. It imports only the root
// package and the standard library.
package turns

import (
	"encoding/json"

	infinity "github.com/infinity-runtime/infinity"
)

// Role is who speaks in a turn.
type Role string

// Roles.
const (
	User      Role = "user"
	Assistant Role = "assistant"
)

// Turn is one message of a chat API: for an assistant turn, its text and
// calls; for a user turn, the results of the previous turn's calls (first,
// in item order) followed by user text.
type Turn struct {
	Role    Role
	Text    string // assistant text, or user text (several user items joined by blank lines)
	Calls   []infinity.ToolCall
	Results []infinity.ToolResult
}

// Group turns items into turns. The engine guarantees that every call is
// answered before the conversation moves on (its model view repairs
// inherited calls), so the results of an assistant turn's calls all sit in
// the next user turn.
func Group(items []infinity.Item) []Turn {
	var out []Turn
	cur := func(r Role) *Turn {
		if len(out) == 0 || out[len(out)-1].Role != r {
			out = append(out, Turn{Role: r})
		}
		return &out[len(out)-1]
	}
	for _, it := range items {
		switch it.Kind {
		case infinity.KindUser:
			t := cur(User)
			if t.Text != "" {
				t.Text += "\n\n"
			}
			t.Text += it.Text
		case infinity.KindAssistant:
			t := cur(Assistant)
			if len(t.Calls) > 0 { // text after calls starts a new response
				out = append(out, Turn{Role: Assistant})
				t = &out[len(out)-1]
			}
			if t.Text != "" {
				t.Text += "\n\n"
			}
			t.Text += it.Text
		case infinity.KindToolCall:
			t := cur(Assistant)
			t.Calls = append(t.Calls, *it.Call)
		case infinity.KindToolResult:
			t := cur(User)
			t.Results = append(t.Results, *it.Result)
		}
	}
	return out
}

// Args returns a call's arguments as a JSON object ("{}" when empty or not
// an object), the form every chat API accepts.
func Args(c infinity.ToolCall) json.RawMessage {
	var m map[string]any
	if len(c.Args) == 0 || json.Unmarshal(c.Args, &m) != nil || m == nil {
		return json.RawMessage("{}")
	}
	return c.Args
}
