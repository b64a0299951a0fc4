package jsonw

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// TestCoversTypes fails when a type the encoder spells out gains, loses or
// changes a field: update jsonw.go (and Fields) to match.
func TestCoversTypes(t *testing.T) {
	if m := mismatch(); m != "" {
		t.Fatalf("jsonw.go is out of date: %s", m)
	}
}

// TestItemRoundTrip checks one item of every kind against json.Unmarshal.
// (The file store's tests compare thousands of random records, which
// reach every writer here, with json.Marshal.)
func TestItemRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 456_000_000, time.UTC)
	items := []infinity.Item{
		{ID: "u", Kind: infinity.KindUser, Text: "hi <b> & \u2028", At: at},
		{ID: "c", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c1", Name: "sleep", Args: json.RawMessage(` { "s" : 1 } `)}, Usage: &infinity.Usage{Input: 3, Output: 4}, Model: "m", At: at},
		{ID: "r", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "c1", Parts: []infinity.Part{{Type: "text", Text: "ok"}}, IsError: true, State: infinity.ResultPending}, At: at},
	}
	for _, it := range items {
		w := W{}
		w.Item(&it)
		if w.Err != nil {
			t.Fatal(w.Err)
		}
		var back infinity.Item
		if err := json.Unmarshal(w.Buf, &back); err != nil {
			t.Fatalf("%s: %v", w.Buf, err)
		}
		want, _ := json.Marshal(it)
		var wantBack infinity.Item
		if err := json.Unmarshal(want, &wantBack); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, wantBack) {
			t.Fatalf("item %s: got %+v, want %+v", it.ID, back, wantBack)
		}
	}
}
