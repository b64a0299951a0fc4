package infinity_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

// wireBodies are input-message bodies as the reference runtime writes them
// (plus our own "continue" synthetic and the "id" extension), with the
// message each must decode to.
var wireBodies = []struct {
	name string
	body string
	want infinity.InputMessage
}{
	{
		name: "user text with explicit nulls",
		body: `{"content":{"type":"text","text":"hi"},"group_id":"t1","metadata":null,"synthetic":null,"display_as":null,"subscription":false}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{Type: infinity.ContentText, Text: "hi"},
			// A JSON null decodes into a RawMessage as the literal "null".
			Metadata: json.RawMessage("null"),
		},
	},
	{
		name: "user text with id and metadata",
		body: `{"id":"m1","content":{"type":"text","text":"hello"},"group_id":"t1","metadata":{"user":"u1","n":[1,2]},"subscription":true}`,
		want: infinity.InputMessage{
			ID:           "m1",
			GroupID:      "t1",
			Content:      infinity.Content{Type: infinity.ContentText, Text: "hello"},
			Metadata:     json.RawMessage(`{"user":"u1","n":[1,2]}`),
			Subscription: true,
		},
	},
	{
		name: "tool result",
		body: `{"content":{"type":"toolresult","id":"call_1","call_id":"prov_1","content":[{"type":"text","text":"done"}]},"group_id":"t1"}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:   infinity.ContentToolResult,
				ID:     "call_1",
				CallID: "prov_1",
				Parts:  []infinity.Part{{Type: "text", Text: "done"}},
			},
		},
	},
	{
		name: "tool result with image part",
		body: `{"content":{"type":"toolresult","id":"call_2","content":[{"type":"text","text":"see"},{"type":"image","data":"aGk=","media_type":"image/png"}]},"group_id":"t1"}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type: infinity.ContentToolResult,
				ID:   "call_2",
				Parts: []infinity.Part{
					{Type: "text", Text: "see"},
					{Type: "image", Data: "aGk=", MediaType: "image/png"},
				},
			},
		},
	},
	{
		name: "legacy bare-string synthetic",
		body: `{"content":{"type":"toolresult","id":"call_9","content":[{"type":"text","text":"tick"}]},"group_id":"t1","synthetic":"call_9"}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:  infinity.ContentToolResult,
				ID:    "call_9",
				Parts: []infinity.Part{{Type: "text", Text: "tick"}},
			},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call_9"},
		},
	},
	{
		name: "legacy synthetic stands in for a missing tool call id",
		body: `{"content":{"type":"toolresult","content":[{"type":"text","text":"tick"}]},"group_id":"t1","synthetic":"call_9"}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:  infinity.ContentToolResult,
				Parts: []infinity.Part{{Type: "text", Text: "tick"}},
			},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call_9"},
		},
	},
	{
		name: "thread_report synthetic",
		body: `{"content":{"type":"toolresult","id":"c","content":[{"type":"text","text":"child done"}]},"group_id":"t1","synthetic":{"type":"thread_report","tool_call_id":"c","child_thread_id":"t2"}}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:  infinity.ContentToolResult,
				ID:    "c",
				Parts: []infinity.Part{{Type: "text", Text: "child done"}},
			},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticThreadReport, ToolCallID: "c", ChildThreadID: "t2"},
		},
	},
	{
		name: "parent_message synthetic",
		body: `{"content":{"type":"text","text":"from parent"},"group_id":"t2","synthetic":{"type":"parent_message"}}`,
		want: infinity.InputMessage{
			GroupID:   "t2",
			Content:   infinity.Content{Type: infinity.ContentText, Text: "from parent"},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticParentMessage},
		},
	},
	{
		name: "subscription_event synthetic, associative and final",
		body: `{"content":{"type":"toolresult","id":"call_3","content":[{"type":"text","text":"ev"}]},"group_id":"t1","synthetic":{"type":"subscription_event","tool_call_id":"call_3","associative":true,"final":true},"subscription":true}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:  infinity.ContentToolResult,
				ID:    "call_3",
				Parts: []infinity.Part{{Type: "text", Text: "ev"}},
			},
			Synthetic: &infinity.Synthetic{
				Type:        infinity.SyntheticSubscriptionEvent,
				ToolCallID:  "call_3",
				Associative: true,
				Final:       true,
			},
			Subscription: true,
		},
	},
	{
		name: "subscription_event synthetic, neither associative nor final",
		body: `{"content":{"type":"toolresult","id":"call_3","content":[]},"group_id":"t1","synthetic":{"type":"subscription_event","tool_call_id":"call_3","associative":false,"final":false}}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:  infinity.ContentToolResult,
				ID:    "call_3",
				Parts: []infinity.Part{},
			},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call_3"},
		},
	},
	{
		name: "compaction synthetic",
		body: `{"content":{"type":"text","text":"summarise"},"group_id":"t3","synthetic":{"type":"compaction"}}`,
		want: infinity.InputMessage{
			GroupID:   "t3",
			Content:   infinity.Content{Type: infinity.ContentText, Text: "summarise"},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompaction},
		},
	},
	{
		name: "compaction_complete synthetic",
		body: `{"content":{"type":"text","text":"summary"},"group_id":"t1","synthetic":{"type":"compaction_complete","child_thread_id":"t3"}}`,
		want: infinity.InputMessage{
			GroupID:   "t1",
			Content:   infinity.Content{Type: infinity.ContentText, Text: "summary"},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompactionComplete, ChildThreadID: "t3"},
		},
	},
	{
		name: "continue synthetic",
		body: `{"id":"m-cont","content":{"type":"text","text":""},"group_id":"t1","synthetic":{"type":"continue"}}`,
		want: infinity.InputMessage{
			ID:        "m-cont",
			GroupID:   "t1",
			Content:   infinity.Content{Type: infinity.ContentText},
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticContinue},
		},
	},
	{
		name: "display_as segments",
		body: `{"content":{"type":"toolresult","id":"call_4","content":[{"type":"text","text":"ok"}]},"group_id":"t1","display_as":[{"type":"text","content":"x"},{"type":"diff","content":{"path":"a.go","patch":"@@"}}]}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:  infinity.ContentToolResult,
				ID:    "call_4",
				Parts: []infinity.Part{{Type: "text", Text: "ok"}},
			},
			DisplayAs: []infinity.DisplaySegment{
				{Type: "text", Content: json.RawMessage(`"x"`)},
				{Type: "diff", Content: json.RawMessage(`{"path":"a.go","patch":"@@"}`)},
			},
		},
	},
	{
		name: "oauth_required",
		body: `{"content":{"type":"oauth_required","id":"call_5","auth_url":"https://auth.example.com/start?state=s1"},"group_id":"t1"}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:    infinity.ContentOAuth,
				ID:      "call_5",
				AuthURL: "https://auth.example.com/start?state=s1",
			},
		},
	},
	{
		name: "user_choice_required",
		body: `{"content":{"type":"user_choice_required","id":"call_6","prompt":"Proceed?","choices":["yes","no","later"],"default":1,"response_url":"https://api.example.com/choice/c6"},"group_id":"t1"}`,
		want: infinity.InputMessage{
			GroupID: "t1",
			Content: infinity.Content{
				Type:        infinity.ContentUserChoice,
				ID:          "call_6",
				Prompt:      "Proceed?",
				Choices:     []string{"yes", "no", "later"},
				Default:     1,
				ResponseURL: "https://api.example.com/choice/c6",
			},
		},
	},
}

