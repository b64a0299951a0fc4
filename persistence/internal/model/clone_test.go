package model

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

func cloneTestItems() []infinity.Item {
	at := time.Unix(1700000000, 5)
	return []infinity.Item{
		{ID: "u", Kind: infinity.KindUser, Text: "hi", At: at},
		{ID: "c1", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "1", Name: "a", Args: json.RawMessage(`{"x":1}`)}, Usage: &infinity.Usage{Input: 1, Output: 2}},
		{ID: "c2", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "2", Name: "b", Args: json.RawMessage(`[2]`)}},
		{ID: "c3", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "3", Name: "c", Args: json.RawMessage{}}},
		{ID: "c4", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "4", Name: "d"}},
		{ID: "r1", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "1", Parts: []infinity.Part{{Type: "text", Text: "ok"}},
			Display: []infinity.DisplaySegment{{Type: "text", Content: json.RawMessage(`"d"`)}}}},
		{ID: "r2", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "2", Parts: []infinity.Part{{Type: "text", Text: "a"}, {Type: "text", Text: "b"}}}},
		{ID: "r3", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "3", Parts: []infinity.Part{}}},
		{ID: "r4", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "4"}},
	}
}

func TestCloneItemsDeepAndIsolated(t *testing.T) {
	orig := cloneTestItems()
	c := CloneItems(orig)
	if !reflect.DeepEqual(c, cloneTestItems()) {
		t.Fatalf("clone differs:\n%+v", c)
	}
	// nil and empty stay apart.
	if c[3].Call.Args == nil || c[4].Call.Args != nil || c[7].Result.Parts == nil || c[8].Result.Parts != nil {
		t.Fatal("nil/empty slices not kept apart")
	}
	// Appending to one copied slice must not write into its neighbour's.
	_ = append(c[1].Call.Args, 'Z', 'Z', 'Z')
	_ = append(c[5].Result.Parts, infinity.Part{Text: "Z"})
	if string(c[2].Call.Args) != `[2]` || c[6].Result.Parts[0].Text != "a" {
		t.Fatal("append to a clone's slice overwrote another item's")
	}
	// Writing into the copies leaves the original alone, and back.
	c[1].Call.Args[0] = 'X'
	c[1].Call.Name = "changed"
	c[1].Usage.Input = 99
	c[5].Result.Parts[0].Text = "changed"
	c[5].Result.Display[0].Content[0] = 'X'
	if !reflect.DeepEqual(orig, cloneTestItems()) {
		t.Fatal("writing the clone changed the original")
	}
	orig[2].Call.Args[0] = 'X'
	orig[6].Result.Parts[1].Text = "changed"
	if string(c[2].Call.Args) != `[2]` || c[6].Result.Parts[1].Text != "b" {
		t.Fatal("writing the original changed the clone")
	}
	if CloneItems(nil) != nil || CloneItems([]infinity.Item{}) != nil {
		t.Fatal("empty clone not nil")
	}
}

func BenchmarkCloneItems(b *testing.B) {
	items := cloneTestItems()
	for range 3 {
		items = append(items, items...)
	}
	b.ReportAllocs()
	for b.Loop() {
		CloneItems(items)
	}
}
