package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
	"github.com/infinity-runtime/infinity/models/turns"
)

// ConversationStart is the text of the user message put before a history
// that starts with an assistant turn (or is empty): Bedrock requires the
// first message to be a user message.
const ConversationStart = "(conversation start)"

// emptyTurn stands in for content with nothing to say: Bedrock rejects
// empty content and blank text blocks.
const emptyTurn = "(empty)"

// converseRequest is the JSON body of a ConverseStream request (the model
// ID is in the path).
type converseRequest struct {
	Messages        []message        `json:"messages"`
	System          []contentBlock   `json:"system,omitempty"`
	InferenceConfig *inferenceConfig `json:"inferenceConfig,omitempty"`
	// toolConfig ({"tools": [tool, …]}) is spliced in after (toolCache).
}

type message struct {
	Role    string         `json:"role"`
	Content []contentBlock `json:"content"`
}

// contentBlock is a union: exactly one field is set.
type contentBlock struct {
	Text       string      `json:"text,omitempty"`
	Image      *imageBlock `json:"image,omitempty"`
	ToolUse    *toolUse    `json:"toolUse,omitempty"`
	ToolResult *toolResult `json:"toolResult,omitempty"`
}

type imageBlock struct {
	Format string `json:"format"`
	Source struct {
		Bytes []byte `json:"bytes"` // base64 in JSON
	} `json:"source"`
}

type toolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type toolResult struct {
	ToolUseID string         `json:"toolUseId"`
	Content   []contentBlock `json:"content"`
	Status    string         `json:"status,omitempty"`
}

type inferenceConfig struct {
	MaxTokens int32 `json:"maxTokens,omitempty"`
}

type tool struct {
	ToolSpec toolSpec `json:"toolSpec"`
}

type toolSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	InputSchema struct {
		JSON map[string]any `json:"json"`
	} `json:"inputSchema"`
}

// request converts req into the model ID and the JSON body of its
// ConverseStream request.
func (p *Provider) request(req *infinity.CompletionRequest) (model string, body []byte, err error) {
	model = req.Model
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
	in := converseRequest{Messages: messages(req.Items)}
	if maxTokens > 0 {
		in.InferenceConfig = &inferenceConfig{MaxTokens: int32(min(maxTokens, 1<<31-1))}
	}
	if !blank(req.System) {
		in.System = []contentBlock{{Text: req.System}}
	}
	body, err = json.Marshal(&in)
	if err != nil {
		return "", nil, invalidf("the request does not encode: %v", err)
	}
	if len(req.Tools) > 0 { // spliced in: see toolCache
		if body, err = toolCache.AddWrapped(body, `"toolConfig":{"tools":[`, `]}`, req.Tools); err != nil {
			return "", nil, err
		}
	}
	return model, body, nil
}

// toolCache keeps each tool's toolConfig.tools element, by content: an
// agent sends the same tools with every call, and converting a schema
// (decoded, checked, encoded again) is most of a request's encoding.
var toolCache = httpapi.NewTools(1024, encodeTool)

// encodeTool is a tool's toolConfig.tools element.
func encodeTool(spec *infinity.ToolSpec) ([]byte, error) {
	t, err := convertTool(*spec)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(&t)
	if err != nil {
		return nil, invalidf("tool %q does not encode: %v", spec.Name, err)
	}
	return b, nil
}

// messages groups items into alternating user and assistant messages.
func messages(items []infinity.Item) []message {
	ts := turns.Group(items)
	out := make([]message, 0, len(ts)+1)
	if len(ts) == 0 || ts[0].Role != turns.User {
		out = append(out, message{Role: "user", Content: []contentBlock{textBlock(ConversationStart)}})
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

// userBlocks returns a user turn's content: one toolResult block per
// result, then the user text.
func userBlocks(t *turns.Turn) []contentBlock {
	blocks := make([]contentBlock, 0, len(t.Results)+1)
	for i := range t.Results {
		blocks = append(blocks, contentBlock{ToolResult: convertResult(&t.Results[i])})
	}
	if !blank(t.Text) || len(blocks) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	return blocks
}

// assistantBlocks returns an assistant turn's content: its text, then one
// toolUse block per call, whose input is the call's arguments object as it
// was streamed (numbers exact).
func assistantBlocks(t *turns.Turn) []contentBlock {
	blocks := make([]contentBlock, 0, len(t.Calls)+1)
	if !blank(t.Text) || len(t.Calls) == 0 {
		blocks = append(blocks, textBlock(t.Text))
	}
	for _, c := range t.Calls {
		blocks = append(blocks, contentBlock{ToolUse: &toolUse{ToolUseID: c.ID, Name: c.Name, Input: turns.Args(c)}})
	}
	return blocks
}

// convertResult converts a result: its text and image parts become the
// block's content ("(empty)" when there are none: Bedrock requires
// content and rejects blank text).
func convertResult(r *infinity.ToolResult) *toolResult {
	b := &toolResult{ToolUseID: r.CallID}
	if r.IsError {
		b.Status = "error"
	}
	for _, part := range r.Parts {
		switch {
		case (part.Type == "text" || part.Type == "") && !blank(part.Text):
			b.Content = append(b.Content, contentBlock{Text: part.Text})
		case part.Type == "image" && part.Data != "":
			format, ok := imageFormat(part.MediaType)
			data, err := base64.StdEncoding.DecodeString(part.Data)
			if !ok || err != nil {
				continue
			}
			img := &imageBlock{Format: format}
			img.Source.Bytes = data
			b.Content = append(b.Content, contentBlock{Image: img})
		}
	}
	if len(b.Content) == 0 {
		b.Content = []contentBlock{{Text: emptyTurn}}
	}
	return b
}

func imageFormat(mediaType string) (string, bool) {
	switch strings.ToLower(mediaType) {
	case "image/png":
		return "png", true
	case "image/jpeg", "image/jpg":
		return "jpeg", true
	case "image/gif":
		return "gif", true
	case "image/webp":
		return "webp", true
	}
	return "", false
}

func textBlock(s string) contentBlock {
	if blank(s) {
		s = emptyTurn
	}
	return contentBlock{Text: s}
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// convertTool converts a spec; its JSON schema (an object schema,
// {"type":"object","properties":{}} when empty) becomes the inputSchema's
// json document, numbers kept exact.
func convertTool(spec infinity.ToolSpec) (tool, error) {
	if spec.Name == "" {
		return tool{}, invalidf("a tool has no name")
	}
	t := tool{ToolSpec: toolSpec{Name: spec.Name, Description: spec.Description}}
	schema := map[string]any{"type": "object", "properties": map[string]any{}}
	if len(spec.Schema) > 0 && string(spec.Schema) != "null" {
		m, ok := jsonValue(spec.Schema).(map[string]any)
		if !ok {
			return tool{}, invalidf("tool %q: the input schema is not a JSON object", spec.Name)
		}
		if typ, set := m["type"]; set && typ != "object" {
			return tool{}, invalidf("tool %q: the input schema's type must be \"object\", got %v", spec.Name, typ)
		}
		m["type"] = "object"
		schema = m
	}
	t.ToolSpec.InputSchema.JSON = schema
	return t, nil
}

// jsonValue decodes raw, numbers kept exact as json.Number; nil when raw
// is not one JSON value.
func jsonValue(raw json.RawMessage) any {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}
