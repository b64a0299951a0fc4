package sqs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
)

// MaxDelay is the longest delay the relay queue can hold (SQS's maximum
// DelaySeconds); longer ones go through Scheduler.
const MaxDelay = 900 * time.Second

// SQSAPI is the part of the SQS client the sender and the relay use.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *awssqs.SendMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
}

// SchedulerAPI is the part of the EventBridge Scheduler client the sender
// uses.
type SchedulerAPI interface {
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
}

// Config configures a Sender. Every field but Clock is required.
type Config struct {
	// SQS sends to the input and relay queues.
	SQS SQSAPI
	// InputQueueURL is the FIFO input queue (content-based dedup on).
	InputQueueURL string
	// RelayQueueURL is the standard delay queue the relay function drains.
	RelayQueueURL string
	// Scheduler creates the schedules of delays over MaxDelay.
	Scheduler SchedulerAPI
	// InputQueueARN is the schedules' target.
	InputQueueARN string
	// SchedulerRoleARN is the role Scheduler assumes to send to the queue.
	SchedulerRoleARN string
	// ScheduleGroup is the schedule group the schedules are created in.
	ScheduleGroup string
	// Clock measures delays (default infinity.SystemClock{}).
	Clock infinity.Clock
}

// Sender is the cloud infinity.InputSender. It is safe for concurrent use.
type Sender struct {
	cfg Config
}

var _ infinity.InputSender = (*Sender)(nil)

// New returns a Sender, or an error wrapping infinity.ErrInvalid naming the
// first missing or malformed field of cfg.
func New(cfg Config) (*Sender, error) {
	if cfg.Clock == nil {
		cfg.Clock = infinity.SystemClock{}
	}
	var problems []string
	if cfg.SQS == nil {
		problems = append(problems, "no SQS client")
	}
	if cfg.Scheduler == nil {
		problems = append(problems, "no Scheduler client")
	}
	if cfg.InputQueueURL == "" {
		problems = append(problems, "no input queue URL")
	} else if !strings.HasSuffix(cfg.InputQueueURL, ".fifo") {
		problems = append(problems, fmt.Sprintf("input queue %q is not a FIFO queue (no .fifo suffix)", cfg.InputQueueURL))
	}
	if cfg.RelayQueueURL == "" {
		problems = append(problems, "no relay queue URL")
	} else if strings.HasSuffix(cfg.RelayQueueURL, ".fifo") {
		problems = append(problems, fmt.Sprintf("relay queue %q is a FIFO queue (per-message delays need a standard queue)", cfg.RelayQueueURL))
	}
	if !strings.HasPrefix(cfg.InputQueueARN, "arn:") || !strings.HasSuffix(cfg.InputQueueARN, ".fifo") {
		problems = append(problems, fmt.Sprintf("input queue ARN %q is not the ARN of a FIFO queue", cfg.InputQueueARN))
	}
	if !strings.HasPrefix(cfg.SchedulerRoleARN, "arn:") {
		problems = append(problems, fmt.Sprintf("scheduler role ARN %q is not an ARN", cfg.SchedulerRoleARN))
	}
	if !validScheduleName(cfg.ScheduleGroup) {
		problems = append(problems, fmt.Sprintf("schedule group %q is not 1 to 64 characters of [0-9a-zA-Z-_.]", cfg.ScheduleGroup))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sqs sender config: %s: %w", strings.Join(problems, "; "), infinity.ErrInvalid)
	}
	return &Sender{cfg: cfg}, nil
}

// Send delivers msg to the thread msg.GroupID not before at (see the package
// doc for the three paths). It returns ctx.Err() if ctx is done, an error
// wrapping infinity.ErrInvalid for a message without an id or failing
// InputMessage.Validate, and a wrapped SDK error otherwise (also wrapping
// infinity.ErrRetryable when the SDK classifies it as retryable).
func (s *Sender) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body, err := encodeInput(msg)
	if err != nil {
		return err
	}
	var d time.Duration
	if !at.IsZero() {
		d = at.Sub(s.cfg.Clock.Now())
	}
	switch {
	case d <= 0:
		return sendInput(ctx, s.cfg.SQS, s.cfg.InputQueueURL, msg, body)
	case d <= MaxDelay:
		return s.sendRelay(ctx, msg, body, at, d)
	default:
		return s.schedule(ctx, msg, body, at)
	}
}

