package scripted

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
)

// Defaults applied by New to a Script's zero fields.
const (
	DefaultModel         = "scripted"
	DefaultContextWindow = 200000
	// MaxOutput is the ModelInfo.MaxOutput the provider reports.
	MaxOutput = 8192
)

// Script is the whole behaviour of a scripted model: an ordered list of
// rules, the first matching one answering each request.
type Script struct {
	// Model is the model id served; DefaultModel when empty.
	Model string `json:"model,omitempty"`
	// ContextWindow is reported by Models; DefaultContextWindow when zero.
	ContextWindow int `json:"context_window,omitempty"`
	// Rules are tried in order; the first whose When (and If) holds and
	// whose Times budget is not used up answers.
	Rules []Rule `json:"rules"`
}

// Rule is one scripted reply and the condition it answers.
type Rule struct {
	// Name labels the rule in errors; optional.
	Name string `json:"name,omitempty"`
	When Match  `json:"when"`
	// Reply is what the model answers when the rule is chosen.
	Reply Reply `json:"reply"`
	// Times > 0 lets the rule be chosen at most Times times per Provider;
	// after that it is skipped. Zero means unlimited.
	Times int `json:"times,omitempty"`
	// If is an optional extra predicate, for scripts built in Go.
	If func(infinity.CompletionRequest) bool `json:"-"`
}

// Match is a rule's condition. Every set field must hold; an empty Match
// always holds. Depth is len(req.Stack)-1, so a root thread has depth 0.
type Match struct {
	// Depth holds when the depth equals *Depth.
	Depth *int `json:"depth,omitempty"`
	// MinDepth holds when the depth is at least *MinDepth.
	MinDepth *int `json:"min_depth,omitempty"`
	// Last holds when the last item's kind is Last: "user", "assistant",
	// "tool_call" or "tool_result" (infinity.ItemKind.String()).
	Last string `json:"last,omitempty"`
	// LastTool holds when the last item is a tool result answering a call
	// (found by call id among the request's items) named LastTool.
	LastTool string `json:"last_tool,omitempty"`
	// LastText holds when the last item's text contains LastText: the
	// item's Text, or the result's text for a tool result.
	LastText string `json:"last_text,omitempty"`
	// Contains holds when some user or assistant text, or some tool result
	// text, contains Contains. Tool call arguments are not searched.
	Contains string `json:"contains,omitempty"`
	// Count holds when enough calls of a tool were answered.
	Count *Count `json:"count,omitempty"`
	// System holds when the request's system prompt contains System.
	System string `json:"system,omitempty"`
}

// Count holds when at least Min calls named Tool in the request's items are
// answered by a tool result. A call answered twice (a pending result, then
// the real one) counts once.
type Count struct {
	Tool string `json:"tool"`
	Min  int    `json:"min"`
}

// Reply is a scripted model response.
type Reply struct {
	// Text is streamed as word-sized text deltas. It may use the templates
	// $THREAD, $PARENT, $ROOT, $DEPTH and $STACK (see the package doc).
	Text string `json:"text,omitempty"`
	// Calls are tool calls, streamed after the text in order; several are
	// parallel calls in one response.
	Calls []CallSpec `json:"calls,omitempty"`
	// Error makes the response fail with this message: before any event,
	// or after the text deltas when MidStream is set. Calls are not allowed
	// with Error.
	Error string `json:"error,omitempty"`
	// Retryable makes the error wrap infinity.ErrRetryable.
	Retryable bool `json:"retryable,omitempty"`
	// MidStream streams Text before failing with Error.
	MidStream bool `json:"mid_stream,omitempty"`
	// Delay is waited before the first event; cancelling the request's
	// context cuts it short. JSON spells it as a Go duration: "150ms".
	Delay Duration `json:"delay,omitempty"`
}

// CallSpec is one scripted tool call.
type CallSpec struct {
	Name string `json:"name"`
	// Args is a JSON object, templated per request (see the package doc);
	// nil means {}.
	Args json.RawMessage `json:"args,omitempty"`
}

// Duration is a time.Duration whose JSON form is a Go duration string such
// as "150ms" or "2s".
type Duration time.Duration

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as \"150ms\": %w", b, infinity.ErrInvalid)
	}
	*d = Duration(v)
	return nil
}

var kindNames = []string{
	infinity.KindUser.String(), infinity.KindAssistant.String(),
	infinity.KindToolCall.String(), infinity.KindToolResult.String(),
}

// Validate checks the script: at least one rule, every call named, every
// args value a JSON object, no negative depth, count, budget, delay or
// context window, a known item kind in Last, and Error-only fields used
// with Error. Errors name the rule and the field and wrap
// infinity.ErrInvalid.
func (s Script) Validate() error {
	if s.ContextWindow < 0 {
		return invalidf("context_window: %d is negative", s.ContextWindow)
	}
	if len(s.Rules) == 0 {
		return invalidf("rules: a script needs at least one rule")
	}
	for i, r := range s.Rules {
		if err := r.validate(); err != nil {
			return invalidf("%s: %s", ruleLabel(i, r.Name), err)
		}
	}
	return nil
}

func ruleLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("rules[%d]", i)
	}
	return fmt.Sprintf("rules[%d] (%q)", i, name)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("scripted: %s: %w", fmt.Sprintf(format, args...), infinity.ErrInvalid)
}

// validate returns a plain description of the first problem.
func (r Rule) validate() error {
	m := r.When
	switch {
	case r.Times < 0:
		return fmt.Errorf("times: %d is negative", r.Times)
	case m.Depth != nil && *m.Depth < 0:
		return fmt.Errorf("when.depth: %d is negative", *m.Depth)
	case m.MinDepth != nil && *m.MinDepth < 0:
		return fmt.Errorf("when.min_depth: %d is negative", *m.MinDepth)
	case m.Count != nil && m.Count.Tool == "":
		return fmt.Errorf("when.count.tool: empty")
	case m.Count != nil && m.Count.Min < 0:
		return fmt.Errorf("when.count.min: %d is negative", m.Count.Min)
	}
	if m.Last != "" && !slices.Contains(kindNames, m.Last) {
		return fmt.Errorf("when.last: %q is not one of %s", m.Last, strings.Join(kindNames, ", "))
	}
	p := r.Reply
	switch {
	case p.Delay < 0:
		return fmt.Errorf("reply.delay: %s is negative", p.Delay)
	case p.Error == "" && p.Retryable:
		return fmt.Errorf("reply.retryable: set without reply.error")
	case p.Error == "" && p.MidStream:
		return fmt.Errorf("reply.mid_stream: set without reply.error")
	case p.Error != "" && len(p.Calls) > 0:
		return fmt.Errorf("reply.calls: not allowed with reply.error")
	}
	for j, c := range p.Calls {
		if c.Name == "" {
			return fmt.Errorf("reply.calls[%d].name: empty", j)
		}
		if _, err := parseArgs(c.Args); err != nil {
			return fmt.Errorf("reply.calls[%d].args: %v", j, err)
		}
	}
	return nil
}
