package infinity_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

func TestItemKindText(t *testing.T) {
	kinds := map[infinity.ItemKind]string{
		infinity.KindUser:       "user",
		infinity.KindAssistant:  "assistant",
		infinity.KindToolCall:   "tool_call",
		infinity.KindToolResult: "tool_result",
		infinity.KindSummary:    "summary",
	}
	for k, name := range kinds {
		if got := k.String(); got != name {
			t.Errorf("%d.String() = %q, want %q", k, got, name)
		}
		b, err := k.MarshalText()
		if err != nil || string(b) != name {
			t.Errorf("%d.MarshalText() = %q, %v; want %q", k, b, err, name)
		}
		var back infinity.ItemKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("UnmarshalText(%q) = %d, %v; want %d", b, back, err, k)
		}
		// As a JSON value it is a string.
		j, err := json.Marshal(k)
		if err != nil || string(j) != `"`+name+`"` {
			t.Errorf("json.Marshal(%d) = %s, %v; want %q", k, j, err, name)
		}
		var fromJSON infinity.ItemKind
		if err := json.Unmarshal(j, &fromJSON); err != nil || fromJSON != k {
			t.Errorf("json.Unmarshal(%s) = %d, %v; want %d", j, fromJSON, err, k)
		}
	}

	for _, k := range []infinity.ItemKind{0, 6, 255} {
		if got := k.String(); got != "unknown" {
			t.Errorf("ItemKind(%d).String() = %q, want \"unknown\"", k, got)
		}
	}

	for _, name := range []string{"", "unknown", "User", "tool-call", "toolresult", "bogus", " user"} {
		k := infinity.KindAssistant
		err := k.UnmarshalText([]byte(name))
		if !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("UnmarshalText(%q) = %v, want ErrInvalid", name, err)
		}
		if k != infinity.KindAssistant {
			t.Errorf("UnmarshalText(%q) changed the kind to %d on error", name, k)
		}
		var it infinity.Item
		if err := json.Unmarshal([]byte(`{"id":"i","kind":"`+name+`"}`), &it); err == nil {
			t.Errorf("json.Unmarshal of an item with kind %q succeeded: %+v", name, it)
		}
	}
}

func TestItemJSONRoundTrip(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	items := []infinity.Item{
		{ID: "m1", Kind: infinity.KindUser, Text: "hello", At: at},
		{ID: "a1", Kind: infinity.KindAssistant, Text: "thinking <about> & it", At: at},
		{
			ID:   "a2",
			Kind: infinity.KindToolCall,
			Call: &infinity.ToolCall{ID: "call_1", Name: "spawn_thread", Args: json.RawMessage(`{"prompt":"go","n":[1,2,3]}`)},
			Usage: &infinity.Usage{
				Input:  1200,
				Output: 34,
			},
			At: at,
		},
		{
			ID:   "r1",
			Kind: infinity.KindToolResult,
			Result: &infinity.ToolResult{
				CallID:  "call_1",
				Parts:   []infinity.Part{{Type: "text", Text: "ok"}, {Type: "image", Data: "aGk=", MediaType: "image/png"}},
				IsError: true,
				State:   infinity.ResultPending,
				Display: []infinity.DisplaySegment{{Type: "diff", Content: json.RawMessage(`{"patch":"@@"}`)}},
			},
			At: at,
		},
		{ID: "r2", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call_2", State: infinity.ResultInterrupted}, At: at.Add(time.Hour)},
		{ID: "r3", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call_3"}},
	}
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			t.Fatalf("marshal %+v: %v", it, err)
		}
		var back infinity.Item
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if !back.At.Equal(it.At) {
			t.Errorf("round trip of %s: At = %v, want %v", b, back.At, it.At)
		}
		back.At = it.At
		if !reflect.DeepEqual(back, it) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", b, back, it)
		}
	}

	// The kind is written by name.
	b, err := json.Marshal(infinity.Item{ID: "x", Kind: infinity.KindToolCall, At: at})
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["kind"] != "tool_call" {
		t.Errorf("item JSON %s: kind = %v, want \"tool_call\"", b, generic["kind"])
	}
	for _, f := range []string{"text", "call", "result", "usage"} {
		if _, ok := generic[f]; ok {
			t.Errorf("item JSON %s: empty field %q is not omitted", b, f)
		}
	}
}

func TestToolResultText(t *testing.T) {
	r := &infinity.ToolResult{CallID: "c", Parts: []infinity.Part{{Type: "text", Text: "a"}, {Type: "image", Data: "x"}, {Type: "text", Text: "b"}}}
	if got := r.Text(); got != "a\nb" {
		t.Errorf("Text() = %q, want %q", got, "a\nb")
	}
}

func TestPartsText(t *testing.T) {
	cases := []struct {
		name  string
		parts []infinity.Part
		want  string
	}{
		{"nil", nil, ""},
		{"empty", []infinity.Part{}, ""},
		{"one text", []infinity.Part{{Type: "text", Text: "a"}}, "a"},
		{"texts joined by newlines", []infinity.Part{{Type: "text", Text: "a"}, {Type: "text", Text: "b"}, {Type: "text", Text: "c"}}, "a\nb\nc"},
		{"untyped parts are text", []infinity.Part{{Text: "a"}, {Type: "text", Text: "b"}}, "a\nb"},
		{"images skipped", []infinity.Part{{Type: "image", Data: "x"}, {Type: "text", Text: "a"}, {Type: "image", Data: "y"}, {Type: "text", Text: "b"}, {Type: "image"}}, "a\nb"},
		{"only images", []infinity.Part{{Type: "image", Data: "x"}, {Type: "image", Data: "y"}}, ""},
		{"unknown part types skipped", []infinity.Part{{Type: "audio", Text: "no"}, {Type: "text", Text: "yes"}}, "yes"},
		{"multi-line texts kept", []infinity.Part{{Type: "text", Text: "a\nb"}, {Type: "text", Text: "c\n"}}, "a\nb\nc\n"},
	}
	for _, tc := range cases {
		if got := infinity.PartsText(tc.parts); got != tc.want {
			t.Errorf("%s: PartsText(%+v) = %q, want %q", tc.name, tc.parts, got, tc.want)
		}
	}
}

func TestUsageAdd(t *testing.T) {
	got := infinity.Usage{Input: 1, Output: 2}.Add(infinity.Usage{Input: 10, Output: 20})
	if want := (infinity.Usage{Input: 11, Output: 22}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
}
