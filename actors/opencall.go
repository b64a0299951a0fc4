package actors

import (
	"encoding/json"
	"time"

	"github.com/infinity-runtime/infinity"
)

// OpenCall returns the item of a thread's last own tool call that nothing
// has answered yet (a pending result does not answer it), or nil: what the
// thread waits on, for status displays (the daemon's API, infinity cloud).
func OpenCall(items []infinity.Item) *infinity.Item {
	answered := map[string]bool{}
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		switch it.Kind {
		case infinity.KindToolResult:
			if it.Result.State != infinity.ResultPending {
				answered[it.Result.CallID] = true
			}
		case infinity.KindToolCall:
			if !answered[it.Call.ID] {
				return &items[i]
			}
		case infinity.KindUser, infinity.KindAssistant:
			if BudgetNote(&it) {
				continue // it interrupts no call
			}
			return nil
		}
	}
	return nil
}

// WaitingForInput is what WaitingFor says of a thread that waits for user
// input (and nothing else).
const WaitingForInput = "input"

// WaitingFor says, for people, what a thread that is neither running nor
// sleeping waits for, given its open call (nil: none, so user input).
func WaitingFor(c *infinity.ToolCall) string {
	switch {
	case c == nil:
		return WaitingForInput
	case c.Name == "spawn_thread":
		return "a child's report"
	case c.Name == "sleep_until_event_or_input":
		return "input or an event"
	case c.Name == "sleep" || c.Name == "sleep_until":
		return "a timer"
	}
	return "the tool " + c.Name
}

// WakeTime returns when an open sleep or sleep_until call wakes its
// thread, reading its arguments as the tools do (a sleep counts from the
// call's time), and false when call is neither or its arguments say
// nothing the tool would have accepted.
func WakeTime(call *infinity.Item) (time.Time, bool) {
	if call == nil || call.Call == nil {
		return time.Time{}, false
	}
	switch c := call.Call; c.Name {
	case "sleep":
		var a struct {
			Seconds *float64 `json:"seconds"`
		}
		if json.Unmarshal(c.Args, &a) != nil || a.Seconds == nil || *a.Seconds < 0 {
			return time.Time{}, false
		}
		return call.At.Add(time.Duration(*a.Seconds * float64(time.Second))).UTC(), true
	case "sleep_until":
		var a struct {
			Date     string `json:"date"`
			Time     string `json:"time"`
			Timezone string `json:"timezone"`
		}
		if json.Unmarshal(c.Args, &a) != nil {
			return time.Time{}, false
		}
		t, err := parseWallTime(a.Date, a.Time, a.Timezone)
		if err != nil {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	return time.Time{}, false
}