// encodeInput validates msg and returns its JSON.
func encodeInput(msg infinity.InputMessage) (string, error) {
	if msg.ID == "" {
		return "", fmt.Errorf("sqs: send to %q: input message without an id: %w", msg.GroupID, infinity.ErrInvalid)
	}
	if err := msg.Validate(); err != nil {
		return "", fmt.Errorf("sqs: send %s: %w", msg.ID, err)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		// Only a malformed json.RawMessage (metadata, display_as) gets here.
		return "", fmt.Errorf("sqs: send %s: encode: %w: %v", msg.ID, infinity.ErrInvalid, err)
	}
	return string(b), nil
}

// sendInput sends body (msg's JSON) to the FIFO input queue.
func sendInput(ctx context.Context, client SQSAPI, queueURL string, msg infinity.InputMessage, body string) error {
	_, err := client.SendMessage(ctx, &awssqs.SendMessageInput{
		QueueUrl:               aws.String(queueURL),
		MessageBody:            aws.String(body),
		MessageGroupId:         aws.String(string(msg.GroupID)),
		MessageDeduplicationId: aws.String(DedupID(msg.GroupID, msg.ID)),
	})
	if err != nil {
		return wrap(fmt.Sprintf("sqs: send %s to %s", msg.ID, msg.GroupID), err)
	}
	return nil
}

func (s *Sender) sendRelay(ctx context.Context, msg infinity.InputMessage, body string, at time.Time, d time.Duration) error {
	env, err := json.Marshal(envelope{Message: json.RawMessage(body), At: at.UTC()})
	if err != nil {
		return fmt.Errorf("sqs: relay %s: encode: %w: %v", msg.ID, infinity.ErrInvalid, err)
	}
	_, err = s.cfg.SQS.SendMessage(ctx, &awssqs.SendMessageInput{
		QueueUrl:     aws.String(s.cfg.RelayQueueURL),
		MessageBody:  aws.String(string(env)),
		DelaySeconds: delaySeconds(d),
	})
	if err != nil {
		return wrap(fmt.Sprintf("sqs: relay %s to %s in %v", msg.ID, msg.GroupID, d), err)
	}
	return nil
}

// delaySeconds rounds a positive delay up to whole seconds: a message must
// not arrive early, and 0 would mean no delay at all.
func delaySeconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

func (s *Sender) schedule(ctx context.Context, msg infinity.InputMessage, body string, at time.Time) error {
	expr := AtExpression(at)
	name := ScheduleName(msg.GroupID, msg.ID)
	_, err := s.cfg.Scheduler.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		GroupName:                  aws.String(s.cfg.ScheduleGroup),
		ScheduleExpression:         aws.String(expr),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      schedtypes.ActionAfterCompletionDelete,
		// The token covers the time too: a repeat with another time gets
		// the name's ConflictException (first wins) rather than an
		// idempotency mismatch.
		ClientToken: aws.String(hash64(string(msg.GroupID), string(msg.ID), expr)[:64]),
		Target: &schedtypes.Target{
			Arn:           aws.String(s.cfg.InputQueueARN),
			RoleArn:       aws.String(s.cfg.SchedulerRoleARN),
			Input:         aws.String(body),
			SqsParameters: &schedtypes.SqsParameters{MessageGroupId: aws.String(string(msg.GroupID))},
		},
	})
	var conflict *schedtypes.ConflictException
	if errors.As(err, &conflict) {
		return nil // the schedule exists: a repeated Send
	}
	if err != nil {
		return wrap(fmt.Sprintf("sqs: schedule %s to %s at %s", msg.ID, msg.GroupID, expr), err)
	}
	return nil
}

// AtExpression returns Scheduler's one-time expression for t, in UTC, rounded
// up to the second (a schedule must not fire early).
func AtExpression(t time.Time) string {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return "at(" + t.Format("2006-01-02T15:04:05") + ")"
}

