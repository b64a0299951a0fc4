package sendertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
)

// Harness is what an implementation provides to the suite.
type Harness struct {
	Sender infinity.InputSender
	// Clock is the clock the sender measures delays on; the suite advances
	// it. It may be nil for senders on real time: the suite then uses short
	// real delays (at most 2 s).
	Clock *clocktest.Clock
	// Received blocks until the next delivered message arrives or ctx ends
	// (then it returns an error).
	Received func(ctx context.Context) (infinity.InputMessage, error)
}

// Timing of the suite.
const (
	// ArriveTimeout bounds the wait for a message that should arrive.
	ArriveTimeout = 10 * time.Second
	// QuietWait is how long the suite listens to conclude that nothing
	// arrives.
	QuietWait = 150 * time.Millisecond
	// RealDelay is the delay used with a nil Clock.
	RealDelay = 300 * time.Millisecond
	// RealTolerance is how much earlier than its time a delayed message may
	// arrive with a nil Clock (clock skew between sender and observer).
	RealTolerance = 50 * time.Millisecond
)

// Run runs the conformance suite. newHarness is called once per case, with
// that case's t (register clean-ups on it).
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	cases := []struct {
		name string
		f    func(t *testing.T, h Harness)
	}{
		{"ImmediateFieldsIntact", testImmediateFieldsIntact},
		{"FIFOPerThread", testFIFOPerThread},
		{"SeveralThreads", testSeveralThreads},
		{"Delayed", testDelayed},
		{"PastAt", testPastAt},
		{"Invalid", testInvalid},
		{"RepeatedID", testRepeatedID},
		{"RepeatedIDDelayed", testRepeatedIDDelayed},
		{"CancelledContext", testCancelledContext},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Sender == nil || h.Received == nil {
				t.Fatal("sendertest: harness without Sender or Received")
			}
			c.f(t, h)
		})
	}
}

// now is the time on the sender's clock.
func now(h Harness) time.Time {
	if h.Clock != nil {
		return h.Clock.Now()
	}
	return time.Now()
}

// send sends msg and fails the test on error.
func send(t *testing.T, h Harness, msg infinity.InputMessage, at time.Time) {
	t.Helper()
	if err := h.Sender.Send(context.Background(), msg, at); err != nil {
		t.Fatalf("Send(%s to %s, at %v): %v", msg.ID, msg.GroupID, at, err)
	}
}

// receive returns the next delivered message, failing the test if none
// arrives within ArriveTimeout.
func receive(t *testing.T, h Harness) infinity.InputMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ArriveTimeout)
	defer cancel()
	m, err := h.Received(ctx)
	if err != nil {
		t.Fatalf("no message arrived within %v: %v", ArriveTimeout, err)
	}
	return m
}

// expectNothing fails the test if a message arrives within d.
func expectNothing(t *testing.T, h Harness, d time.Duration) {
	t.Helper()
	if m, ok := tryReceive(h, d); ok {
		t.Fatalf("unexpected delivery within %v: %s to %s", d, m.ID, m.GroupID)
	}
}

// tryReceive returns the next message if one arrives within d.
func tryReceive(h Harness, d time.Duration) (infinity.InputMessage, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := h.Received(ctx)
	return m, err == nil
}

// normalize returns m as it reads after a JSON round trip, the form a queue
// would hand back (compacted raw JSON, empty slices as nil).
func normalize(t *testing.T, m infinity.InputMessage) infinity.InputMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %s: %v", m.ID, err)
	}
	var n infinity.InputMessage
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatalf("unmarshal %s: %v", m.ID, err)
	}
	return n
}

// sameMessage fails the test unless got is want, up to JSON normalisation.
func sameMessage(t *testing.T, got, want infinity.InputMessage) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, w := normalize(t, got), normalize(t, want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Fatalf("delivered message differs:\n got %s\nwant %s", gb, wb)
	}
}

func text(thread infinity.ThreadID, id string) infinity.InputMessage {
	return infinity.InputMessage{
		ID:      infinity.MessageID(id),
		GroupID: thread,
		Content: infinity.TextContent("hello " + id),
	}
}

