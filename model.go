package infinity

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// ModelInfo describes one model a provider serves.
type ModelInfo struct {
	// ID is the model's id in the provider's own API
	// ("claude-sonnet-4-5", "llama3.1:8b"): what CompletionRequest.Model
	// and the model part of a ModelRef name. Non-empty and unique within
	// the provider (ValidateModels).
	ID string `json:"id"`
	// ContextWindow is how many tokens the model takes in one call, input
	// and output together; positive. The engine compacts a thread's
	// history once a response's Usage passes three quarters of it.
	ContextWindow int `json:"context_window"`
	// MaxOutput is the most tokens one response may have; positive and no
	// larger than ContextWindow. The engine caps CompletionRequest.MaxTokens
	// with it.
	MaxOutput int `json:"max_output"`
	// Images says the model takes image input; without it the engine
	// replaces every image in what it sends with a text placeholder.
	Images bool `json:"images,omitempty"`
}

// ModelProvider streams completions.
type ModelProvider interface {
	// Models lists the models the provider serves.
	Models(ctx context.Context) ([]ModelInfo, error)
	// Stream runs one completion. Errors are yielded as the second value;
	// a transient failure (throttling, overload, a broken stream) wraps
	// ErrRetryable, and the caller discards what was streamed and retries.
	// Cancelling ctx stops the stream promptly.
	Stream(ctx context.Context, req CompletionRequest) iter.Seq2[StreamEvent, error]
}

// CompletionRequest is one model call.
type CompletionRequest struct {
	// Model is the ModelInfo.ID to run; empty lets the provider use its
	// default (the first model it lists).
	Model string
	// System is the system prompt; empty sends none. The engine sends the
	// agent's prompt followed by the thread's identity and the rules of
	// the built-in tools.
	System string
	// Items is the history the model sees, oldest first: user, assistant,
	// tool-call and tool-result items. The engine sends a compaction
	// summary as a user item, answers every call before the next
	// non-call item, and replaces images with text for a model without
	// ModelInfo.Images.
	Items []Item
	// Tools are the tools the model may call; empty offers none (as for a
	// compaction thread).
	Tools []ToolSpec
	// MaxTokens bounds the response, in tokens; 0 leaves the limit to the
	// provider (its default for the model). The engine sends
	// Agent.MaxTokens capped at ModelInfo.MaxOutput.
	MaxTokens int
	// Thread identifies the calling thread; network providers ignore it,
	// the scripted provider templates with it.
	Thread ThreadID
	// Stack is the caller's lineage, root first and Thread last; used like
	// Thread.
	Stack []ThreadID
}

// StreamEventKind tells stream events apart.
type StreamEventKind uint8

// Stream event kinds.
const (
	// StreamText carries a piece of the response's text in Text.
	StreamText StreamEventKind = iota + 1
	// StreamToolCall carries one whole tool call, arguments complete, in
	// Call.
	StreamToolCall
	// StreamDone ends the response, with its Usage and Stop; it is the
	// last event of a stream that succeeded.
	StreamDone
)

var streamEventKindNames = [...]string{StreamText: "text", StreamToolCall: "tool_call", StreamDone: "done"}

// String returns the kind's lowercase name ("text", "tool_call", "done"),
// or "StreamEventKind(N)" for a value outside the constants.
func (k StreamEventKind) String() string {
	if int(k) < len(streamEventKindNames) && streamEventKindNames[k] != "" {
		return streamEventKindNames[k]
	}
	return "StreamEventKind(" + strconv.Itoa(int(k)) + ")"
}

// StopReason says why a response ended.
type StopReason string

// Stop reasons.
const (
	// StopEnd: the model finished its turn (also the reason a provider
	// reports for anything it does not map).
	StopEnd StopReason = "end_turn"
	// StopToolUse: the model stopped to have its tool calls run.
	StopToolUse StopReason = "tool_use"
	// StopMaxTokens: the response reached its output limit
	// (CompletionRequest.MaxTokens) and was cut short.
	StopMaxTokens StopReason = "max_tokens"
)

// StreamEvent is one event of a completion stream. A stream is any number
// of StreamText and StreamToolCall events, then one StreamDone; the engine
// treats a stream that ends without StreamDone as broken (ErrRetryable).
type StreamEvent struct {
	// Kind says which of the other fields is set.
	Kind StreamEventKind
	// Text is a piece of the response's text, on StreamText. Pieces may
	// split the text anywhere; the response's text is them joined.
	Text string
	// Call is the whole tool call, on StreamToolCall (nil is ignored).
	Call *ToolCall
	// Usage is the whole response's token count, on StreamDone; zero when
	// the provider's server reports none.
	Usage Usage
	// Stop is why the response ended, on StreamDone.
	Stop StopReason
}

