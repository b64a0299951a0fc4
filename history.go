package infinity

import (
	"encoding/json"
	"strconv"
	"time"
)

// ItemKind tells history items apart.
type ItemKind uint8

// History item kinds.
const (
	// KindUser is user text (Item.Text), from a ContentText input.
	KindUser ItemKind = iota + 1
	// KindAssistant is the text of a model response (Item.Text).
	KindAssistant
	// KindToolCall is one call of a model response (Item.Call).
	KindToolCall
	// KindToolResult answers a call (Item.Result): a tool's result, a
	// placeholder, or an injected report, event or late result.
	KindToolResult
	// KindSummary is a compaction summary at the start of a loaded
	// history; it is made by LoadHistory, never stored as an item.
	KindSummary
)

var kindNames = [...]string{KindUser: "user", KindAssistant: "assistant", KindToolCall: "tool_call", KindToolResult: "tool_result", KindSummary: "summary"}

// String returns the kind's name ("user", "assistant", "tool_call",
// "tool_result", "summary"), or "unknown" for a value outside the
// constants; it is also the kind's JSON form.
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
	ID string `json:"id"`
	// Kind says which of Text, Call and Result is set.
	Kind ItemKind `json:"kind"`
	// Text is the text of a user, assistant or summary item.
	Text string `json:"text,omitempty"`
	// Call is set on a tool-call item.
	Call *ToolCall `json:"call,omitempty"`
	// Result is set on a tool-result item.
	Result *ToolResult `json:"result,omitempty"`
	// Usage is set on the last item of a model response: the tokens the
	// whole response used. It is nil on every other item.
	Usage *Usage `json:"usage,omitempty"`
	// Model is set with Usage: the model that gave the response
	// ("provider/model", or the bare model id when the provider has no
	// name).
	Model string `json:"model,omitempty"`
	// Budget is set on a root's first item when it started with a budget,
	// and on a NoticeBudgetRaised item of the root: what it adds to the
	// tree's budget (Budget).
	Budget *Budget `json:"budget,omitempty"`
	// Notice marks an item the runtime added about the budget (the
	// Notice constants); empty on every other item.
	Notice string `json:"notice,omitempty"`
	// At is when the engine added the item, on the runtime's clock (for a
	// summary item, when the summary was applied).
	At time.Time `json:"at"`
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	// ID names the call; its result carries it (ToolResult.CallID,
	// Content.ID). It is the provider's id, or one the engine derives when
	// the provider gave none or repeated one, so it is unique in the
	// thread's view.
	ID string `json:"id"`
	// Name is the tool the model called (ToolSpec.Name); a name that is
	// no tool gets an error result.
	Name string `json:"name"`
	// Args are the call's arguments, a JSON object. The engine stores {}
	// for empty arguments and answers arguments that are no JSON object
	// with an error result; invalid JSON is stored as
	// {"invalid_json_arguments": "<the model's text>"}.
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

var resultStateNames = [...]string{ResultFinal: "final", ResultPending: "pending", ResultInterrupted: "interrupted"}

// String returns the state's lowercase name ("final", "pending",
// "interrupted"), or "ResultState(N)" for a value outside the constants.
func (s ResultState) String() string {
	if int(s) < len(resultStateNames) {
		return resultStateNames[s]
	}
	return "ResultState(" + strconv.Itoa(int(s)) + ")"
}

// ToolResult answers the call with id CallID.
type ToolResult struct {
	// CallID is the ToolCall.ID answered. The engine sets it (and State)
	// on what a synchronous tool returns, so a tool may leave it empty.
	CallID string `json:"call_id"`
	// Parts is what the model sees of the result: text and images.
	Parts []Part `json:"parts,omitempty"`
	// IsError tells the model the call failed; Parts says why.
	IsError bool `json:"is_error,omitempty"`
	// State says whether this is the call's real result; zero is
	// ResultFinal.
	State ResultState `json:"state,omitempty"`
	// Display is a rendering of the result for people (RAP's display_as),
	// for clients only: the model never sees it.
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
	// Input is the tokens the model read: the whole request, prompt-cache
	// reads and writes included.
	Input int `json:"input"`
	// Output is the tokens the model wrote.
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