// fullMessages are messages using every field of InputMessage between them.
func fullMessages(thread infinity.ThreadID) []infinity.InputMessage {
	return []infinity.InputMessage{{
		ID:      "m-result",
		GroupID: thread,
		Content: infinity.Content{
			Type:   infinity.ContentToolResult,
			ID:     "call_1",
			CallID: "provider_call_1",
			Parts: []infinity.Part{
				{Type: "text", Text: "line one\nline two ✓"},
				{Type: "image", Data: "iVBORw0KGgo=", MediaType: "image/png"},
			},
		},
		Metadata: json.RawMessage(`{"user":"u1","n":3,"nested":{"a":[1,2]}}`),
		Synthetic: &infinity.Synthetic{
			Type:          infinity.SyntheticThreadReport,
			ToolCallID:    "call_1",
			ChildThreadID: "child-1",
			Associative:   true,
			Final:         true,
		},
		DisplayAs: []infinity.DisplaySegment{
			{Type: "text", Content: json.RawMessage(`"done"`)},
			{Type: "diff", Content: json.RawMessage(`{"path":"a.go","hunks":[]}`)},
		},
		Subscription: true,
	}, {
		ID:      "m-choice",
		GroupID: thread,
		Content: infinity.Content{
			Type:        infinity.ContentUserChoice,
			ID:          "call_2",
			Prompt:      "Pick one",
			Choices:     []string{"red", "green"},
			Default:     1,
			ResponseURL: "https://example.invalid/choice/2",
		},
	}, {
		ID:      "m-oauth",
		GroupID: thread,
		Content: infinity.Content{
			Type:    infinity.ContentOAuth,
			ID:      "call_3",
			AuthURL: "https://example.invalid/auth?state=x",
		},
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "call_3"},
	}, {
		ID:        "m-text",
		GroupID:   thread,
		Content:   infinity.TextContent("plain text"),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticContinue},
	}}
}

func testImmediateFieldsIntact(t *testing.T, h Harness) {
	msgs := fullMessages("thread-fields")
	for _, m := range msgs {
		send(t, h, m, time.Time{})
	}
	for _, want := range msgs {
		sameMessage(t, receive(t, h), want)
	}
}

// checkOrder collects n distinct messages and fails unless, for each thread,
// the first arrivals of its ids follow the order of want. Repeated arrivals
// of an id already seen are ignored: delivery is at least once.
func checkOrder(t *testing.T, h Harness, want []infinity.InputMessage) {
	t.Helper()
	rank := make(map[infinity.MessageID]int, len(want))
	for i, m := range want {
		rank[m.ID] = i
	}
	seen := make(map[infinity.MessageID]bool, len(want))
	last := make(map[infinity.ThreadID]int)
	for len(seen) < len(want) {
		m := receive(t, h)
		r, ok := rank[m.ID]
		if !ok {
			t.Fatalf("unexpected message %s to %s", m.ID, m.GroupID)
		}
		if seen[m.ID] {
			continue
		}
		if m.GroupID != want[r].GroupID {
			t.Fatalf("message %s delivered to %s, sent to %s", m.ID, m.GroupID, want[r].GroupID)
		}
		if prev, ok := last[m.GroupID]; ok && r < prev {
			t.Fatalf("thread %s: %s arrived after %s, sent in the other order", m.GroupID, m.ID, want[prev].ID)
		}
		sameMessage(t, m, want[r])
		seen[m.ID] = true
		last[m.GroupID] = r
	}
}

func testFIFOPerThread(t *testing.T, h Harness) {
	var msgs []infinity.InputMessage
	for i := range 50 {
		msgs = append(msgs, text("thread-fifo", fmt.Sprintf("m%02d", i)))
	}
	for _, m := range msgs {
		send(t, h, m, time.Time{})
	}
	checkOrder(t, h, msgs)
}

func testSeveralThreads(t *testing.T, h Harness) {
	// Sent interleaved; only the order within each thread is checked.
	var msgs []infinity.InputMessage
	for i := range 10 {
		for th := range 5 {
			thread := infinity.ThreadID(fmt.Sprintf("thread-multi-%d", th))
			msgs = append(msgs, text(thread, fmt.Sprintf("m%d-%02d", th, i)))
		}
	}
	for _, m := range msgs {
		send(t, h, m, time.Time{})
	}
	checkOrder(t, h, msgs)
}

