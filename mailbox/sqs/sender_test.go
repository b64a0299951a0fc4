package sqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
)

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// fakeSQS records SendMessage calls.
type fakeSQS struct {
	mu  sync.Mutex
	in  []*awssqs.SendMessageInput
	err error
}

func (f *fakeSQS) SendMessage(_ context.Context, in *awssqs.SendMessageInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.in = append(f.in, in)
	return &awssqs.SendMessageOutput{}, f.err
}

// fakeScheduler records CreateSchedule calls.
type fakeScheduler struct {
	in  []*scheduler.CreateScheduleInput
	err error
}

func (f *fakeScheduler) CreateSchedule(_ context.Context, in *scheduler.CreateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	f.in = append(f.in, in)
	return &scheduler.CreateScheduleOutput{}, f.err
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fakeSender(t *testing.T) (*sqs.Sender, *fakeSQS, *fakeScheduler, *clocktest.Clock) {
	t.Helper()
	q, s, c := &fakeSQS{}, &fakeScheduler{}, clocktest.New(epoch)
	sender, err := sqs.New(sqs.Config{
		SQS:              q,
		InputQueueURL:    "http://sqs/000000000000/in.fifo",
		RelayQueueURL:    "http://sqs/000000000000/relay",
		Scheduler:        s,
		InputQueueARN:    "arn:aws:sqs:us-east-1:000000000000:in.fifo",
		SchedulerRoleARN: roleARN,
		ScheduleGroup:    "g",
		Clock:            c,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sender, q, s, c
}

func TestPathByDelay(t *testing.T) {
	msg := infinity.InputMessage{ID: "m1", GroupID: "t1", Content: infinity.TextContent("x")}
	cases := []struct {
		delay    time.Duration
		path     string // "input", "relay" or "schedule"
		seconds  int32
		schedule string
	}{
		{-time.Hour, "input", 0, ""},
		{0, "input", 0, ""},
		{time.Nanosecond, "relay", 1, ""},
		{300 * time.Millisecond, "relay", 1, ""},
		{time.Second, "relay", 1, ""},
		{time.Second + time.Millisecond, "relay", 2, ""},
		{900 * time.Second, "relay", 900, ""},
		{900*time.Second + time.Nanosecond, "schedule", 0, "at(2026-01-02T03:19:06)"},
		{901 * time.Second, "schedule", 0, "at(2026-01-02T03:19:06)"},
		{48 * time.Hour, "schedule", 0, "at(2026-01-04T03:04:05)"},
	}
	for _, c := range cases {
		sender, q, s, clock := fakeSender(t)
		if err := sender.Send(context.Background(), msg, clock.Now().Add(c.delay)); err != nil {
			t.Fatalf("delay %v: %v", c.delay, err)
		}
		var path string
		switch {
		case len(s.in) == 1 && len(q.in) == 0:
			path = "schedule"
			if got := aws.ToString(s.in[0].ScheduleExpression); got != c.schedule {
				t.Errorf("delay %v: expression %s, want %s", c.delay, got, c.schedule)
			}
		case len(q.in) == 1 && len(s.in) == 0 && strings.HasSuffix(aws.ToString(q.in[0].QueueUrl), ".fifo"):
			path = "input"
			if aws.ToString(q.in[0].MessageDeduplicationId) != "t1/m1" || aws.ToString(q.in[0].MessageGroupId) != "t1" || q.in[0].DelaySeconds != 0 {
				t.Errorf("delay %v: input send %+v", c.delay, q.in[0])
			}
		case len(q.in) == 1 && len(s.in) == 0:
			path = "relay"
			if q.in[0].DelaySeconds != c.seconds {
				t.Errorf("delay %v: DelaySeconds %d, want %d", c.delay, q.in[0].DelaySeconds, c.seconds)
			}
		default:
			t.Fatalf("delay %v: %d SQS and %d Scheduler calls", c.delay, len(q.in), len(s.in))
		}
		if path != c.path {
			t.Errorf("delay %v: path %s, want %s", c.delay, path, c.path)
		}
	}
}

func TestScheduleFields(t *testing.T) {
	sender, _, s, clock := fakeSender(t)
	msg := infinity.InputMessage{ID: "m1", GroupID: "t1", Content: infinity.TextContent("x")}
	at := clock.Now().Add(time.Hour + 500*time.Millisecond).In(time.FixedZone("X", 3600))
	if err := sender.Send(context.Background(), msg, at); err != nil {
		t.Fatal(err)
	}
	in := s.in[0]
	body, _ := jsonString(msg)
	if aws.ToString(in.ScheduleExpression) != "at(2026-01-02T04:04:06)" || aws.ToString(in.ScheduleExpressionTimezone) != "UTC" ||
		in.FlexibleTimeWindow.Mode != schedtypes.FlexibleTimeWindowModeOff || in.ActionAfterCompletion != schedtypes.ActionAfterCompletionDelete ||
		aws.ToString(in.GroupName) != "g" || aws.ToString(in.Name) != sqs.ScheduleName("t1", "m1") ||
		aws.ToString(in.Target.Input) != body || aws.ToString(in.Target.SqsParameters.MessageGroupId) != "t1" ||
		aws.ToString(in.Target.RoleArn) != roleARN || aws.ToString(in.Target.Arn) != "arn:aws:sqs:us-east-1:000000000000:in.fifo" ||
		len(aws.ToString(in.ClientToken)) != 64 {
		b, _ := json.Marshal(in)
		t.Fatalf("CreateSchedule input: %s", b)
	}
}

func TestSchedulerErrors(t *testing.T) {
	msg := infinity.InputMessage{ID: "m1", GroupID: "t1", Content: infinity.TextContent("x")}
	cases := []struct {
		err       error
		ok        bool
		retryable bool
	}{
		{&schedtypes.ConflictException{Message: aws.String("exists")}, true, false},
		{&schedtypes.ThrottlingException{Message: aws.String("slow down")}, false, true},
		{&schedtypes.InternalServerException{Message: aws.String("oops")}, false, true},
		{&schedtypes.ValidationException{Message: aws.String("bad")}, false, false},
	}
	for _, c := range cases {
		sender, _, s, clock := fakeSender(t)
		s.err = c.err
		err := sender.Send(context.Background(), msg, clock.Now().Add(time.Hour))
		if (err == nil) != c.ok || errors.Is(err, infinity.ErrRetryable) != c.retryable {
			t.Errorf("%T: Send = %v, want ok %v retryable %v", c.err, err, c.ok, c.retryable)
		}
		if err != nil && !errors.Is(err, c.err) {
			t.Errorf("%T: the SDK error is not wrapped: %v", c.err, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := sqs.New(sqs.Config{RelayQueueURL: "http://x/relay.fifo", ScheduleGroup: "bad/group"})
	if !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("New = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"no SQS client", "no Scheduler client", "no input queue URL", "relay queue", "input queue ARN", "scheduler role ARN", "schedule group"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDedupID(t *testing.T) {
	allowed := func(s string) bool {
		return len(s) >= 1 && len(s) <= 128 && strings.IndexFunc(s, func(r rune) bool { return r < '!' || r > '~' }) < 0
	}
	const th = infinity.ThreadID("thread-1")
	long := strings.Repeat("x", 129)
	cases := []struct {
		id       infinity.MessageID
		verbatim bool
	}{
		{"call_abc-123", true},
		{`!"#$%&'()*+,-./:;<=>?@[\]^_` + "`{|}~", true},
		{infinity.MessageID(strings.Repeat("y", 128-len(th)-1)), true},
		{infinity.MessageID(strings.Repeat("y", 128-len(th))), false},
		{infinity.MessageID(long), false},
		{"with space", false},
		{"ünïcode", false},
	}
	for _, c := range cases {
		d := sqs.DedupID(th, c.id)
		if !allowed(d) {
			t.Errorf("DedupID(%q) = %q: not a valid SQS dedup id", c.id, d)
		}
		if (d == string(th)+"/"+string(c.id)) != c.verbatim {
			t.Errorf("DedupID(%q) = %q, verbatim %v", c.id, d, c.verbatim)
		}
		if sqs.DedupID(th, c.id) != d {
			t.Errorf("DedupID(%q) is not stable", c.id)
		}
	}
	if sqs.DedupID(th, infinity.MessageID(long)) == sqs.DedupID(th, infinity.MessageID(long+"z")) {
		t.Error("two long ids share a dedup id")
	}
	// SQS deduplicates across the queue: one id sent to two threads must
	// reach both.
	if sqs.DedupID("a", "m-1") == sqs.DedupID("b", "m-1") {
		t.Error("the same message id to two threads shares a dedup id")
	}
}

func TestScheduleName(t *testing.T) {
	long := infinity.ThreadID(strings.Repeat("t", 128))
	names := map[string]bool{}
	for _, p := range []struct {
		thread infinity.ThreadID
		id     infinity.MessageID
	}{{"a", "b.c"}, {"a.b", "c"}, {"t1", "m1"}, {"t2", "m1"}, {long, "m1"}, {long + "x", "m1"}, {"t1", infinity.MessageID(strings.Repeat("ü", 300))}} {
		n := sqs.ScheduleName(p.thread, p.id)
		if len(n) > 64 || strings.IndexFunc(n, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) >= 0 {
			t.Errorf("ScheduleName(%q, %q) = %q: not a valid schedule name", p.thread, p.id, n)
		}
		if n != sqs.ScheduleName(p.thread, p.id) {
			t.Errorf("ScheduleName(%q, %q) is not stable", p.thread, p.id)
		}
		if names[n] {
			t.Errorf("ScheduleName(%q, %q) = %q collides", p.thread, p.id, n)
		}
		names[n] = true
	}
}

func TestAtExpression(t *testing.T) {
	for in, want := range map[time.Time]string{
		epoch:                                  "at(2026-01-02T03:04:05)",
		epoch.Add(time.Nanosecond):             "at(2026-01-02T03:04:06)",
		epoch.Add(-time.Nanosecond):            "at(2026-01-02T03:04:05)",
		epoch.In(time.FixedZone("Y", -5*3600)): "at(2026-01-02T03:04:05)",
	} {
		if got := sqs.AtExpression(in); got != want {
			t.Errorf("AtExpression(%v) = %s, want %s", in, got, want)
		}
	}
}

func TestRelayForward(t *testing.T) {
	q := &fakeSQS{}
	relay, err := sqs.NewRelay(q, "http://sqs/000000000000/in.fifo")
	if err != nil {
		t.Fatal(err)
	}
	msg := infinity.InputMessage{ID: infinity.MessageID(strings.Repeat("z", 200)), GroupID: "t1", Content: infinity.TextContent("x")}
	// Its time is an hour away: forwarded anyway (the relay never re-delays).
	body := `{"message":` + mustJSON(t, msg) + `,"at":"` + time.Now().Add(time.Hour).Format(time.RFC3339Nano) + `"}`
	if err := relay.Forward(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	if len(q.in) != 1 {
		t.Fatalf("%d sends, want 1", len(q.in))
	}
	in := q.in[0]
	if aws.ToString(in.MessageDeduplicationId) != sqs.DedupID(msg.GroupID, msg.ID) || aws.ToString(in.MessageGroupId) != "t1" ||
		aws.ToString(in.MessageBody) != mustJSON(t, msg) || in.DelaySeconds != 0 {
		t.Fatalf("forwarded %+v", in)
	}

	// The relay gets what the sender puts on the relay queue.
	sender, sq, _, clock := fakeSender(t)
	if err := sender.Send(context.Background(), msg, clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	m, at, err := sqs.DecodeRelay(aws.ToString(sq.in[0].MessageBody))
	if err != nil || m.ID != msg.ID || !at.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("DecodeRelay = %v, %v, %v", m.ID, at, err)
	}

	q.err = errors.New("boom")
	if err := relay.Forward(context.Background(), body); err == nil || errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("Forward with a failing queue = %v", err)
	}
}

func TestDecodeRelayMalformed(t *testing.T) {
	for _, body := range []string{
		``,
		`null`,
		`[]`,
		`{}`,
		`{"message":null}`,
		`{"message":{"group_id":"t1","content":{"type":"text","text":"no id"}}}`,
		`{"message":{"id":"m1","group_id":"bad/thread","content":{"type":"text"}}}`,
		`{"message":{"id":"m1","group_id":"t1","content":{"type":"video"}}}`,
		`{"message":{"id":"m1","group_id":"t1","content":{"type":"text"}},"at":"yesterday"}`,
		`{"message":{"id":"m1","group_id":"t1","content":{"type":"text"}}}}`,
		`{"message":"{\"id\":\"m1\"}"}`,
	} {
		if _, _, err := sqs.DecodeRelay(body); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("DecodeRelay(%s) = %v, want ErrInvalid", body, err)
		}
		relay, _ := sqs.NewRelay(&fakeSQS{}, "http://x/in.fifo")
		if err := relay.Forward(context.Background(), body); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("Forward(%s) = %v, want ErrInvalid", body, err)
		}
	}
}

func TestDecodeInput(t *testing.T) {
	// The reference runtime's body: no id, legacy string synthetic.
	ref := `{"content":{"type":"toolresult","id":"call_1","content":[{"type":"text","text":"ok"}]},"group_id":"t1","metadata":{"a":1},"synthetic":"call_1","display_as":null,"subscription":true}`
	m, err := sqs.DecodeInput(ref)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "" || m.GroupID != "t1" || m.Synthetic == nil || m.Synthetic.Type != infinity.SyntheticSubscriptionEvent ||
		m.Synthetic.ToolCallID != "call_1" || infinity.PartsText(m.Content.Parts) != "ok" || !m.Subscription {
		t.Fatalf("decoded %+v", m)
	}
	m, err = sqs.DecodeInput(`{"id":"m9","group_id":"t1","content":{"type":"text","text":"hi"}}`)
	if err != nil || m.ID != "m9" {
		t.Fatalf("DecodeInput with id = %+v, %v", m, err)
	}
	for _, bad := range []string{``, `{}`, `{"group_id":"t1","content":{"type":"nope"}}`, `{"group_id":"t1","content":{"type":"text"}} x`} {
		if _, err := sqs.DecodeInput(bad); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("DecodeInput(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	s, err := jsonString(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
