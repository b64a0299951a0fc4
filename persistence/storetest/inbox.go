package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
)

// InboxStore is a StateStore that also keeps the durable inbox: marking a
// message processed takes it out.
type InboxStore interface {
	infinity.StateStore
	infinity.Inbox
}

var inboxCases = []clockedCase[InboxStore]{
	{"RoundTripInOrder", testInboxRoundTrip},
	{"RepeatKeepsFirst", testInboxRepeat},
	{"ProcessedLeaves", testInboxProcessed},
	{"ProcessedNotPut", testInboxProcessedNotPut},
	{"Drop", testInboxDrop},
	{"Invalid", testInboxInvalid},
	{"Isolation", testInboxIsolation},
	{"Concurrent", testInboxConcurrent},
}

// RunInbox runs the Inbox suite; newStore is called once per case with a
// *clocktest.Clock the store must measure expiry on.
func RunInbox(t *testing.T, newStore func(t *testing.T, clock infinity.Clock) InboxStore) {
	t.Helper()
	runClocked(t, inboxCases, newStore)
}

func inboxMsg(thread infinity.ThreadID, id, text string) infinity.InputMessage {
	return infinity.InputMessage{ID: infinity.MessageID(id), GroupID: thread, Content: infinity.TextContent(text)}
}

func put(t *testing.T, s InboxStore, m infinity.InputMessage, due time.Time, want bool) {
	t.Helper()
	got, err := s.Put(t.Context(), m, due)
	noErr(t, err, fmt.Sprintf("Put %s/%s", m.GroupID, m.ID))
	if got != want {
		t.Fatalf("Put %s/%s reported %v, want %v", m.GroupID, m.ID, got, want)
	}
}

func checkWaiting(t *testing.T, s InboxStore, want []infinity.Queued, what string) {
	t.Helper()
	got, err := s.Waiting(t.Context())
	noErr(t, err, "Waiting")
	if got == nil {
		got = []infinity.Queued{}
	}
	if want == nil {
		want = []infinity.Queued{}
	}
	if d := jsonDiff(got, want); d != "" {
		t.Fatalf("%s: Waiting differs:%s", what, d)
	}
}

func testInboxRoundTrip(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	id := idsFor()
	a, b := id("a"), id("b")
	rich := inboxMsg(b, "m2", "")
	rich.Content = infinity.ResultContent("call-1", "done")
	rich.Synthetic = &infinity.Synthetic{Type: infinity.SyntheticThreadReport, ChildThreadID: a, ToolCallID: "call-1"}
	rich.Metadata = json.RawMessage(`{"k": [1, 2]}`)
	want := []infinity.Queued{
		{Message: inboxMsg(a, "m1", "hello")},
		{Message: rich, At: at(30)},
		{Message: inboxMsg(a, "m3", "later"), At: at(5)},
	}
	checkWaiting(t, s, nil, "empty store")
	for _, q := range want {
		put(t, s, q.Message, q.At, true)
	}
	checkWaiting(t, s, want, "after three puts")
}

func testInboxRepeat(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	a := idsFor()("a")
	put(t, s, inboxMsg(a, "m1", "first"), at(3), true)
	put(t, s, inboxMsg(a, "m1", "second"), time.Time{}, true)
	checkWaiting(t, s, []infinity.Queued{{Message: inboxMsg(a, "m1", "first"), At: at(3)}}, "after a repeat")
}

func testInboxProcessed(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	id := idsFor()
	a, b := id("a"), id("b")
	put(t, s, inboxMsg(a, "m1", "x"), time.Time{}, true)
	put(t, s, inboxMsg(a, "m2", "y"), time.Time{}, true)
	put(t, s, inboxMsg(b, "m1", "z"), time.Time{}, true)
	noErr(t, s.MarkProcessed(t.Context(), a, []infinity.MessageID{"m1", "other"}, time.Hour), "MarkProcessed")
	checkWaiting(t, s, []infinity.Queued{{Message: inboxMsg(a, "m2", "y")}, {Message: inboxMsg(b, "m1", "z")}},
		"after marking a/m1 processed")
}

