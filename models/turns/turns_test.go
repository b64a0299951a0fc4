package turns

import (
	"reflect"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
)

func TestGroup(t *testing.T) {
	call := func(id string) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: id, Name: "f", Args: []byte(`{}`)}}
	}
	res := func(id string) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: id}}
	}
	items := []infinity.Item{
		{Kind: infinity.KindUser, Text: "hi"},
		{Kind: infinity.KindAssistant, Text: "two calls"},
		call("a"), call("b"),
		res("a"), res("b"),
		{Kind: infinity.KindUser, Text: "and more"},
		{Kind: infinity.KindAssistant, Text: "done"},
		call("c"),
		{Kind: infinity.KindAssistant, Text: "a new response"},
	}
	got := Group(items)
	want := []Role{User, Assistant, User, Assistant, Assistant}
	var roles []Role
	for _, g := range got {
		roles = append(roles, g.Role)
	}
	if !reflect.DeepEqual(roles, want) {
		t.Fatalf("roles %v, want %v", roles, want)
	}
	if len(got[1].Calls) != 2 || got[1].Text != "two calls" || len(got[2].Results) != 2 || got[2].Text != "and more" {
		t.Fatalf("turns %+v", got)
	}
	if string(Args(infinity.ToolCall{Args: []byte(`[1]`)})) != "{}" || string(Args(infinity.ToolCall{Args: []byte(`{"x":1}`)})) != `{"x":1}` {
		t.Fatal("Args")
	}
}
