package infinity

import (
	"encoding/json"
	"fmt"
	"strings"
)

// InputMessage is everything that can wake a thread: user text, tool results,
// subscription events, child reports, parent messages, timer wake-ups and the
// runtime's own "continue". Its JSON is the reference runtime's input-message
// body ({"content","group_id","metadata","synthetic","display_as",
// "subscription"}) extended with "id", the stable logical message id.
type InputMessage struct {
	// ID is the stable id used for deduplication. InputSender.Send requires
	// it; entry points that accept outside input (the CLI, the HTTP API)
	// assign one when it is missing.
	ID MessageID `json:"id,omitempty"`
	// GroupID is the target thread (the SQS message group); it must be a
	// valid thread id (ValidThreadID, else ErrInvalid).
	GroupID ThreadID `json:"group_id"`
	// Content is the message's body. Without Synthetic, its Type decides
	// what the message does: user text, a tool result, or a tool's OAuth or
	// user-choice request; the last three need Content.ID unless Synthetic
	// is set (ErrInvalid).
	Content Content `json:"content"`
	// Metadata, when set to anything but null, replaces the root thread's
	// State.Metadata (whichever thread of the tree the message is for);
	// its "user_id" becomes ToolEnv.UserID.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Synthetic is set on runtime-made messages, nil on user and tool
	// traffic; when set, its Type, not Content.Type, decides what the
	// message does.
	Synthetic *Synthetic `json:"synthetic,omitempty"`
	// DisplayAs is a rendering for people of a tool result, event or
	// report; it becomes the recorded ToolResult.Display.
	DisplayAs []DisplaySegment `json:"display_as,omitempty"`
	// Budget, on a root's first message, is the budget of the tree it
	// starts; on a SyntheticBudget message to a root, what the budget is
	// raised by.
	Budget *Budget `json:"budget,omitempty"`
	// Subscription marks a tool result that starts a subscription (RAP):
	// its call becomes an active subscription of the thread, unless the
	// thread already has Agent.MaxSubscriptions of them (then the result is
	// kept as a plain one and the tool servers are told to cancel it).
	Subscription bool `json:"subscription,omitempty"`
}

// ContentType tells the variants of Content apart.
type ContentType string

// Content variants, with the reference runtime's type tags.
const (
	// ContentText is user text (Content.Text); it interrupts open calls
	// and wakes the thread.
	ContentText ContentType = "text"
	// ContentToolResult is a tool's result (Content.Parts) for the call
	// Content.ID.
	ContentToolResult ContentType = "toolresult"
	// ContentOAuth is a tool's request that the user authorize it at
	// Content.AuthURL; the call Content.ID stays pending.
	ContentOAuth ContentType = "oauth_required"
	// ContentUserChoice is a tool's question for the user (Content.Prompt
	// and Choices); the call Content.ID stays pending until its result.
	ContentUserChoice ContentType = "user_choice_required"
)

// Content is the body of an input message, a tagged union flattened into one
// struct: Type says which fields are meaningful.
type Content struct {
	// Type is the variant; Validate accepts only the Content constants
	// (ErrInvalid).
	Type ContentType `json:"type"`
	// Text is the text of a ContentText message.
	Text string `json:"text,omitempty"`
	// ID is the tool call id a tool result, OAuth or user-choice request
	// belongs to.
	ID string `json:"id,omitempty"`
	// CallID is the provider's own id for the call, when it has one.
	CallID string `json:"call_id,omitempty"`
	// Parts is the content of a tool result.
	Parts []Part `json:"content,omitempty"`
	// AuthURL is set on ContentOAuth.
	AuthURL string `json:"auth_url,omitempty"`
	// Prompt is the question of a ContentUserChoice.
	Prompt string `json:"prompt,omitempty"`
	// Choices are the answers a ContentUserChoice offers, as labels.
	Choices []string `json:"choices,omitempty"`
	// Default is the index in Choices of the answer taken when the user
	// dismisses a ContentUserChoice.
	Default int `json:"default,omitempty"`
	// ResponseURL is where the answer to a ContentUserChoice is posted
	// (RAP: {"id","selected"}); the tool then sends its result.
	ResponseURL string `json:"response_url,omitempty"`
}

// Part is one piece of tool-result content: text or an image.
type Part struct {
	// Type is "text" or "image"; empty counts as "text".
	Type string `json:"type"`
	// Text is a text part's text.
	Text string `json:"text,omitempty"`
	// Data is an image part's bytes, base64-encoded (standard encoding).
	Data string `json:"data,omitempty"`
	// MediaType is an image part's MIME type ("image/png").
	MediaType string `json:"media_type,omitempty"`
}

// DisplaySegment is a UI-only rendering of a tool result.
type DisplaySegment struct {
	// Type is "text", "diff" or "image" from tools, or a runtime type
	// such as a pending user choice's "user_choice"; clients skip types
	// they do not know.
	Type string `json:"type"`
	// Content is the segment's JSON, passed through untouched; its shape
	// depends on Type.
	Content json.RawMessage `json:"content"`
}

// TextContent returns user text content.
func TextContent(text string) Content { return Content{Type: ContentText, Text: text} }

