package replay

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

// request is a child's request as the engine makes it, for thread ids of
// one run: its identity in the system prompt, an injected call whose id
// derives from its own id, a sibling named in a result, and a time.
func request(root, self, sibling, injected, at string) (infinity.CompletionRequest, []infinity.ThreadID) {
	stack := []infinity.ThreadID{infinity.ThreadID(root), infinity.ThreadID(self)}
	return infinity.CompletionRequest{
		Model: "m", MaxTokens: 100,
		System: "Be brief.\n\nYour thread ID is " + self + ". The root thread ID is " + root + `. Your thread stack (root first) is ["` + root + `", "` + self + `"].`,
		Tools:  []infinity.ToolSpec{{Name: "clock", Description: "Tells the time.", Schema: json.RawMessage(`{ "type": "object", "properties": {} }`)}},
		Items: []infinity.Item{
			{ID: "x1", Kind: infinity.KindUser, Text: "Count."},
			{ID: "x2", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "call_1", Name: "spawn_thread", Args: json.RawMessage(`{"child_of": ["` + root + `"], "instructions": "count"}`)}},
			{ID: "x3", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call_1", Parts: []infinity.Part{{Type: "text", Text: "You are now inside thread " + self + "."}}}},
			{ID: "x4", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: injected, Name: "receive_event__injected", Args: json.RawMessage(`{}`)}},
			{ID: "x5", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: injected, Parts: []infinity.Part{{Text: "Sibling " + sibling + " says hello at " + at + "."}}}},
		},
		Thread: infinity.ThreadID(self), Stack: stack,
	}, stack
}

