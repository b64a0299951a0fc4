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
	// GroupID is the target thread (the SQS message group).
	GroupID      ThreadID         `json:"group_id"`
	Content      Content          `json:"content"`
	Metadata     json.RawMessage  `json:"metadata,omitempty"`
	Synthetic    *Synthetic       `json:"synthetic,omitempty"`
	DisplayAs    []DisplaySegment `json:"display_as,omitempty"`
	Subscription bool             `json:"subscription,omitempty"`
}

// ContentType tells the variants of Content apart.
type ContentType string

// Content variants, with the reference runtime's type tags.
const (
	ContentText       ContentType = "text"
	ContentToolResult ContentType = "toolresult"
	ContentOAuth      ContentType = "oauth_required"
	ContentUserChoice ContentType = "user_choice_required"
)

// Content is the body of an input message, a tagged union flattened into one
// struct: Type says which fields are meaningful.
type Content struct {
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
	// Prompt, Choices, Default and ResponseURL are set on ContentUserChoice.
	Prompt      string   `json:"prompt,omitempty"`
	Choices     []string `json:"choices,omitempty"`
	Default     int      `json:"default,omitempty"`
	ResponseURL string   `json:"response_url,omitempty"`
}

// Part is one piece of tool-result content: text or an image.
type Part struct {
	Type      string `json:"type"` // "text" or "image"
	Text      string `json:"text,omitempty"`
	Data      string `json:"data,omitempty"` // base64 image data
	MediaType string `json:"media_type,omitempty"`
}

// DisplaySegment is a UI-only rendering of a tool result.
type DisplaySegment struct {
	Type    string          `json:"type"` // "text", "diff" or "image"
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
	SyntheticSubscriptionEvent  SyntheticKind = "subscription_event"
	SyntheticThreadReport       SyntheticKind = "thread_report"
	SyntheticParentMessage      SyntheticKind = "parent_message"
	SyntheticCompaction         SyntheticKind = "compaction"
	SyntheticCompactionComplete SyntheticKind = "compaction_complete"
	SyntheticContinue           SyntheticKind = "continue"
	// SyntheticClose asks the thread to close itself and its subtree (an
	// operator's "infinity close"); the root may be closed this way.
	SyntheticClose SyntheticKind = "close"
)

// Synthetic describes a runtime-made message. On the wire it is either the
// reference runtime's legacy bare string (a subscription event for that tool
// call id) or an object with an internal "type" tag.
type Synthetic struct {
	Type          SyntheticKind `json:"type"`
	ToolCallID    string        `json:"tool_call_id,omitempty"`
	ChildThreadID ThreadID      `json:"child_thread_id,omitempty"`
	Associative   bool          `json:"associative,omitempty"`
	Final         bool          `json:"final,omitempty"`
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
		SyntheticCompaction, SyntheticCompactionComplete, SyntheticContinue, SyntheticClose:
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
