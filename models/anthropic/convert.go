package anthropic

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/turns"
)

// ConversationStart is the text of the user message put before a history
// that starts with an assistant turn (or is empty): the API requires the
// first message to be a user message.
const ConversationStart = "(conversation start)"

// emptyTurn stands in for a turn with nothing to say: the API rejects
// empty content and blank text blocks.
const emptyTurn = "(empty)"

// params converts req into the SDK's request parameters.
func (p *Provider) params(req *infinity.CompletionRequest) (anthropic.MessageNewParams, error) {
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
	params := anthropic.MessageNewParams{
		Model:     model,
		MaxTokens: int64(maxTokens),
		Messages:  messages(req.Items),
	}
	if req.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	if len(req.Tools) > 0 {
		params.Tools = make([]anthropic.ToolUnionParam, 0, len(req.Tools))
		for _, spec := range req.Tools {
			t, err := tool(spec)
			if err != nil {
				return params, err
			}
			params.Tools = append(params.Tools, anthropic.ToolUnionParam{OfTool: t})
		}
	}
	return params, nil
}

// messages groups items into alternating user and assistant messages.
func messages(items []infinity.Item) []anthropic.MessageParam {
	ts := turns.Group(items)
	out := make([]anthropic.MessageParam, 0, len(ts)+1)
	if len(ts) == 0 || ts[0].Role != turns.User {
		out = append(out, anthropic.NewUserMessage(anthropic.NewTextBlock(ConversationStart)))
	}
	for i := range ts {
		t := &ts[i]
		if t.Role == turns.User {
			out = append(out, anthropic.NewUserMessage(userBlocks(t)...))
		} else {
			out = append(out, anthropic.NewAssistantMessage(assistantBlocks(t)...))
		}
	}
	return out
}

// userBlocks returns a user turn's content: one tool_result block per
// result, then the user text.
func userBlocks(t *turns.Turn) []anthropic.ContentBlockParamUnion {
	blocks := make([]anthropic.ContentBlockParamUnion, 0, len(t.Results)+1)
	for i := range t.Results {
		blocks = append(blocks, anthropic.ContentBlockParamUnion{OfToolResult: toolResult(&t.Results[i])})
	}
	if !blank(t.Text) || len(blocks) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	return blocks
}

// assistantBlocks returns an assistant turn's content: its text, then one
// tool_use block per call.
func assistantBlocks(t *turns.Turn) []anthropic.ContentBlockParamUnion {
	blocks := make([]anthropic.ContentBlockParamUnion, 0, len(t.Calls)+1)
	if !blank(t.Text) || len(t.Calls) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	for _, c := range t.Calls {
		blocks = append(blocks, anthropic.NewToolUseBlock(c.ID, turns.Args(c), c.Name))
	}
	return blocks
}

// toolResult converts a result: its text and image parts become the
// block's content (none when there are none: blank text is rejected).
func toolResult(r *infinity.ToolResult) *anthropic.ToolResultBlockParam {
	b := &anthropic.ToolResultBlockParam{ToolUseID: r.CallID}
	if r.IsError {
		b.IsError = anthropic.Bool(true)
	}
	for _, part := range r.Parts {
		switch {
		case (part.Type == "text" || part.Type == "") && !blank(part.Text):
			b.Content = append(b.Content, anthropic.ToolResultBlockParamContentUnion{OfText: &anthropic.TextBlockParam{Text: part.Text}})
		case part.Type == "image" && part.Data != "":
			b.Content = append(b.Content, anthropic.ToolResultBlockParamContentUnion{OfImage: &anthropic.ImageBlockParam{
				Source: anthropic.ImageBlockParamSourceUnion{OfBase64: &anthropic.Base64ImageSourceParam{
					Data: part.Data, MediaType: anthropic.Base64ImageSourceMediaType(part.MediaType),
				}},
			}})
		}
	}
	return b
}

func textBlock(s string) anthropic.ContentBlockParamUnion {
	if blank(s) {
		s = emptyTurn
	}
	return anthropic.NewTextBlock(s)
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// tool converts a spec; its JSON schema's "properties" and "required" (and
// any other keyword but "type") go into input_schema.
func tool(spec infinity.ToolSpec) (*anthropic.ToolParam, error) {
	t := &anthropic.ToolParam{Name: spec.Name}
	if spec.Name == "" {
		return nil, invalidf("a tool has no name")
	}
	if spec.Description != "" {
		t.Description = anthropic.String(spec.Description)
	}
	if len(spec.Schema) == 0 || string(spec.Schema) == "null" {
		t.InputSchema.Properties = map[string]any{}
		return t, nil
	}
	var schema map[string]json.RawMessage
	if err := json.Unmarshal(spec.Schema, &schema); err != nil || schema == nil {
		return nil, invalidf("tool %q: the input schema is not a JSON object", spec.Name)
	}
	for k, v := range schema {
		switch k {
		case "type":
			if string(v) != `"object"` {
				return nil, invalidf("tool %q: the input schema's type must be \"object\", got %s", spec.Name, v)
			}
		case "properties":
			t.InputSchema.Properties = v
		case "required":
			if err := json.Unmarshal(v, &t.InputSchema.Required); err != nil {
				return nil, invalidf("tool %q: the input schema's \"required\" is not a list of names: %v", spec.Name, fmt.Sprint(err))
			}
		default:
			if t.InputSchema.ExtraFields == nil {
				t.InputSchema.ExtraFields = make(map[string]any)
			}
			t.InputSchema.ExtraFields[k] = v
		}
	}
	if t.InputSchema.Properties == nil {
		t.InputSchema.Properties = map[string]any{}
	}
	return t, nil
}
