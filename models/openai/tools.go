package openai

import (
	"bytes"
	"encoding/json"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
)

// toolCache keeps each tool's "tools" element, by content.
var toolCache = httpapi.NewTools(1024, encodeTool)

// encodeTool checks s's schema and encodes s as a "tools" element.
func encodeTool(s *infinity.ToolSpec) ([]byte, error) {
	schema := json.RawMessage(bytes.TrimSpace(s.Schema))
	if len(schema) == 0 || string(schema) == "null" {
		schema = json.RawMessage(`{"type":"object","properties":{}}`)
	} else if schema[0] != '{' || !json.Valid(schema) {
		var obj map[string]json.RawMessage
		err := json.Unmarshal(schema, &obj) // for the reason
		return nil, invalidf("tool %q: the input schema is not a JSON object: %v", s.Name, err)
	}
	var t chatTool
	t.Type = "function"
	t.Function.Name, t.Function.Description, t.Function.Parameters = s.Name, s.Description, schema
	b, err := json.Marshal(t)
	if err != nil {
		return nil, invalidf("tool %q does not encode: %v", s.Name, err)
	}
	return b, nil
}
