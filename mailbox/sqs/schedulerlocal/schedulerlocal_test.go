package schedulerlocal_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/mailbox/sqs/schedulerlocal"
)

func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

var start = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// setup starts a stand-in on a manual clock and returns a real Scheduler
// client pointed at it. client may be nil when nothing fires.
func setup(t *testing.T, client schedulerlocal.SQSAPI) (*scheduler.Client, *schedulerlocal.Server, *clocktest.Clock) {
	t.Helper()
	emutest.AWSEnv(t)
	clock := clocktest.New(start)
	standin := schedulerlocal.New(client, schedulerlocal.WithClock(clock))
	srv := httptest.NewServer(standin)
	t.Cleanup(func() { standin.Stop(); srv.Close() })
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return scheduler.NewFromConfig(cfg, func(o *scheduler.Options) { o.BaseEndpoint = aws.String(srv.URL) }), standin, clock
}

func createInput(name, token, arn string) *scheduler.CreateScheduleInput {
	return &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		GroupName:                  aws.String("grp"),
		ScheduleExpression:         aws.String("at(2026-03-04T05:26:07)"),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		ClientToken:                aws.String(token),
		Target: &types.Target{
			Arn:           aws.String(arn),
			RoleArn:       aws.String("arn:aws:iam::000000000000:role/r"),
			Input:         aws.String(`{"hello":"✓ 👋"}`),
			SqsParameters: &types.SqsParameters{MessageGroupId: aws.String("thread-1")},
		},
	}
}

const fifoARN = "arn:aws:sqs:us-east-1:000000000000:q.fifo"

func TestAPI(t *testing.T) {
	client, standin, _ := setup(t, nil)
	ctx := context.Background()

	out, err := client.CreateSchedule(ctx, createInput("s1", "tok1", fifoARN))
	if err != nil {
		t.Fatalf("CreateSchedule: %v", err)
	}
	if aws.ToString(out.ScheduleArn) != "arn:aws:scheduler:us-east-1:000000000000:schedule/grp/s1" {
		t.Errorf("ScheduleArn = %s", aws.ToString(out.ScheduleArn))
	}
	// Same token: idempotent. Another token: ConflictException.
	if _, err := client.CreateSchedule(ctx, createInput("s1", "tok1", fifoARN)); err != nil {
		t.Errorf("repeat with the same token: %v", err)
	}
	var conflict *types.ConflictException
	if _, err := client.CreateSchedule(ctx, createInput("s1", "tok2", fifoARN)); !errors.As(err, &conflict) {
		t.Errorf("repeat with another token = %v, want ConflictException", err)
	}
	if n := len(standin.Created()); n != 1 {
		t.Errorf("Created has %d schedules, want 1", n)
	}

	got, err := client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("s1"), GroupName: aws.String("grp")})
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if aws.ToString(got.ScheduleExpression) != "at(2026-03-04T05:26:07)" || got.ActionAfterCompletion != types.ActionAfterCompletionDelete ||
		got.State != types.ScheduleStateEnabled || got.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff ||
		aws.ToString(got.Target.Input) != `{"hello":"✓ 👋"}` || aws.ToString(got.Target.SqsParameters.MessageGroupId) != "thread-1" ||
		aws.ToString(got.GroupName) != "grp" || got.CreationDate == nil || !got.CreationDate.Equal(start) {
		t.Errorf("GetSchedule = %+v", got)
	}

	var notFound *types.ResourceNotFoundException
	if _, err := client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("s1")}); !errors.As(err, &notFound) {
		t.Errorf("GetSchedule in the default group = %v, want ResourceNotFoundException", err)
	}
	if _, err := client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("s1"), GroupName: aws.String("grp")}); err != nil {
		t.Fatalf("DeleteSchedule: %v", err)
	}
	if _, err := client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("s1"), GroupName: aws.String("grp")}); !errors.As(err, &notFound) {
		t.Errorf("second DeleteSchedule = %v, want ResourceNotFoundException", err)
	}
	if _, err := client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("s1"), GroupName: aws.String("grp")}); !errors.As(err, &notFound) {
		t.Errorf("GetSchedule after delete = %v, want ResourceNotFoundException", err)
	}
}