func TestDecodeInputMessageWire(t *testing.T) {
	for _, tc := range wireBodies {
		t.Run(tc.name, func(t *testing.T) {
			got, err := infinity.DecodeInputMessage([]byte(tc.body))
			if err != nil {
				t.Fatalf("DecodeInputMessage: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodeInputMessage:\n got %#v\nwant %#v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate of a decoded message: %v", err)
			}
		})
	}
}

// TestInputMessageWireFields checks the field names we write, so that the
// reference runtime can read our messages.
func TestInputMessageWireFields(t *testing.T) {
	m := infinity.InputMessage{
		ID:      "m1",
		GroupID: "t1",
		Content: infinity.Content{
			Type:   infinity.ContentToolResult,
			ID:     "call_1",
			CallID: "prov_1",
			Parts:  []infinity.Part{{Type: "text", Text: "done"}},
		},
		Metadata:     json.RawMessage(`{"k":"v"}`),
		Synthetic:    &infinity.Synthetic{Type: infinity.SyntheticThreadReport, ToolCallID: "c", ChildThreadID: "t2", Associative: true, Final: true},
		DisplayAs:    []infinity.DisplaySegment{{Type: "text", Content: json.RawMessage(`"x"`)}},
		Subscription: true,
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":       "m1",
		"group_id": "t1",
		"content": map[string]any{
			"type":    "toolresult",
			"id":      "call_1",
			"call_id": "prov_1",
			"content": []any{map[string]any{"type": "text", "text": "done"}},
		},
		"metadata": map[string]any{"k": "v"},
		"synthetic": map[string]any{
			"type":            "thread_report",
			"tool_call_id":    "c",
			"child_thread_id": "t2",
			"associative":     true,
			"final":           true,
		},
		"display_as":   []any{map[string]any{"type": "text", "content": "x"}},
		"subscription": true,
	}
	if !reflect.DeepEqual(generic, want) {
		t.Fatalf("wire form:\n got %v\nwant %v", generic, want)
	}

	// Optional fields are left out of a minimal message.
	b, err = json.Marshal(infinity.InputMessage{GroupID: "t1", Content: infinity.TextContent("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"group_id":"t1","content":{"type":"text","text":"hi"}}`; got != want {
		t.Fatalf("minimal message: got %s, want %s", got, want)
	}
}

func TestInputMessageRoundTrip(t *testing.T) {
	msgs := []infinity.InputMessage{
		{GroupID: "t1", Content: infinity.TextContent("hi")},
		{ID: infinity.NewMessageID(), GroupID: "t1", Content: infinity.ResultContent("call_1", "done")},
		{
			ID:      "m2",
			GroupID: "thread.with_all-chars.09",
			Content: infinity.Content{
				Type:   infinity.ContentToolResult,
				ID:     "call_1",
				CallID: "prov_1",
				Parts: []infinity.Part{
					{Type: "text", Text: "line <1> & \"2\"\n"},
					{Type: "image", Data: "aGk=", MediaType: "image/png"},
				},
			},
			Metadata:     json.RawMessage(`{"user":"u1","tags":["a","b"],"n":1.5}`),
			Synthetic:    &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call_1", Associative: true, Final: true},
			DisplayAs:    []infinity.DisplaySegment{{Type: "text", Content: json.RawMessage(`"x"`)}, {Type: "image", Content: json.RawMessage(`{"data":"aGk="}`)}},
			Subscription: true,
		},
		{GroupID: "t2", Content: infinity.TextContent("r"), Synthetic: &infinity.Synthetic{Type: infinity.SyntheticThreadReport, ToolCallID: "c", ChildThreadID: "t9"}},
		{GroupID: "t2", Content: infinity.TextContent("p"), Synthetic: &infinity.Synthetic{Type: infinity.SyntheticParentMessage}},
		{GroupID: "t2", Content: infinity.TextContent("c"), Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompaction}},
		{GroupID: "t2", Content: infinity.TextContent("cc"), Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompactionComplete, ChildThreadID: "t3"}},
		{GroupID: "t2", Content: infinity.TextContent(""), Synthetic: &infinity.Synthetic{Type: infinity.SyntheticContinue}},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentOAuth, ID: "call_5", AuthURL: "https://a.example/?x=1&y=2"}},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentUserChoice, ID: "call_6", Prompt: "Pick", Choices: []string{"a", "b"}, Default: 1, ResponseURL: "https://r.example/c"}},
		{GroupID: "t1", Content: infinity.TextContent("null metadata"), Metadata: json.RawMessage("null")},
	}
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %+v: %v", m, err)
		}
		got, err := infinity.DecodeInputMessage(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", b, got, m)
		}
	}

	// Every reference body survives marshal + decode unchanged.
	for _, tc := range wireBodies {
		b, err := json.Marshal(tc.want)
		if err != nil {
			t.Fatalf("%s: marshal: %v", tc.name, err)
		}
		got, err := infinity.DecodeInputMessage(b)
		if err != nil {
			t.Fatalf("%s: decode %s: %v", tc.name, b, err)
		}
		want := tc.want
		// An empty tool-result parts list is omitted on the wire.
		if len(want.Content.Parts) == 0 {
			want.Content.Parts = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip of %s:\n got %#v\nwant %#v", tc.name, b, got, want)
		}
	}
}