// hashPrefix starts every hashed dedup id; an id that starts with it is
// hashed too, so a hashed id never equals a verbatim one.
const hashPrefix = "~h:"

// DedupID returns the SQS MessageDeduplicationId of message id to thread:
// "thread/id" when that is at most 128 characters of what SQS allows
// (printable ASCII but space), otherwise a hash of both. The thread is part
// of it because SQS deduplicates across the whole queue by default, and
// the same message id may be sent to two threads (a thread id never holds
// '/', so the two parts cannot run into each other). The same pair always
// gives the same dedup id.
func DedupID(thread infinity.ThreadID, id infinity.MessageID) string {
	s := string(thread) + "/" + string(id)
	if len(s) > 0 && len(s) <= 128 && !strings.HasPrefix(s, hashPrefix) && strings.IndexFunc(s, func(r rune) bool { return r < '!' || r > '~' }) < 0 {
		return s
	}
	return hashPrefix + hash64(string(thread), string(id))
}

// ScheduleName returns the name of the schedule for message id to thread: at
// most 64 characters of [0-9a-zA-Z-_.], distinct for distinct (thread, id)
// pairs (up to a 160-bit hash) and the same for a repeat. The leading part
// of the thread id is kept for operators' sake.
func ScheduleName(thread infinity.ThreadID, id infinity.MessageID) string {
	prefix := string(thread)
	if len(prefix) > 20 {
		prefix = prefix[:20]
	}
	if !validScheduleName(prefix) {
		prefix = "x" // a thread id that Validate would refuse
	}
	return prefix + "-" + hash64(string(thread), string(id))[:40]
}

// hash64 returns the hex SHA-256 of parts, length-prefixed so that parts
// cannot run into each other.
func hash64(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func validScheduleName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

var (
	retryables = retry.IsErrorRetryables(retry.DefaultRetryables)
	throttles  = retry.IsErrorThrottles(retry.DefaultThrottles)
)

// wrap adds context to an SDK error, marking it infinity.ErrRetryable when
// it is throttling, a server fault or a broken connection. The SDK has
// already retried it; the caller may try again later.
func wrap(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if isRetryable(err) {
		return fmt.Errorf("%s: %w: %w", op, infinity.ErrRetryable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isRetryable(err error) bool {
	var (
		schedThrottle *schedtypes.ThrottlingException
		schedInternal *schedtypes.InternalServerException
		sqsThrottle   *sqstypes.RequestThrottled
		kmsThrottle   *sqstypes.KmsThrottled
	)
	switch {
	case errors.As(err, &schedThrottle), errors.As(err, &schedInternal),
		errors.As(err, &sqsThrottle), errors.As(err, &kmsThrottle):
		return true
	}
	return retryables.IsErrorRetryable(err) == aws.TrueTernary || throttles.IsErrorThrottle(err) == aws.TrueTernary
}

// Now is an InputSender that only delivers now, to the FIFO input queue:
// what the RAP receiver needs (it has no relay queue or Scheduler role). A
// send for later is refused with ErrInvalid.
type Now struct {
	sqs      SQSAPI
	queueURL string
}

// NewNow returns a Now sender for the FIFO queue at queueURL.
func NewNow(client SQSAPI, queueURL string) (*Now, error) {
	if client == nil || !strings.HasSuffix(queueURL, ".fifo") {
		return nil, fmt.Errorf("sqs: a sender needs a client and a FIFO queue URL, got %q: %w", queueURL, infinity.ErrInvalid)
	}
	return &Now{sqs: client, queueURL: queueURL}, nil
}

// Send delivers msg now; a future at is ErrInvalid.
func (n *Now) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	if !at.IsZero() && at.After(time.Now()) {
		return fmt.Errorf("sqs: send %s: this sender delivers now only: %w", msg.ID, infinity.ErrInvalid)
	}
	body, err := encodeInput(msg)
	if err != nil {
		return err
	}
	return sendInput(ctx, n.sqs, n.queueURL, msg, body)
}