func TestValidation(t *testing.T) {
	client, standin, _ := setup(t, nil)
	cases := map[string]func(in *scheduler.CreateScheduleInput){
		"rate expression": func(in *scheduler.CreateScheduleInput) { in.ScheduleExpression = aws.String("rate(5 minutes)") },
		"bad at":          func(in *scheduler.CreateScheduleInput) { in.ScheduleExpression = aws.String("at(2026-13-01T00:00:00)") },
		"bad timezone":    func(in *scheduler.CreateScheduleInput) { in.ScheduleExpressionTimezone = aws.String("Mars/Olympus") },
		"lambda target": func(in *scheduler.CreateScheduleInput) {
			in.Target.Arn = aws.String("arn:aws:lambda:us-east-1:0:function:f")
		},
		"fifo without group": func(in *scheduler.CreateScheduleInput) { in.Target.SqsParameters = nil },
		"bad name":           func(in *scheduler.CreateScheduleInput) { in.Name = aws.String("a:b") },
		"bad role":           func(in *scheduler.CreateScheduleInput) { in.Target.RoleArn = aws.String("role") },
	}
	for name, mutate := range cases {
		in := createInput("v1", "tok", fifoARN)
		mutate(in)
		var ve *types.ValidationException
		if _, err := client.CreateSchedule(context.Background(), in); !errors.As(err, &ve) {
			t.Errorf("%s: CreateSchedule = %v, want ValidationException", name, err)
		}
	}
	if standin.Len() != 0 {
		t.Errorf("%d schedules exist after invalid creates", standin.Len())
	}
}

func TestFiresAndDeletes(t *testing.T) {
	emutest.AWSEnv(t)
	endpoint := emutest.SQS(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sqsClient := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	queues, err := sqs.CreateQueues(ctx, sqsClient, string(infinity.NewThreadID()))
	if err != nil {
		t.Fatal(err)
	}
	client, standin, clock := setup(t, sqsClient)

	if _, err := client.CreateSchedule(ctx, createInput("fire-delete", "t1", queues.Input.ARN)); err != nil {
		t.Fatal(err)
	}
	keep := createInput("fire-keep", "t2", queues.Input.ARN)
	keep.ActionAfterCompletion = types.ActionAfterCompletionNone
	keep.Target.Input = aws.String(`{"kept":true}`)
	if _, err := client.CreateSchedule(ctx, keep); err != nil {
		t.Fatal(err)
	}

	clock.Advance(20*time.Minute - time.Second)
	if n := len(standin.Fired()); n != 0 {
		t.Fatalf("%d schedules fired early", n)
	}
	clock.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for len(standin.Fired()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fired %d of 2 schedules", len(standin.Fired()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if standin.Len() != 1 {
		t.Errorf("%d schedules left, want 1 (the NONE one)", standin.Len())
	}
	var notFound *types.ResourceNotFoundException
	if _, err := client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("fire-delete"), GroupName: aws.String("grp")}); !errors.As(err, &notFound) {
		t.Errorf("fired DELETE schedule: GetSchedule = %v, want ResourceNotFoundException", err)
	}

	bodies := map[string]bool{}
	for len(bodies) < 2 && time.Now().Before(deadline) {
		out, err := sqsClient.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(queues.Input.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameMessageGroupId},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if g := m.Attributes["MessageGroupId"]; g != "thread-1" {
				t.Errorf("message group %q, want thread-1", g)
			}
			bodies[aws.ToString(m.Body)] = true
			if _, err := sqsClient.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(queues.Input.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !bodies[`{"hello":"✓ 👋"}`] || !bodies[`{"kept":true}`] {
		t.Fatalf("received %v", bodies)
	}
}

func TestStopCancelsPending(t *testing.T) {
	client, standin, clock := setup(t, nil) // nil SQS: firing would panic
	if _, err := client.CreateSchedule(context.Background(), createInput("pending", "t", fifoARN)); err != nil {
		t.Fatal(err)
	}
	if clock.Pending() != 1 {
		t.Fatalf("%d timers pending, want 1", clock.Pending())
	}
	standin.Stop()
	if clock.Pending() != 0 {
		t.Fatalf("%d timers pending after Stop", clock.Pending())
	}
	clock.Advance(time.Hour)
	var ise *types.InternalServerException
	if _, err := client.CreateSchedule(context.Background(), createInput("late", "t", fifoARN)); !errors.As(err, &ise) {
		t.Fatalf("CreateSchedule after Stop = %v, want InternalServerException", err)
	}
}