func TestSyntheticUnmarshalJSON(t *testing.T) {
	valid := []struct {
		in   string
		want infinity.Synthetic
	}{
		{`"call_9"`, infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call_9"}},
		{`"c\u0061ll"`, infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call"}},
		{`{"type":"thread_report","tool_call_id":"c","child_thread_id":"t2"}`, infinity.Synthetic{Type: infinity.SyntheticThreadReport, ToolCallID: "c", ChildThreadID: "t2"}},
		{`{"type":"parent_message"}`, infinity.Synthetic{Type: infinity.SyntheticParentMessage}},
		{`{"type":"subscription_event","tool_call_id":"x","associative":true}`, infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "x", Associative: true}},
		{`{"type":"subscription_event","tool_call_id":"x","final":true}`, infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "x", Final: true}},
		{`{"type":"compaction"}`, infinity.Synthetic{Type: infinity.SyntheticCompaction}},
		{`{"type":"compaction_complete"}`, infinity.Synthetic{Type: infinity.SyntheticCompactionComplete}},
		{`{"type":"continue"}`, infinity.Synthetic{Type: infinity.SyntheticContinue}},
	}
	for _, tc := range valid {
		var s infinity.Synthetic
		if err := json.Unmarshal([]byte(tc.in), &s); err != nil {
			t.Errorf("unmarshal %s: %v", tc.in, err)
			continue
		}
		if s != tc.want {
			t.Errorf("unmarshal %s = %+v, want %+v", tc.in, s, tc.want)
		}
	}
	for _, in := range []string{`{"type":"bogus"}`, `{}`, `{"type":""}`, `{"type":"Continue"}`} {
		var s infinity.Synthetic
		err := json.Unmarshal([]byte(in), &s)
		if !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("unmarshal %s: %v, want ErrInvalid", in, err)
		}
	}
	for _, in := range []string{`5`, `[]`, `true`, `{"type":5}`} {
		var s infinity.Synthetic
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("unmarshal %s = %+v, want an error", in, s)
		}
	}
}

