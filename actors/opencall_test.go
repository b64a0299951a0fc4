package actors_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

func TestOpenCallAndWakeTime(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	call := func(id, name, args string) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolCall, At: at, Call: &infinity.ToolCall{ID: id, Name: name, Args: json.RawMessage(args)}}
	}
	result := func(id string, state infinity.ResultState) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: id, State: state}}
	}
	items := []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}, call("a", "spawn_thread", `{}`), result("a", infinity.ResultFinal),
		call("b", "sleep", `{"seconds": 90}`), result("b", infinity.ResultPending)}
	open := actors.OpenCall(items)
	if open == nil || open.Call.ID != "b" {
		t.Fatalf("open call %+v, want b (a pending result does not answer it)", open)
	}
	if got, ok := actors.WakeTime(open); !ok || !got.Equal(at.Add(90*time.Second)) {
		t.Errorf("sleep wakes at %v, %v", got, ok)
	}
	if actors.OpenCall(append(items, result("b", infinity.ResultFinal))) != nil {
		t.Error("an answered call is open")
	}
	for args, want := range map[string]string{
		`{"date":"2026-07-01","time":"09:30","timezone":"Europe/Paris"}`:      "2026-07-01T07:30:00Z",
		`{"date":"2026-10-25","time":"02:30:00","timezone":"Europe/Paris"}`:   "", // happens twice: the tool refuses it
		`{"date":"2026-07-01","time":"09:30","timezone":"Mars/Olympus_Mons"}`: "",
	} {
		c := call("c", "sleep_until", args)
		got, ok := actors.WakeTime(&c)
		if (want == "") == ok || ok && got.Format(time.RFC3339) != want {
			t.Errorf("%s: %v, %v; want %q", args, got, ok, want)
		}
	}
	if c := call("d", "fetch", `{}`); func() bool { _, ok := actors.WakeTime(&c); return ok }() {
		t.Error("a tool call that is no sleep has a wake time")
	}
}
