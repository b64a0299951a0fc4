package rap

import "encoding/json"

// Callback types, the values of a callback's "type" field (RAP §5).
const (
	TypeToolResult        = "tool_result"
	TypeSubscriptionEvent = "subscription_event"
	TypeOAuth             = "oauth"
	TypeUserChoice        = "user_choice"
	TypeViewUpdate        = "view_update"
)

// Invocation is the body POSTed to a toolset's endpoint (RAP §4.1).
type Invocation struct {
	Operation   string          `json:"operation"`
	Arguments   json.RawMessage `json:"arguments"`
	ID          string          `json:"id"`
	CallID      *string         `json:"call_id"`
	CallbackURL string          `json:"callback_url"`
	GroupID     string          `json:"group_id"`
	// ThreadAncestors runs from the root down to the parent; omitted for a
	// root thread.
	ThreadAncestors []string `json:"thread_ancestors,omitempty"`
	UserID          *string  `json:"user_id,omitempty"`
}

// ToolResult is the terminal answer to a call (RAP §5.1).
type ToolResult struct {
	GroupID      string        `json:"group_id"`
	ID           string        `json:"id"`
	CallID       *string       `json:"call_id,omitempty"`
	Text         *string       `json:"text,omitempty"`
	Content      []ContentItem `json:"content,omitempty"`
	DisplayAs    []Segment     `json:"display_as,omitempty"`
	Subscription bool          `json:"subscription,omitempty"`
}

// ContentItem is one structured piece of a tool result: text or an image.
type ContentItem struct {
	Type      string `json:"type"` // "text" or "image"
	Text      string `json:"text,omitempty"`
	Data      string `json:"data,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
}

// Segment is one display segment of a tool result, for human UIs only.
type Segment struct {
	Type    string          `json:"type"`    // "text", "diff", "image" or unknown
	Content json.RawMessage `json:"content"` // passed through untouched
}

// SubscriptionEvent is one event of an active subscription (RAP §5.2).
type SubscriptionEvent struct {
	GroupID     string `json:"group_id"`
	ToolCallID  string `json:"tool_call_id"`
	Text        string `json:"text"`
	Associative bool   `json:"associative,omitempty"`
	Final       bool   `json:"final,omitempty"`
}

// OAuth asks the user to authorize before the call can finish (RAP §5.3).
type OAuth struct {
	GroupID string  `json:"group_id"`
	ID      string  `json:"id"`
	CallID  *string `json:"call_id,omitempty"`
	AuthURL string  `json:"auth_url"`
}

// UserChoice asks the user to pick one of Choices (RAP §5.4).
type UserChoice struct {
	GroupID     string   `json:"group_id"`
	ID          string   `json:"id"`
	CallID      *string  `json:"call_id,omitempty"`
	Prompt      string   `json:"prompt"`
	Choices     []string `json:"choices"`
	Default     int      `json:"default"`
	ResponseURL string   `json:"response_url"`
}

// ViewUpdate replaces the thread's view of kind ViewType (RAP §5.5).
type ViewUpdate struct {
	GroupID  string          `json:"group_id"`
	ViewType string          `json:"view_type"`
	Content  json.RawMessage `json:"content"` // never interpreted
}

// UserChoiceAnswer is POSTed to a user choice's response_url.
type UserChoiceAnswer struct {
	ID       string `json:"id"`
	Selected int    `json:"selected"`
}

// CloseThread is the body of POST {base}/close_thread (RAP §6).
type CloseThread struct {
	ThreadID string `json:"thread_id"`
}

// CancelToolCall is the body of POST {base}/cancel_tool_call (RAP §7).
type CancelToolCall struct {
	ThreadID   string `json:"thread_id"`
	ToolCallID string `json:"tool_call_id"`
}

// MigrateRequest is the body of POST {base}/migrate (RAP §8).
type MigrateRequest struct {
	SessionID      string `json:"session_id"`
	DestinationURL string `json:"destination_url"`
}

// Manifest is a toolset, served at {base}/.well-known/rap-toolset (the RAP specification
// §3.2).
type Manifest struct {
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	Endpoint       string    `json:"endpoint"`
	Tools          []ToolDef `json:"tools"`
	NeedsMigration bool      `json:"needsMigration,omitempty"`
}

// ToolDef is one tool of a manifest (RAP §3.3). Description, Annotations
// and DisplayScript come from the tool author and are untrusted: they are
// shown to the model or the UI, never executed or acted on here.
type ToolDef struct {
	Name          string          `json:"name"`
	Description   string          `json:"description"`
	InputSchema   json.RawMessage `json:"inputSchema"`
	Annotations   map[string]any  `json:"annotations,omitempty"`
	DisplayScript string          `json:"displayScript,omitempty"`
}
