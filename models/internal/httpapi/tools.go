package httpapi

import (
	"bytes"
	"hash/maphash"
	"sync"

	infinity "github.com/infinity-runtime/infinity"
)

// Tools keeps the encodings of tool specs in a provider's request format,
// by content (name, description and schema). An agent sends the same
// tools with every call, and checking each schema and letting
// encoding/json compact it again cost about a tenth of a call's CPU
// (bench/modelcalls); a kept encoding costs a hash and a comparison.
type Tools struct {
	encode func(*infinity.ToolSpec) ([]byte, error)
	max    int
	seed   maphash.Seed

	mu    sync.Mutex
	m     map[uint64][]encodedTool // by hash; a list for collisions
	n     int
	bytes int // what the kept entries hold
}

// MaxToolBytes bounds what a Tools cache holds (specs and encodings):
// past it, as past its count, it starts again.
const MaxToolBytes = 8 << 20

type encodedTool struct {
	name, description, schema string
	json                      []byte
}

// NewTools returns a cache of at most max encodings made by encode (which
// checks the spec: an error is returned to the caller and not kept).
func NewTools(max int, encode func(*infinity.ToolSpec) ([]byte, error)) *Tools {
	return &Tools{encode: encode, max: max, seed: maphash.MakeSeed(), m: make(map[uint64][]encodedTool)}
}

func (c *Tools) hash(s *infinity.ToolSpec) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(s.Name)
	h.WriteByte(0)
	h.WriteString(s.Description)
	h.WriteByte(0)
	h.Write(s.Schema)
	return h.Sum64()
}

// Get returns the encoding of s (shared: the caller must not change it).
func (c *Tools) Get(s *infinity.ToolSpec) ([]byte, error) {
	k := c.hash(s)
	c.mu.Lock()
	for _, e := range c.m[k] {
		if e.name == s.Name && e.description == s.Description && e.schema == string(s.Schema) {
			c.mu.Unlock()
			return e.json, nil
		}
	}
	c.mu.Unlock()
	b, err := c.encode(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m[k] { // kept by another call meanwhile (agents starting at once)
		if e.name == s.Name && e.description == s.Description && e.schema == string(s.Schema) {
			return e.json, nil
		}
	}
	size := len(s.Name) + len(s.Description) + len(s.Schema) + len(b)
	if c.n >= c.max || c.bytes+size > MaxToolBytes { // tools that come and go (sessions'): start again
		clear(c.m)
		c.n, c.bytes = 0, 0
	}
	c.m[k] = append(c.m[k], encodedTool{name: s.Name, description: s.Description, schema: string(s.Schema), json: b})
	c.n++
	c.bytes += size
	return b, nil
}

// AddTo returns the JSON object body with the field `"name":[…]` added,
// the array holding the encodings of specs (body must not have the field).
func (c *Tools) AddTo(body []byte, name string, specs []infinity.ToolSpec) ([]byte, error) {
	return c.AddWrapped(body, `"`+name+`":[`, `]`, specs)
}

// AddWrapped returns the JSON object body with open, the encodings of
// specs separated by commas, and close added as its last member: open
// `"toolConfig":{"tools":[` and close `]}` nest the array in an object.
func (c *Tools) AddWrapped(body []byte, open, close string, specs []infinity.ToolSpec) ([]byte, error) {
	enc := make([][]byte, len(specs))
	n := len(body) + 1 + len(open) + len(close) + len(specs)
	for i := range specs {
		b, err := c.Get(&specs[i])
		if err != nil {
			return nil, err
		}
		enc[i] = b
		n += len(b)
	}
	out := make([]byte, 0, n)
	out = append(out, body[:len(body)-1]...) // without its closing brace
	if len(bytes.TrimSpace(out)) > 1 {       // not an empty object
		out = append(out, ',')
	}
	out = append(out, open...)
	for i, b := range enc {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	out = append(out, close...)
	return append(out, '}'), nil
}