// Two runs of the same request, whose generated thread ids, derived call
// ids and times differ, have the same matching form; another text does
// not.
func TestMatchingFormIgnoresWhatDiffersBetweenRuns(t *testing.T) {
	a, as := request("taaaaaaaaaaaaaaaaaaaa", "tbbbbbbbbbbbbbbbbbbbb", "tcccccccccccccccccccc", "inj_aaaaaaaaaaaaaaaaaaaa", "2026-01-02T10:00:00Z")
	b, bs := request("tdddddddddddddddddddd", "teeeeeeeeeeeeeeeeeeee", "tffffffffffffffffffff", "inj_bbbbbbbbbbbbbbbbbbbb", "2026-03-04 11:22:33.5 +0000 UTC")
	ra, rb := NewRequest(a), NewRequest(b)
	fa, fb := matchForm("p", as, &ra), matchForm("p", bs, &rb)
	if fa.key != fb.key {
		t.Fatalf("the forms differ:\n%s", lineDiff(fa.lines, fb.lines))
	}
	text := strings.Join(fa.lines, "\n")
	for _, want := range []string{
		"stack: ⟪stack:0⟫ ⟪stack:1⟫",
		"system | Your thread ID is ⟪stack:1⟫. The root thread ID is ⟪stack:0⟫.",
		`item 1 tool_call ⟪call:1⟫ spawn_thread | {"child_of":["⟪stack:0⟫"],"instructions":"count"}`,
		"item 4 tool_result ⟪call:2⟫ | Sibling ⟪thread:1⟫ says hello at ⟪time⟫.",
		`tool clock schema | {"properties":{},"type":"object"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the form has no %q:\n%s", want, text)
		}
	}

	c, cs := request("tdddddddddddddddddddd", "teeeeeeeeeeeeeeeeeeee", "tffffffffffffffffffff", "inj_bbbbbbbbbbbbbbbbbbbb", "now")
	rc := NewRequest(c)
	if fc := matchForm("p", cs, &rc); fc.key == fa.key {
		t.Fatal("a request with other text has the same key")
	}
	if fo := matchForm("other", as, &ra); fo.key == fa.key {
		t.Fatal("another provider's request has the same key")
	}
	// A chosen id is kept as it is.
	d, ds := request("nightly", "tbbbbbbbbbbbbbbbbbbbb", "tcccccccccccccccccccc", "inj_aaaaaaaaaaaaaaaaaaaa", "2026-01-02T10:00:00Z")
	rd := NewRequest(d)
	if fd := matchForm("p", ds, &rd); fd.lines[3] != "stack: nightly ⟪stack:1⟫" || fd.key == fa.key {
		t.Fatalf("with a chosen root id: %q", fd.lines[3])
	}
}

// A recorded response names the asking run's threads and calls, not the
// recorded run's.
func TestTranslatePutsBackTheAskingRunsNames(t *testing.T) {
	a, as := request("taaaaaaaaaaaaaaaaaaaa", "tbbbbbbbbbbbbbbbbbbbb", "tcccccccccccccccccccc", "inj_aaaaaaaaaaaaaaaaaaaa", "t")
	b, bs := request("tdddddddddddddddddddd", "teeeeeeeeeeeeeeeeeeee", "tffffffffffffffffffff", "inj_bbbbbbbbbbbbbbbbbbbb", "t")
	ra, rb := NewRequest(a), NewRequest(b)
	fa, fb := matchForm("p", as, &ra), matchForm("p", bs, &rb)
	got := translate(`{"thread_id":"tbbbbbbbbbbbbbbbbbbbb","tool_call_id":"inj_aaaaaaaaaaaaaaaaaaaa","note":"tcccccccccccccccccccc and tzzzzzzzzzzzzzzzzzzzz, call_1"}`, fa.sym, fb.sym)
	want := `{"thread_id":"teeeeeeeeeeeeeeeeeeee","tool_call_id":"inj_bbbbbbbbbbbbbbbbbbbb","note":"tffffffffffffffffffff and tzzzzzzzzzzzzzzzzzzzz, call_1"}`
	if got != want {
		t.Fatalf("translate:\n got %s\nwant %s", got, want)
	}
}

// Requests keep what the model sees: images by digest, invalid JSON
// verbatim, no engine fields.
func TestNewRequest(t *testing.T) {
	r := NewRequest(infinity.CompletionRequest{Items: []infinity.Item{
		{ID: "i", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c", Name: "n", Args: json.RawMessage(`{"a": 1`)}},
		{ID: "j", Kind: infinity.KindToolResult, Usage: &infinity.Usage{Input: 1}, Result: &infinity.ToolResult{CallID: "c", State: infinity.ResultPending,
			Parts: []infinity.Part{{Type: "image", Data: "aGVsbG8=", MediaType: "image/png"}}}},
	}})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"kind":"tool_call","call":{"id":"c","name":"n","args_text":"{\"a\": 1"}},{"kind":"tool_result","result":{"call_id":"c","parts":[{"type":"image","media_type":"image/png","sha256":"333d6b3a3c1f5db6c9bdda5939b136986d170f4649172a68368d54ecb44c2ff2","size":8}]}}]}`
	if string(b) != want {
		t.Fatalf("request:\n got %s\nwant %s", b, want)
	}
}

func TestLineDiff(t *testing.T) {
	a := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	b := []string{"a", "b", "c", "D", "e", "f", "g", "h", "i", "j", "k"}
	got := lineDiff(a, b)
	want := "@@ recorded line 2, asked line 2 @@\n  b\n  c\n- d\n+ D\n  e\n  f\n@@ recorded line 9, asked line 9 @@\n  i\n  j\n+ k\n"
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
	if d := lineDiff(a, a); d != "" {
		t.Fatalf("no change: %q", d)
	}
	// A long line is shown around its change.
	long := strings.Repeat("x", 1000)
	d := lineDiff([]string{long + "old" + long}, []string{long + "new" + long})
	if !strings.Contains(d, "- …"+strings.Repeat("x", lineWidth/4)+"old") || !strings.Contains(d, "+ …"+strings.Repeat("x", lineWidth/4)+"new") {
		t.Fatalf("long lines:\n%s", d)
	}
	// Too many changes are counted, not shown.
	var many, other []string
	for i := range 200 {
		many = append(many, "line "+strings.Repeat("a", i%7))
		other = append(other, "other "+strings.Repeat("b", i%5))
	}
	if d := lineDiff(many, other); strings.Count(d, "\n") > diffMaxLines+2 || !strings.Contains(d, "more changed lines not shown") {
		t.Fatalf("many changes: %d lines", strings.Count(d, "\n"))
	}
}