// ToolSpec describes a tool to the model and to the engine.
type ToolSpec struct {
	// Name is what the model calls the tool by (ToolCall.Name). An agent
	// tool named like a built-in is rejected by the engine's configuration
	// (ErrInvalid); a session tool named like another tool is left out.
	Name string `json:"name"`
	// Description tells the model what the tool does and when to use it.
	Description string `json:"description"`
	// Schema is the JSON Schema of the call's arguments, an object
	// schema ({"type":"object","properties":...}).
	Schema json.RawMessage `json:"input_schema"`
	// Async tools answer later, through an input message; sync tools answer
	// inline and the slice loops back into another completion.
	Async bool `json:"async,omitempty"`
	// Passive async tools (sleeps) are cut short by any new input, and their
	// late result is ignored.
	Passive bool `json:"passive,omitempty"`
}

// Tool is a tool the model can call, other than the engine's built-ins.
type Tool interface {
	// Spec describes the tool; it should return the same spec every time.
	Spec() ToolSpec
	// Invoke runs the call. A sync tool returns its result. An async tool
	// starts the work and returns a nil result; the real result arrives later
	// as an input message whose content is a tool result for call.ID. Invoke
	// of an async tool runs only after the slice is durable and may run more
	// than once for the same call (call.ID is stable). An error becomes an
	// error result for the model.
	Invoke(ctx context.Context, env ToolEnv, call ToolCall) (*ToolResult, error)
}

// ToolEnv is what a tool learns about its caller.
type ToolEnv struct {
	// Thread is the thread that made the call; an async tool sends the
	// call's result to it.
	Thread ThreadID
	// Stack is the thread's lineage, root first, the thread last.
	Stack []ThreadID
	// UserID is the root thread's metadata "user_id" (RAP's user_id; a
	// non-string value as its JSON). The engine sets it when it starts an
	// asynchronous call; it is empty when the metadata has none, and for
	// synchronous calls.
	UserID string
	// Sender is the runtime's InputSender: an async tool, or whatever
	// receives its answer, sends the call's result with it as an input
	// message to Thread (ResultContent(call.ID, ...), with a stable ID).
	Sender InputSender
}

// ValidateModels checks a provider's list of served models: at least one,
// each with a unique, non-empty id, a positive context window and a
// positive output limit no larger than the window. Errors wrap ErrInvalid.
func ValidateModels(models []ModelInfo) error {
	if len(models) == 0 {
		return fmt.Errorf("no models configured: list at least one served model with its context window and output limit: %w", ErrInvalid)
	}
	seen := make(map[string]bool, len(models))
	for i, m := range models {
		var problem string
		switch {
		case m.ID == "":
			problem = fmt.Sprintf("model %d has no id", i)
		case seen[m.ID]:
			problem = fmt.Sprintf("model %q is listed twice", m.ID)
		case m.ContextWindow <= 0:
			problem = fmt.Sprintf("model %q: context window must be positive, got %d", m.ID, m.ContextWindow)
		case m.MaxOutput <= 0:
			problem = fmt.Sprintf("model %q: output limit must be positive, got %d", m.ID, m.MaxOutput)
		case m.MaxOutput > m.ContextWindow:
			problem = fmt.Sprintf("model %q: output limit %d exceeds the context window %d", m.ID, m.MaxOutput, m.ContextWindow)
		}
		if problem != "" {
			return fmt.Errorf("%s: %w", problem, ErrInvalid)
		}
		seen[m.ID] = true
	}
	return nil
}

// ModelRef names a model as a provider id and that provider's model id,
// written "provider/model" ("anthropic/claude-sonnet-4-5",
// "openai/llama3.1:8b"). The model id may itself contain slashes
// ("bedrock/us.anthropic.claude-sonnet-4-5-v1:0", "openai/meta/llama").
type ModelRef struct {
	// Provider is the provider's id ("anthropic", "openai", "bedrock",
	// "scripted"), as an agent's Providers are keyed.
	Provider string
	// Model is the provider's model id (ModelInfo.ID).
	Model string
}

// String writes the reference as "provider/model".
func (r ModelRef) String() string { return r.Provider + "/" + r.Model }

// ParseModelRef reads "provider/model"; both parts must be non-empty and
// free of spaces and control characters (ErrInvalid).
func ParseModelRef(s string) (ModelRef, error) {
	p, m, ok := strings.Cut(s, "/")
	switch {
	case !ok || p == "" || m == "":
		return ModelRef{}, fmt.Errorf("model %q: want provider/model, such as anthropic/claude-sonnet-4-5: %w", s, ErrInvalid)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return ModelRef{}, fmt.Errorf("model %q: spaces and control characters are not allowed: %w", s, ErrInvalid)
	}
	return ModelRef{Provider: p, Model: m}, nil
}

// Catalog is a fixed list of served models; a provider that embeds it has
// its Models method.
type Catalog []ModelInfo

// Models returns a copy of the list, or ctx's error once it is done.
func (c Catalog) Models(ctx context.Context) ([]ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return slices.Clone([]ModelInfo(c)), nil
}
