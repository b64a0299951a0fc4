package infinity

import (
	"encoding/json"
	"time"
)

// ItemKind tells history items apart.
type ItemKind uint8

// History item kinds.
const (
	KindUser ItemKind = iota + 1
	KindAssistant
	KindToolCall
	KindToolResult
	// KindSummary is a compaction summary at the start of a loaded
	// history; it is made by LoadHistory, never stored as an item.
	KindSummary
)

var kindNames = [...]string{KindUser: "user", KindAssistant: "assistant", KindToolCall: "tool_call", KindToolResult: "tool_result", KindSummary: "summary"}

func (k ItemKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k ItemKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *ItemKind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n != "" && n == string(b) {
			*k = ItemKind(i)
			return nil
		}
	}
	return ErrInvalid
}

// Item is one entry of a thread's history. A model response is stored as an
// optional assistant text item followed by one tool-call item per call;
// results follow as tool-result items.
type Item struct {
	// ID is stable: the input message id for inputs, derived for model output.
	ID     string      `json:"id"`
	Kind   ItemKind    `json:"kind"`
	Text   string      `json:"text,omitempty"`
	Call   *ToolCall   `json:"call,omitempty"`
	Result *ToolResult `json:"result,omitempty"`
	// Usage is set on the last item of a model response, and Model to the
	// model that gave it ("provider/model", or the bare model id when the
	// provider has no name).
	Usage *Usage    `json:"usage,omitempty"`
	Model string    `json:"model,omitempty"`
	At    time.Time `json:"at"`
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

// ResultState says how final a tool result is.
type ResultState uint8

// Result states.
const (
	// ResultFinal is the real answer to the call.
	ResultFinal ResultState = iota
	// ResultPending answers a still-running asynchronous call because other
	// input arrived first; the real result will be injected when it comes.
	ResultPending
	// ResultInterrupted answers a passive call (a sleep) that new input cut
	// short; its late wake-up is recorded and ignored.
	ResultInterrupted
)

// ToolResult answers the call with id CallID.
type ToolResult struct {
	CallID  string           `json:"call_id"`
	Parts   []Part           `json:"parts,omitempty"`
	IsError bool             `json:"is_error,omitempty"`
	State   ResultState      `json:"state,omitempty"`
	Display []DisplaySegment `json:"display,omitempty"`
	// Subscription marks the result that started a subscription (RAP): the
	// call's id is an active subscription of the thread from here on, until
	// cancel_subscription or a final event ends it.
	Subscription bool `json:"subscription,omitempty"`
}

// Text returns the result's text parts joined.
func (r *ToolResult) Text() string { return PartsText(r.Parts) }

// Usage counts tokens of one model response.
type Usage struct {
	Input  int `json:"input"`
	Output int `json:"output"`
}

// Add returns u + v.
func (u Usage) Add(v Usage) Usage { return Usage{u.Input + v.Input, u.Output + v.Output} }

// SumUsage adds up the usage recorded on items.
func SumUsage(items []Item) Usage {
	var u Usage
	for _, it := range items {
		if it.Usage != nil {
			u = u.Add(*it.Usage)
		}
	}
	return u
}
