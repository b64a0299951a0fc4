package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
	"github.com/infinity-runtime/infinity/models/turns"
)

// ConversationStart is the text of the user message put before a history
// that starts with an assistant turn (or is empty): the API requires the
// first message to be a user message.
const ConversationStart = "(conversation start)"

// emptyTurn stands in for a turn with nothing to say: the API rejects
// empty content and blank text blocks.
const emptyTurn = "(empty)"

// request is the body of POST /v1/messages, without its tools (added by
// toolCache.AddTo).
type request struct {
	Model     string    `json:"model"`
	MaxTokens int       `json:"max_tokens"`
	System    []block   `json:"system,omitempty"`
	Messages  []message `json:"messages"`
	Stream    bool      `json:"stream"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is a content block: text, tool_use, tool_result or image.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
	Content   []block         `json:"content,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
}

// body encodes req as the request's body.
func (p *Provider) body(req *infinity.CompletionRequest) ([]byte, error) {
	model := req.Model
	limit := 0
	for _, m := range p.models {
		if model == "" || m.ID == model {
			model, limit = m.ID, m.MaxOutput
			break
		}
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
		if limit > 0 && limit < maxTokens {
			maxTokens = limit
		}
	}
	r := request{Model: model, MaxTokens: maxTokens, Messages: messages(req.Items), Stream: true}
	if req.System != "" {
		r.System = []block{{Type: "text", Text: req.System}}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, invalidf("the request does not encode: %v", err)
	}
	if len(req.Tools) > 0 {
		return toolCache.AddTo(b, "tools", req.Tools)
	}
	return b, nil
}

// messages groups items into alternating user and assistant messages.
func messages(items []infinity.Item) []message {
	ts := turns.Group(items)
	out := make([]message, 0, len(ts)+1)
	if len(ts) == 0 || ts[0].Role != turns.User {
		out = append(out, message{Role: "user", Content: []block{{Type: "text", Text: ConversationStart}}})
	}
	for i := range ts {
		t := &ts[i]
		if t.Role == turns.User {
			out = append(out, message{Role: "user", Content: userBlocks(t)})
		} else {
			out = append(out, message{Role: "assistant", Content: assistantBlocks(t)})
		}
	}
	return out
}

// userBlocks returns a user turn's content: one tool_result block per
// result, then the user text.
func userBlocks(t *turns.Turn) []block {
	blocks := make([]block, 0, len(t.Results)+1)
	for i := range t.Results {
		blocks = append(blocks, toolResult(&t.Results[i]))
	}
	if !blank(t.Text) || len(blocks) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	return blocks
}

// assistantBlocks returns an assistant turn's content: its text, then one
// tool_use block per call.
func assistantBlocks(t *turns.Turn) []block {
	blocks := make([]block, 0, len(t.Calls)+1)
	if !blank(t.Text) || len(t.Calls) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	for _, c := range t.Calls {
		blocks = append(blocks, block{Type: "tool_use", ID: c.ID, Name: c.Name, Input: turns.Args(c)})
	}
	return blocks
}

// toolResult converts a result: its text and image parts become the
// block's content (none when there are none: blank text is rejected).
func toolResult(r *infinity.ToolResult) block {
	b := block{Type: "tool_result", ToolUseID: r.CallID, IsError: r.IsError}
	for _, part := range r.Parts {
		switch {
		case (part.Type == "text" || part.Type == "") && !blank(part.Text):
			b.Content = append(b.Content, block{Type: "text", Text: part.Text})
		case part.Type == "image" && part.Data != "":
			b.Content = append(b.Content, block{Type: "image", Source: &imageSource{Type: "base64", MediaType: part.MediaType, Data: part.Data}})
		}
	}
	return b
}

func textBlock(s string) block {
	if blank(s) {
		s = emptyTurn
	}
	return block{Type: "text", Text: s}
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// toolCache keeps each tool's "tools" element, by content.
var toolCache = httpapi.NewTools(1024, encodeTool)

// encodeTool converts a spec: its JSON schema's "properties" and
// "required" (and any other keyword) go into input_schema, whose type is
// "object".
func encodeTool(spec *infinity.ToolSpec) ([]byte, error) {
	if spec.Name == "" {
		return nil, invalidf("a tool has no name")
	}
	schema := map[string]json.RawMessage{}
	if raw := bytes.TrimSpace(spec.Schema); len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &schema); err != nil || schema == nil {
			return nil, invalidf("tool %q: the input schema is not a JSON object", spec.Name)
		}
	}
	if t, ok := schema["type"]; ok && string(bytes.TrimSpace(t)) != `"object"` {
		return nil, invalidf("tool %q: the input schema's type must be \"object\", got %s", spec.Name, t)
	}
	schema["type"] = json.RawMessage(`"object"`)
	if r, ok := schema["required"]; ok {
		var names []string
		if err := json.Unmarshal(r, &names); err != nil {
			return nil, invalidf("tool %q: the input schema's \"required\" is not a list of names: %v", spec.Name, fmt.Sprint(err))
		}
		if names == nil { // null (a Go MCP server's nil slice): none, and the API rejects null
			delete(schema, "required")
		}
	}
	if p, ok := schema["properties"]; !ok || string(bytes.TrimSpace(p)) == "null" {
		schema["properties"] = json.RawMessage(`{}`)
	}
	t := struct {
		Name        string                     `json:"name"`
		Description string                     `json:"description,omitempty"`
		InputSchema map[string]json.RawMessage `json:"input_schema"`
	}{spec.Name, spec.Description, schema}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, invalidf("tool %q does not encode: %v", spec.Name, err)
	}
	return b, nil
}