func testInboxProcessedNotPut(t *testing.T, s InboxStore, clock *clocktest.Clock) {
	a := idsFor()("a")
	noErr(t, s.MarkProcessed(t.Context(), a, []infinity.MessageID{"m1"}, time.Minute), "MarkProcessed")
	put(t, s, inboxMsg(a, "m1", "resent"), time.Time{}, false)
	checkWaiting(t, s, nil, "after putting a processed message")
	clock.Advance(2 * time.Minute)
	put(t, s, inboxMsg(a, "m1", "resent"), time.Time{}, true)
	checkWaiting(t, s, []infinity.Queued{{Message: inboxMsg(a, "m1", "resent")}}, "after the mark expired")
}

func testInboxDrop(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	id := idsFor()
	a, b := id("a"), id("b")
	put(t, s, inboxMsg(a, "m1", "x"), time.Time{}, true)
	put(t, s, inboxMsg(a, "m2", "y"), time.Time{}, true)
	put(t, s, inboxMsg(b, "m1", "z"), time.Time{}, true)
	noErr(t, s.Drop(t.Context(), a, "m1", "absent"), "Drop")
	noErr(t, s.Drop(t.Context(), id("nobody"), "m1"), "Drop for an unknown thread")
	noErr(t, s.Drop(t.Context(), a), "Drop of nothing")
	checkWaiting(t, s, []infinity.Queued{{Message: inboxMsg(a, "m2", "y")}, {Message: inboxMsg(b, "m1", "z")}}, "after Drop")
}

func testInboxInvalid(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	a := idsFor()("a")
	_, err := s.Put(t.Context(), inboxMsg(a, "", "x"), time.Time{})
	wantErr(t, err, infinity.ErrInvalid, "Put without an id")
	_, err = s.Put(t.Context(), inboxMsg("", "m1", "x"), time.Time{})
	wantErr(t, err, infinity.ErrInvalid, "Put without a thread")
	checkWaiting(t, s, nil, "after invalid puts")
}

func testInboxIsolation(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	a := idsFor()("a")
	m := inboxMsg(a, "m1", "x")
	m.Metadata = json.RawMessage(`{"a":1}`)
	put(t, s, m, time.Time{}, true)
	m.Metadata[5] = '2'
	got, err := s.Waiting(t.Context())
	noErr(t, err, "Waiting")
	got[0].Message.Metadata[5] = '3'
	want := inboxMsg(a, "m1", "x")
	want.Metadata = json.RawMessage(`{"a":1}`)
	checkWaiting(t, s, []infinity.Queued{{Message: want}}, "after editing the caller's copies")
}

func testInboxConcurrent(t *testing.T, s InboxStore, _ *clocktest.Clock) {
	id := idsFor()
	var wg sync.WaitGroup
	for w := range 4 {
		th := id(fmt.Sprintf("w%d", w))
		wg.Go(func() {
			for i := range 25 {
				if _, err := s.Put(t.Context(), inboxMsg(th, fmt.Sprint("m", i), "x"), time.Time{}); err != nil {
					t.Error(err)
				}
				if i%5 == 4 {
					if err := s.MarkProcessed(t.Context(), th, []infinity.MessageID{infinity.MessageID(fmt.Sprint("m", i))}, time.Hour); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	got, err := s.Waiting(t.Context())
	noErr(t, err, "Waiting")
	if len(got) != 80 {
		t.Fatalf("Waiting holds %d messages, want 80 (100 put, 20 processed)", len(got))
	}
	perThread := map[infinity.ThreadID]int{}
	for _, q := range got {
		n := 0
		fmt.Sscanf(string(q.Message.ID), "m%d", &n)
		if n < perThread[q.Message.GroupID] {
			t.Fatalf("thread %s: %s came back after m%d: Waiting is not in put order", q.Message.GroupID, q.Message.ID, perThread[q.Message.GroupID])
		}
		perThread[q.Message.GroupID] = n
	}
}