func testDelayed(t *testing.T, h Harness) {
	msg := text("thread-delayed", "m-delayed")
	if h.Clock == nil {
		at := time.Now().Add(RealDelay)
		send(t, h, msg, at)
		got := receive(t, h)
		if arrived := time.Now(); arrived.Before(at.Add(-RealTolerance)) {
			t.Fatalf("delayed message arrived %v before its time", at.Sub(arrived))
		}
		sameMessage(t, got, msg)
		return
	}
	const delay = time.Hour
	at := h.Clock.Now().Add(delay)
	send(t, h, msg, at)
	expectNothing(t, h, QuietWait)
	h.Clock.Advance(delay - time.Millisecond)
	expectNothing(t, h, QuietWait)
	h.Clock.Advance(2 * time.Millisecond)
	sameMessage(t, receive(t, h), msg)
}

func testPastAt(t *testing.T, h Harness) {
	msg := text("thread-past", "m-past")
	send(t, h, msg, now(h).Add(-time.Hour))
	sameMessage(t, receive(t, h), msg)

	// Exactly now is not in the future either.
	msg2 := text("thread-past", "m-now")
	send(t, h, msg2, now(h))
	sameMessage(t, receive(t, h), msg2)
}

func testInvalid(t *testing.T, h Harness) {
	noID := text("thread-invalid", "")
	noThread := text("", "m-no-thread")
	badThread := text("thread/with/slashes", "m-bad-thread")
	badType := text("thread-invalid", "m-bad-type")
	badType.Content.Type = "video"
	resultNoCall := text("thread-invalid", "m-result-no-call")
	resultNoCall.Content = infinity.Content{Type: infinity.ContentToolResult, Parts: []infinity.Part{{Type: "text", Text: "x"}}}

	cases := []struct {
		name string
		msg  infinity.InputMessage
	}{
		{"no id", noID},
		{"no group id", noThread},
		{"bad group id", badThread},
		{"bad content type", badType},
		{"tool result without call id", resultNoCall},
	}
	for _, c := range cases {
		for _, at := range []time.Time{{}, now(h).Add(time.Hour)} {
			err := h.Sender.Send(context.Background(), c.msg, at)
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Errorf("%s (at %v): Send = %v, want an error wrapping ErrInvalid", c.name, at, err)
			}
		}
	}
	if h.Clock != nil {
		// Had anything been scheduled, it would fire now.
		h.Clock.Advance(2 * time.Hour)
	}
	expectNothing(t, h, QuietWait)
}

// A repeated send of one message id must be delivered at least once. It may
// be delivered more than once: the receiving thread applies each message id
// once (the dedup in the thread), so repeats are harmless and are not
// counted here.
func testRepeatedID(t *testing.T, h Harness) {
	msg := text("thread-repeat", "m-repeat")
	send(t, h, msg, time.Time{})
	send(t, h, msg, time.Time{})
	sameMessage(t, receive(t, h), msg)
	drainSame(t, h, msg.ID)
}

// The same for a delayed message sent twice before its time (an outbox
// re-sent after a crash, say).
func testRepeatedIDDelayed(t *testing.T, h Harness) {
	msg := text("thread-repeat", "m-repeat-delayed")
	if h.Clock == nil {
		at := time.Now().Add(RealDelay)
		send(t, h, msg, at)
		send(t, h, msg, at)
		sameMessage(t, receive(t, h), msg)
		drainSame(t, h, msg.ID)
		return
	}
	at := h.Clock.Now().Add(time.Minute)
	send(t, h, msg, at)
	h.Clock.Advance(time.Second)
	send(t, h, msg, at)
	expectNothing(t, h, QuietWait)
	h.Clock.Advance(time.Minute)
	sameMessage(t, receive(t, h), msg)
	drainSame(t, h, msg.ID)
}

// drainSame listens for QuietWait and fails on any message but a repeat of
// id.
func drainSame(t *testing.T, h Harness, id infinity.MessageID) {
	t.Helper()
	for {
		m, ok := tryReceive(h, QuietWait)
		if !ok {
			return
		}
		if m.ID != id {
			t.Fatalf("unexpected message %s to %s", m.ID, m.GroupID)
		}
	}
}

func testCancelledContext(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, at := range []time.Time{{}, now(h).Add(time.Hour)} {
		err := h.Sender.Send(ctx, text("thread-cancel", "m-cancel"), at)
		if err == nil {
			t.Fatalf("Send with a cancelled context (at %v) returned nil", at)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send with a cancelled context (at %v) = %v, want an error wrapping context.Canceled", at, err)
		}
	}
}
