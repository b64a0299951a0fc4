package sqs_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
	"github.com/infinity-runtime/infinity/mailbox/sendertest"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/mailbox/sqs/schedulerlocal"
)

func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// env is one test's queues, sender, relay poller and Scheduler stand-in, all
// on the SQS emulator.
type env struct {
	client   *awssqs.Client
	queues   sqs.Queues
	standin  *schedulerlocal.Server
	sender   *sqs.Sender
	received chan infinity.InputMessage
}

const roleARN = "arn:aws:iam::000000000000:role/scheduler"

// newEnv builds an env whose stand-in scales time by scale.
func newEnv(t *testing.T, scale float64) *env {
	t.Helper()
	emutest.AWSEnv(t)
	endpoint := emutest.SQS(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	client := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	queues, err := sqs.CreateQueues(ctx, client, string(infinity.NewThreadID()), sqs.WithVisibilityTimeout(30*time.Second))
	if err != nil {
		t.Fatalf("CreateQueues: %v", err)
	}
	standin := schedulerlocal.New(client, schedulerlocal.WithTimeScale(scale))
	srv := httptest.NewServer(standin)
	schedClient := scheduler.NewFromConfig(cfg, func(o *scheduler.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	sender, err := sqs.New(sqs.Config{
		SQS:              client,
		InputQueueURL:    queues.Input.URL,
		RelayQueueURL:    queues.Relay.URL,
		Scheduler:        schedClient,
		InputQueueARN:    queues.Input.ARN,
		SchedulerRoleARN: roleARN,
		ScheduleGroup:    "infinity-test",
	})
	if err != nil {
		t.Fatalf("sqs.New: %v", err)
	}
	relay, err := sqs.NewRelay(client, queues.Input.URL)
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	e := &env{client: client, queues: queues, standin: standin, sender: sender, received: make(chan infinity.InputMessage, 100)}

	pollCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the relay function
		defer wg.Done()
		poll(pollCtx, t, client, queues.Relay.URL, func(body string) bool {
			if err := relay.Forward(pollCtx, body); err != nil {
				if pollCtx.Err() == nil {
					t.Errorf("relay: %v", err)
				}
				return false
			}
			return true
		})
	}()
	go func() { // the consumer
		defer wg.Done()
		poll(pollCtx, t, client, queues.Input.URL, func(body string) bool {
			m, err := sqs.DecodeInput(body)
			if err != nil {
				t.Errorf("input queue body %q: %v", body, err)
				return true
			}
			select {
			case e.received <- m:
				return true
			case <-pollCtx.Done():
				return false
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		standin.Stop()
		srv.Close()
	})
	return e
}

// poll long-polls queueURL until ctx ends, deleting each message handle
// accepts.
func poll(ctx context.Context, t *testing.T, client *awssqs.Client, queueURL string, handle func(body string) bool) {
	for ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl:            aws.String(queueURL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			if ctx.Err() == nil {
				t.Logf("receive from %s: %v", queueURL, err)
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		for _, m := range out.Messages {
			if !handle(aws.ToString(m.Body)) {
				continue
			}
			if _, err := client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
				t.Errorf("delete from %s: %v", queueURL, err)
			}
		}
	}
}

func (e *env) receive(ctx context.Context) (infinity.InputMessage, error) {
	select {
	case m := <-e.received:
		return m, nil
	case <-ctx.Done():
		return infinity.InputMessage{}, ctx.Err()
	}
}

func TestSenderConformance(t *testing.T) {
	sendertest.Run(t, func(t *testing.T) sendertest.Harness {
		e := newEnv(t, 1)
		return sendertest.Harness{Sender: e.sender, Received: e.receive}
	})
}

func TestLongDelayThroughScheduler(t *testing.T) {
	e := newEnv(t, 0.001) // 20 minutes fire in 1.2 s
	msg := infinity.InputMessage{ID: "wake-1", GroupID: "thread-long", Content: infinity.TextContent("wake up ☕ 🌙")}
	at := time.Now().Add(20 * time.Minute)
	for range 2 { // a repeat is the same schedule
		if err := e.sender.Send(context.Background(), msg, at); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	created := e.standin.Created()
	if len(created) != 1 {
		t.Fatalf("stand-in created %d schedules, want 1", len(created))
	}
	c := created[0]
	body, _ := jsonString(msg)
	checks := []struct{ field, got, want string }{
		{"Name", c.Name, sqs.ScheduleName(msg.GroupID, msg.ID)},
		{"GroupName", c.GroupName, "infinity-test"},
		{"ScheduleExpression", c.ScheduleExpression, sqs.AtExpression(at)},
		{"ScheduleExpressionTimezone", c.ScheduleExpressionTimezone, "UTC"},
		{"FlexibleTimeWindow.Mode", c.FlexibleTimeWindow.Mode, "OFF"},
		{"ActionAfterCompletion", c.ActionAfterCompletion, "DELETE"},
		{"Target.Arn", c.Target.Arn, e.queues.Input.ARN},
		{"Target.RoleArn", c.Target.RoleArn, roleARN},
		{"Target.Input", c.Target.Input, body},
		{"Target.SqsParameters.MessageGroupId", c.Target.SqsParameters.MessageGroupId, string(msg.GroupID)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.field, ch.got, ch.want)
		}
	}
	if c.ClientToken == "" {
		t.Error("no ClientToken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := e.receive(ctx)
	if err != nil {
		t.Fatalf("scheduled message did not arrive: %v", err)
	}
	if got.ID != msg.ID || got.Content.Text != msg.Content.Text || got.GroupID != msg.GroupID {
		t.Fatalf("got %+v, want %+v", got, msg)
	}
	waitFor(t, "the fired schedule to be deleted", func() bool { return e.standin.Len() == 0 })
	if n := len(e.standin.Fired()); n != 1 {
		t.Fatalf("fired %d schedules, want 1", n)
	}
}

func TestEmojiRoundTrip(t *testing.T) {
	e := newEnv(t, 1)
	now := time.Now()
	msgs := []struct {
		msg infinity.InputMessage
		at  time.Time
	}{
		{infinity.InputMessage{ID: "emoji-now", GroupID: "thread-emoji", Content: infinity.TextContent("hi 👋🏽 𝄞")}, time.Time{}},
		{infinity.InputMessage{ID: "emoji-later", GroupID: "thread-emoji-2", Content: infinity.TextContent("later 🚀")}, now.Add(100 * time.Millisecond)},
	}
	for _, m := range msgs {
		if err := e.sender.Send(context.Background(), m.msg, m.at); err != nil {
			t.Fatalf("Send %s: %v", m.msg.ID, err)
		}
	}
	got := map[infinity.MessageID]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < len(msgs) {
		m, err := e.receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(got), len(msgs), err)
		}
		got[m.ID] = m.Content.Text
	}
	for _, m := range msgs {
		if got[m.msg.ID] != m.msg.Content.Text {
			t.Errorf("%s: got %q, want %q", m.msg.ID, got[m.msg.ID], m.msg.Content.Text)
		}
	}
}

// TestDedupOnQueue: two immediate sends of one long id are one message.
func TestDedupOnQueue(t *testing.T) {
	e := newEnv(t, 1)
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	msg := infinity.InputMessage{ID: infinity.MessageID(long), GroupID: "thread-dedup", Content: infinity.TextContent("once")}
	for range 2 {
		if err := e.sender.Send(context.Background(), msg, time.Time{}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.receive(ctx); err != nil {
		t.Fatalf("no message: %v", err)
	}
	quiet, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	if m, err := e.receive(quiet); err == nil {
		t.Fatalf("duplicate delivered: %s", m.ID[:10])
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

// TestQueueAttributes: the input queue is FIFO, content-deduplicated (for
// Scheduler) and dedups per thread. fauxqs stores DeduplicationScope but
// dedups queue-wide regardless, so only the attribute is checked here.
func TestQueueAttributes(t *testing.T) {
	e := newEnv(t, 1)
	out, err := e.client.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(e.queues.Input.URL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true", "DeduplicationScope": "messageGroup", "VisibilityTimeout": "30"} {
		if got := out.Attributes[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasSuffix(e.queues.Input.ARN, ":"+e.queues.Input.URL[strings.LastIndex(e.queues.Input.URL, "/")+1:]) ||
		strings.HasSuffix(e.queues.Relay.URL, ".fifo") || e.queues.Relay.ARN == "" {
		t.Errorf("queues %+v", e.queues)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
