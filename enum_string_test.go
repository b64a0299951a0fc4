package infinity_test

import (
	"fmt"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
)

func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{infinity.StreamText, "text"},
		{infinity.StreamToolCall, "tool_call"},
		{infinity.StreamDone, "done"},
		{infinity.StreamEventKind(0), "StreamEventKind(0)"},
		{infinity.StreamEventKind(4), "StreamEventKind(4)"},
		{infinity.StreamEventKind(255), "StreamEventKind(255)"},

		{infinity.ResultFinal, "final"},
		{infinity.ResultPending, "pending"},
		{infinity.ResultInterrupted, "interrupted"},
		{infinity.ResultState(3), "ResultState(3)"},
		{infinity.ResultState(255), "ResultState(255)"},

		{infinity.ThreadNormal, "normal"},
		{infinity.ThreadEvent, "event"},
		{infinity.ThreadCompaction, "compaction"},
		{infinity.ThreadKind(3), "ThreadKind(3)"},
		{infinity.ThreadKind(255), "ThreadKind(255)"},

		// ItemKind's names are its JSON form; unknown values stay "unknown".
		{infinity.KindUser, "user"},
		{infinity.KindAssistant, "assistant"},
		{infinity.KindToolCall, "tool_call"},
		{infinity.KindToolResult, "tool_result"},
		{infinity.KindSummary, "summary"},
		{infinity.ItemKind(0), "unknown"},
		{infinity.ItemKind(255), "unknown"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%T(%d).String() = %q, want %q", tc.v, tc.v, got, tc.want)
		}
	}
}

// The kinds print by name with %v and stay numbers with %d.
func TestEnumFormat(t *testing.T) {
	if got := fmt.Sprintf("%v %d", infinity.ThreadCompaction, infinity.ThreadCompaction); got != "compaction 2" {
		t.Errorf("got %q, want %q", got, "compaction 2")
	}
}
