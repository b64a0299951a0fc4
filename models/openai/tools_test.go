package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func TestToolEncodingsByContent(t *testing.T) {
	c := newEncodedTools(3)
	a := infinity.ToolSpec{Name: "read", Description: "Read.", Schema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`)}
	b := a
	b.Schema = json.RawMessage(` {"type": "object", "properties": {}} `)
	d := a
	d.Description = "Read a file."
	want := map[*infinity.ToolSpec]string{
		&a: `{"type":"function","function":{"name":"read","description":"Read.","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}`,
		&b: `{"type":"function","function":{"name":"read","description":"Read.","parameters":{"type":"object","properties":{}}}}`,
		&d: `{"type":"function","function":{"name":"read","description":"Read a file.","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}`,
	}
	for range 2 { // the second round is answered from the cache
		for s, w := range want {
			got, err := c.get(s)
			if err != nil || string(got) != w {
				t.Fatalf("get(%+v) = %s, %v; want %s", s, got, err, w)
			}
		}
	}
	if c.n != 3 {
		t.Fatalf("%d encodings kept, want 3", c.n)
	}
	e := infinity.ToolSpec{Name: "e"}
	if _, err := c.get(&e); err != nil || c.n != 1 { // past max: the cache starts again
		t.Fatalf("after a fourth tool: n = %d, %v", c.n, err)
	}
	bad := infinity.ToolSpec{Name: "bad", Schema: json.RawMessage(`[1]`)}
	for range 2 { // a bad schema is refused every time, never kept
		if _, err := c.get(&bad); !errors.Is(err, infinity.ErrInvalid) {
			t.Fatalf("bad schema: %v", err)
		}
	}
}

func TestRequestWithToolsIsOneObject(t *testing.T) {
	p := &Provider{}
	m := infinity.ModelInfo{ID: "m", MaxOutput: 100}
	req := &infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}},
		Tools: []infinity.ToolSpec{{Name: "a"}, {Name: "b", Schema: json.RawMessage(`{"type":"object"}`)}}}
	b, err := p.params(m, req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Model string `json:"model"`
		Tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Model != "m" || len(got.Tools) != 2 || got.Tools[1].Function.Name != "b" {
		t.Fatalf("%s: %+v, %v", b, got, err)
	}
	req.Tools = nil
	if b, err = p.params(m, req); err != nil || !json.Valid(b) {
		t.Fatalf("without tools: %s, %v", b, err)
	}
}

// BenchmarkParams encodes a call's request with ten tools of a few
// properties each (the built-ins are eight).
func BenchmarkParams(b *testing.B) {
	var specs []infinity.ToolSpec
	for i := range 10 {
		specs = append(specs, infinity.ToolSpec{Name: fmt.Sprintf("tool_%d", i), Description: "Does one thing, and says what it did in a sentence or two.",
			Schema: json.RawMessage(`{"type":"object","properties":{"seconds":{"type":"number","description":"How long, in seconds."},"reason":{"type":"string","description":"Why, for the log."}},"required":["seconds"]}`)})
	}
	p := &Provider{}
	m := infinity.ModelInfo{ID: "m", MaxOutput: 100}
	req := &infinity.CompletionRequest{System: "sys", Items: []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}}, Tools: specs}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.params(m, req); err != nil {
			b.Fatal(err)
		}
	}
}
