package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/turns"
)

// ConversationStart is the text of the user message put before a history
// that starts with an assistant turn (or is empty): Bedrock requires the
// first message to be a user message.
const ConversationStart = "(conversation start)"

// emptyTurn stands in for content with nothing to say: Bedrock rejects
// empty content and blank text blocks.
const emptyTurn = "(empty)"

// input converts req into the ConverseStream input.
func (p *Provider) input(req *infinity.CompletionRequest) (*bedrockruntime.ConverseStreamInput, error) {
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
		maxTokens = limit // 0 for a model not configured: Bedrock's default
	}
	in := &bedrockruntime.ConverseStreamInput{
		ModelId:  aws.String(model),
		Messages: messages(req.Items),
	}
	if maxTokens > 0 {
		in.InferenceConfig = &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(min(maxTokens, 1<<31-1)))}
	}
	if !blank(req.System) {
		in.System = []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: req.System}}
	}
	if len(req.Tools) > 0 {
		tc := &types.ToolConfiguration{Tools: make([]types.Tool, 0, len(req.Tools))}
		for _, spec := range req.Tools {
			t, err := tool(spec)
			if err != nil {
				return nil, err
			}
			tc.Tools = append(tc.Tools, t)
		}
		in.ToolConfig = tc
	}
	return in, nil
}

// messages groups items into alternating user and assistant messages.
func messages(items []infinity.Item) []types.Message {
	ts := turns.Group(items)
	out := make([]types.Message, 0, len(ts)+1)
	if len(ts) == 0 || ts[0].Role != turns.User {
		out = append(out, types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{textBlock(ConversationStart)}})
	}
	for i := range ts {
		t := &ts[i]
		if t.Role == turns.User {
			out = append(out, types.Message{Role: types.ConversationRoleUser, Content: userBlocks(t)})
		} else {
			out = append(out, types.Message{Role: types.ConversationRoleAssistant, Content: assistantBlocks(t)})
		}
	}
	return out
}

// userBlocks returns a user turn's content: one toolResult block per
// result, then the user text.
func userBlocks(t *turns.Turn) []types.ContentBlock {
	blocks := make([]types.ContentBlock, 0, len(t.Results)+1)
	for i := range t.Results {
		blocks = append(blocks, &types.ContentBlockMemberToolResult{Value: toolResult(&t.Results[i])})
	}
	if !blank(t.Text) || len(blocks) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	return blocks
}

// assistantBlocks returns an assistant turn's content: its text, then one
// toolUse block per call.
func assistantBlocks(t *turns.Turn) []types.ContentBlock {
	blocks := make([]types.ContentBlock, 0, len(t.Calls)+1)
	if !blank(t.Text) || len(t.Calls) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	for _, c := range t.Calls {
		blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
			ToolUseId: aws.String(c.ID),
			Name:      aws.String(c.Name),
			Input:     document.NewLazyDocument(jsonValue(turns.Args(c))),
		}})
	}
	return blocks
}

// toolResult converts a result: its text and image parts become the
// block's content ("(empty)" when there are none: Bedrock requires
// content and rejects blank text).
func toolResult(r *infinity.ToolResult) types.ToolResultBlock {
	b := types.ToolResultBlock{ToolUseId: aws.String(r.CallID)}
	if r.IsError {
		b.Status = types.ToolResultStatusError
	}
	for _, part := range r.Parts {
		switch {
		case (part.Type == "text" || part.Type == "") && !blank(part.Text):
			b.Content = append(b.Content, &types.ToolResultContentBlockMemberText{Value: part.Text})
		case part.Type == "image" && part.Data != "":
			format, ok := imageFormat(part.MediaType)
			data, err := base64.StdEncoding.DecodeString(part.Data)
			if !ok || err != nil {
				continue
			}
			b.Content = append(b.Content, &types.ToolResultContentBlockMemberImage{Value: types.ImageBlock{
				Format: format, Source: &types.ImageSourceMemberBytes{Value: data},
			}})
		}
	}
	if len(b.Content) == 0 {
		b.Content = []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: emptyTurn}}
	}
	return b
}

func imageFormat(mediaType string) (types.ImageFormat, bool) {
	switch strings.ToLower(mediaType) {
	case "image/png":
		return types.ImageFormatPng, true
	case "image/jpeg", "image/jpg":
		return types.ImageFormatJpeg, true
	case "image/gif":
		return types.ImageFormatGif, true
	case "image/webp":
		return types.ImageFormatWebp, true
	}
	return "", false
}

func textBlock(s string) types.ContentBlock {
	if blank(s) {
		s = emptyTurn
	}
	return &types.ContentBlockMemberText{Value: s}
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// tool converts a spec; its JSON schema (an object schema, "{"type":
// "object"}" when empty) becomes the inputSchema's json document.
func tool(spec infinity.ToolSpec) (types.Tool, error) {
	if spec.Name == "" {
		return nil, invalidf("a tool has no name")
	}
	ts := types.ToolSpecification{Name: aws.String(spec.Name)}
	if spec.Description != "" {
		ts.Description = aws.String(spec.Description)
	}
	schema := map[string]any{"type": "object", "properties": map[string]any{}}
	if len(spec.Schema) > 0 && string(spec.Schema) != "null" {
		m, ok := jsonValue(spec.Schema).(map[string]any)
		if !ok {
			return nil, invalidf("tool %q: the input schema is not a JSON object", spec.Name)
		}
		if t, set := m["type"]; set && t != "object" {
			return nil, invalidf("tool %q: the input schema's type must be \"object\", got %v", spec.Name, t)
		}
		m["type"] = "object"
		schema = m
	}
	ts.InputSchema = &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)}
	return &types.ToolMemberToolSpec{Value: ts}, nil
}

// jsonValue decodes raw for a smithy document, numbers kept exact as
// document.Number; nil when raw is not JSON.
func jsonValue(raw json.RawMessage) any {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return numbers(v)
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}