func TestDecodeInputMessageRejects(t *testing.T) {
	long := strings.Repeat("a", 129)
	cases := []struct {
		name string
		body string
	}{
		{"empty body", ``},
		{"not JSON", `hello`},
		{"truncated JSON", `{"content":{"type":"text","text":"hi"},"group_id":"t1"`},
		{"JSON array", `[]`},
		{"JSON null", `null`},
		{"JSON string", `"t1"`},
		{"content not an object", `{"content":"hi","group_id":"t1"}`},
		{"group_id not a string", `{"content":{"type":"text","text":"hi"},"group_id":7}`},
		{"unknown synthetic type", `{"content":{"type":"text","text":"hi"},"group_id":"t1","synthetic":{"type":"bogus"}}`},
		{"synthetic without type", `{"content":{"type":"text","text":"hi"},"group_id":"t1","synthetic":{"tool_call_id":"c"}}`},
		{"synthetic of the wrong JSON type", `{"content":{"type":"text","text":"hi"},"group_id":"t1","synthetic":42}`},
		{"missing group_id", `{"content":{"type":"text","text":"hi"}}`},
		{"empty group_id", `{"content":{"type":"text","text":"hi"},"group_id":""}`},
		{"group_id with spaces", `{"content":{"type":"text","text":"hi"},"group_id":"t 1"}`},
		{"group_id with a slash", `{"content":{"type":"text","text":"hi"},"group_id":"t/1"}`},
		{"group_id with non-ASCII", `{"content":{"type":"text","text":"hi"},"group_id":"tö"}`},
		{"group_id over 128 characters", `{"content":{"type":"text","text":"hi"},"group_id":"` + long + `"}`},
		{"missing content", `{"group_id":"t1"}`},
		{"unknown content type", `{"content":{"type":"video","text":"hi"},"group_id":"t1"}`},
		{"content type case differs", `{"content":{"type":"Text","text":"hi"},"group_id":"t1"}`},
		{"tool result without id", `{"content":{"type":"toolresult","content":[{"type":"text","text":"done"}]},"group_id":"t1"}`},
		{"tool result with only a provider call id", `{"content":{"type":"toolresult","call_id":"prov_1","content":[{"type":"text","text":"done"}]},"group_id":"t1","synthetic":null}`},
		{"oauth without id", `{"content":{"type":"oauth_required","auth_url":"https://a.example"},"group_id":"t1"}`},
		{"user choice without id", `{"content":{"type":"user_choice_required","prompt":"?","choices":["a"]},"group_id":"t1"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := infinity.DecodeInputMessage([]byte(tc.body))
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("DecodeInputMessage(%s) = %+v, %v; want ErrInvalid", tc.body, m, err)
			}
			if !reflect.DeepEqual(m, infinity.InputMessage{}) {
				t.Fatalf("DecodeInputMessage(%s) returned %+v with its error, want the zero message", tc.body, m)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := []infinity.InputMessage{
		{GroupID: "t1", Content: infinity.TextContent("")},
		{GroupID: infinity.ThreadID(strings.Repeat("a", 128)), Content: infinity.TextContent("x")},
		{GroupID: "t1", Content: infinity.ResultContent("c", "x")},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentToolResult}, Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent}},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentOAuth, ID: "c"}},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentUserChoice, ID: "c"}},
	}
	for _, m := range ok {
		if err := m.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", m, err)
		}
	}
	bad := []infinity.InputMessage{
		{},
		{GroupID: "t1"},
		{Content: infinity.TextContent("x")},
		{GroupID: infinity.ThreadID(strings.Repeat("a", 129)), Content: infinity.TextContent("x")},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentToolResult}},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentOAuth}},
		{GroupID: "t1", Content: infinity.Content{Type: infinity.ContentUserChoice}},
		{GroupID: "t1", Content: infinity.Content{Type: "other", ID: "c"}},
	}
	for _, m := range bad {
		if err := m.Validate(); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", m, err)
		}
	}
}

func TestContentHelpers(t *testing.T) {
	if got, want := infinity.TextContent("hi"), (infinity.Content{Type: infinity.ContentText, Text: "hi"}); !reflect.DeepEqual(got, want) {
		t.Errorf("TextContent = %+v, want %+v", got, want)
	}
	want := infinity.Content{Type: infinity.ContentToolResult, ID: "c1", Parts: []infinity.Part{{Type: "text", Text: "out"}}}
	if got := infinity.ResultContent("c1", "out"); !reflect.DeepEqual(got, want) {
		t.Errorf("ResultContent = %+v, want %+v", got, want)
	}
}

func FuzzDecodeInputMessage(f *testing.F) {
	for _, tc := range wireBodies {
		f.Add([]byte(tc.body))
	}
	for _, s := range []string{
		`{"content":{"type":"text","text":"hi"},"group_id":"t1","metadata":{ "a" : [1, 2] },"display_as":[{"type":"text"}]}`,
		`{"content":{"type":"toolresult","content":[]},"group_id":"t1","synthetic":""}`,
		`{"content":{"type":"user_choice_required","id":"c","choices":[]},"group_id":"t1","metadata":"<&>"}`,
		`{"content":{"type":"text"},"group_id":"t1","synthetic":{"type":"bogus"}}`,
		`{"content":{"type":"text"},"group_id":"t 1"}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := infinity.DecodeInputMessage(body)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("DecodeInputMessage(%q): error %v is not ErrInvalid", body, err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("DecodeInputMessage(%q) = %+v, which fails Validate: %v", body, m, err)
		}
		b1, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %+v (from %q): %v", m, body, err)
		}
		m2, err := infinity.DecodeInputMessage(b1)
		if err != nil {
			t.Fatalf("decode of re-marshalled %s (from %q): %v", b1, body, err)
		}
		b2, err := json.Marshal(m2)
		if err != nil {
			t.Fatalf("marshal %+v: %v", m2, err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("marshal+decode is not stable (from %q):\n first %s\nsecond %s", body, b1, b2)
		}
	})
}
