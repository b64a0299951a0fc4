package infinity

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// ModelInfo describes one model a provider serves.
type ModelInfo struct {
	ID            string `json:"id"`
	ContextWindow int    `json:"context_window"`
	MaxOutput     int    `json:"max_output"`
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
	Model     string
	System    string
	Items     []Item
	Tools     []ToolSpec
	MaxTokens int
	// Thread and Stack (root first, the thread last) identify the caller;
	// network providers ignore them, the scripted provider templates with them.
	Thread ThreadID
	Stack  []ThreadID
}

// StreamEventKind tells stream events apart.
type StreamEventKind uint8

// Stream event kinds.
const (
	StreamText     StreamEventKind = iota + 1 // a text delta
	StreamToolCall                            // a whole tool call
	StreamDone                                // the end of the response
)

// StopReason says why a response ended.
type StopReason string

// Stop reasons.
const (
	StopEnd       StopReason = "end_turn"
	StopToolUse   StopReason = "tool_use"
	StopMaxTokens StopReason = "max_tokens"
)

// StreamEvent is one event of a completion stream.
type StreamEvent struct {
	Kind  StreamEventKind
	Text  string
	Call  *ToolCall
	Usage Usage
	Stop  StopReason
}

// ToolSpec describes a tool to the model and to the engine.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"input_schema"`
	// Async tools answer later, through an input message; sync tools answer
	// inline and the slice loops back into another completion.
	Async bool `json:"async,omitempty"`
	// Passive async tools (sleeps) are cut short by any new input, and their
	// late result is ignored.
	Passive bool `json:"passive,omitempty"`
}

// Tool is a tool the model can call, other than the engine's built-ins.
type Tool interface {
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
	Thread ThreadID
	// Stack is the thread's lineage, root first, the thread last.
	Stack  []ThreadID
	UserID string
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
	Provider string
	Model    string
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
