package openai

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"sync"

	"github.com/infinity-runtime/infinity"
)

// An agent sends the same tools with every call. Checking each tool's
// schema and letting encoding/json compact it again took about a tenth of
// a call's CPU (bench/modelcalls), so a tool's encoding is kept, by its
// content: name, description and schema.
var toolCache = newEncodedTools(1024)

// encodedTools maps a tool spec's content to its "tools" array element.
type encodedTools struct {
	mu   sync.Mutex
	seed maphash.Seed
	max  int
	m    map[uint64][]encodedTool // by hash; a list for collisions
	n    int
}

type encodedTool struct {
	name, description string
	schema            string
	json              []byte
}

func newEncodedTools(max int) *encodedTools {
	return &encodedTools{seed: maphash.MakeSeed(), max: max, m: make(map[uint64][]encodedTool)}
}

func (c *encodedTools) hash(s *infinity.ToolSpec) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(s.Name)
	h.WriteByte(0)
	h.WriteString(s.Description)
	h.WriteByte(0)
	h.Write(s.Schema)
	return h.Sum64()
}

// get returns the encoding of s, encoding it on a miss.
func (c *encodedTools) get(s *infinity.ToolSpec) ([]byte, error) {
	k := c.hash(s)
	c.mu.Lock()
	for _, e := range c.m[k] {
		if e.name == s.Name && e.description == s.Description && e.schema == string(s.Schema) {
			c.mu.Unlock()
			return e.json, nil
		}
	}
	c.mu.Unlock()
	b, err := encodeTool(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.max { // tools that come and go (a session's): start again
		clear(c.m)
		c.n = 0
	}
	c.m[k] = append(c.m[k], encodedTool{name: s.Name, description: s.Description, schema: string(s.Schema), json: b})
	c.n++
	return b, nil
}

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

// withTools returns the request body with `"tools":[…]` added (body is
// a JSON object that has no "tools").
func withTools(body []byte, specs []infinity.ToolSpec) ([]byte, error) {
	enc := make([][]byte, len(specs))
	n := len(body) + len(`,"tools":[]`) + len(specs)
	for i := range specs {
		b, err := toolCache.get(&specs[i])
		if err != nil {
			return nil, err
		}
		enc[i] = b
		n += len(b)
	}
	out := make([]byte, 0, n)
	out = append(out, body[:len(body)-1]...) // without its closing brace
	out = append(out, `,"tools":[`...)
	for i, b := range enc {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, "]}"...), nil
}