// ResultContent returns a text tool result for call id.
func ResultContent(id, text string) Content {
	return Content{Type: ContentToolResult, ID: id, Parts: []Part{{Type: "text", Text: text}}}
}

// PartsText joins the non-empty text parts of a tool result with newlines.
func PartsText(parts []Part) string {
	var b strings.Builder
	for _, p := range parts {
		if (p.Type != "text" && p.Type != "") || p.Text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String()
}

// SyntheticKind tells runtime-made messages apart from user and tool traffic.
type SyntheticKind string

// Synthetic kinds. The first five are the reference runtime's; Continue and
// Close are ours: a thread whose slice ran out of budget sends itself
// Continue.
const (
	// SyntheticSubscriptionEvent is an event of the subscription
	// Synthetic.ToolCallID, its body in Content.Parts.
	SyntheticSubscriptionEvent SyntheticKind = "subscription_event"
	// SyntheticThreadReport is a child's report_to_parent (or its close)
	// to its parent, tied to the spawn call Synthetic.ToolCallID.
	SyntheticThreadReport SyntheticKind = "thread_report"
	// SyntheticParentMessage is a parent's message to a child, tied to the
	// child's spawn call Synthetic.ToolCallID.
	SyntheticParentMessage SyntheticKind = "parent_message"
	// SyntheticCompaction asks the thread to compact its history now.
	SyntheticCompaction SyntheticKind = "compaction"
	// SyntheticCompactionComplete brings a compaction thread's summary
	// (Content.Text) to the thread it summarised.
	SyntheticCompactionComplete SyntheticKind = "compaction_complete"
	// SyntheticContinue resumes a thread whose slice ran out of budget.
	SyntheticContinue SyntheticKind = "continue"
	// SyntheticClose asks the thread to close itself and its subtree (an
	// operator's "infinity close"); the root may be closed this way.
	SyntheticClose SyntheticKind = "close"
	// SyntheticBudget raises a root's budget by the message's Budget, or
	// (sent by the root to a thread of its tree, without a Budget) tells a
	// thread the budget was raised: a thread stopped by the budget goes
	// on.
	SyntheticBudget SyntheticKind = "budget"
)

// Synthetic describes a runtime-made message. On the wire it is either the
// reference runtime's legacy bare string (a subscription event for that tool
// call id) or an object with an internal "type" tag.
type Synthetic struct {
	// Type is the kind of message; decoding rejects types other than the
	// Synthetic constants (ErrInvalid).
	Type SyntheticKind `json:"type"`
	// ToolCallID is the call the message belongs to: the subscription of
	// an event, the spawn call of a report or parent message.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// ChildThreadID is the sending child of a thread_report, or the
	// compaction thread of a compaction_complete.
	ChildThreadID ThreadID `json:"child_thread_id,omitempty"`
	// Associative asks that a subscription event be handled inline, in the
	// subscribing thread's own history; otherwise a new event thread
	// (ThreadEvent) handles it and reports back.
	Associative bool `json:"associative,omitempty"`
	// Final marks a subscription's last event: the subscription ends.
	Final bool `json:"final,omitempty"`
	// Covers is set on compaction_complete: how many of the receiving
	// thread's own items the summary (the message's text) replaces.
	Covers int `json:"covers,omitempty"`
}

// UnmarshalJSON accepts both the legacy string form and the object form.
func (s *Synthetic) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var id string
		if err := json.Unmarshal(b, &id); err != nil {
			return err
		}
		*s = Synthetic{Type: SyntheticSubscriptionEvent, ToolCallID: id}
		return nil
	}
	type plain Synthetic
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	switch p.Type {
	case SyntheticSubscriptionEvent, SyntheticThreadReport, SyntheticParentMessage,
		SyntheticCompaction, SyntheticCompactionComplete, SyntheticContinue, SyntheticClose, SyntheticBudget:
	default:
		return fmt.Errorf("synthetic type %q: %w", p.Type, ErrInvalid)
	}
	*s = Synthetic(p)
	return nil
}

// DecodeInputMessage parses and validates an input message from outside
// (an API body, an SQS record).
func DecodeInputMessage(b []byte) (InputMessage, error) {
	var m InputMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return InputMessage{}, fmt.Errorf("decode input message: %w: %v", ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return InputMessage{}, err
	}
	return m, nil
}

// Validate checks the fields the engine relies on.
func (m InputMessage) Validate() error {
	if !ValidThreadID(m.GroupID) {
		return fmt.Errorf("input message: group_id %q: %w", m.GroupID, ErrInvalid)
	}
	if m.Budget != nil {
		if err := m.Budget.Validate(); err != nil {
			return fmt.Errorf("input message: %w", err)
		}
	}
	switch m.Content.Type {
	case ContentText:
	case ContentToolResult, ContentOAuth, ContentUserChoice:
		if m.Content.ID == "" && m.Synthetic == nil {
			return fmt.Errorf("input message: %s without a tool call id: %w", m.Content.Type, ErrInvalid)
		}
	default:
		return fmt.Errorf("input message: content type %q: %w", m.Content.Type, ErrInvalid)
	}
	return nil
}
