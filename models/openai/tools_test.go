package openai

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/infinity-runtime/infinity"
)

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
