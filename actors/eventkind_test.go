package actors_test

import (
	"testing"

	"github.com/infinity-runtime/infinity/actors"
)

func TestEventKindString(t *testing.T) {
	for _, tc := range []struct {
		k    actors.EventKind
		want string
	}{
		{actors.EventItem, "item"},
		{actors.EventThreadCreated, "thread_created"},
		{actors.EventThreadClosed, "thread_closed"},
		{actors.EventSliceError, "slice_error"},
		{actors.EventOAuth, "oauth"},
		{actors.EventSlice, "slice"},
		{actors.EventCompacted, "compacted"},
		{actors.EventKind(0), "EventKind(0)"},
		{actors.EventCompacted + 1, "EventKind(8)"},
		{actors.EventKind(255), "EventKind(255)"},
	} {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("EventKind(%d).String() = %q, want %q", uint8(tc.k), got, tc.want)
		}
	}
}
