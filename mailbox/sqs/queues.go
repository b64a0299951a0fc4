package sqs

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
)

// QueueAPI is the part of the SQS client CreateQueues uses.
type QueueAPI interface {
	CreateQueue(ctx context.Context, in *awssqs.CreateQueueInput, optFns ...func(*awssqs.Options)) (*awssqs.CreateQueueOutput, error)
	GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

// Queue is a created queue.
type Queue struct {
	URL string
	ARN string
}

// Queues are the queues of one deployment.
type Queues struct {
	// Input is the FIFO input queue, "<prefix>-input.fifo"; after
	// MaxReceiveCount receives a record moves to DeadLetter.
	Input Queue
	// Relay is the standard delay queue, "<prefix>-relay"; after
	// MaxReceiveCount receives a record moves to RelayDeadLetter.
	Relay Queue
	// Output is the standard queue of display events, "<prefix>-output".
	Output Queue
	// DeadLetter is the input queue's dead-letter queue, FIFO as SQS
	// requires of a FIFO queue's, "<prefix>-dead.fifo".
	DeadLetter Queue
	// RelayDeadLetter is the relay queue's, standard,
	// "<prefix>-relay-dead".
	RelayDeadLetter Queue
	// MaxReceiveCount is the redrive policies' maxReceiveCount.
	MaxReceiveCount int
}

// DefaultVisibilityTimeout is the input queue's visibility timeout unless
// CreateQueues is told otherwise.
const DefaultVisibilityTimeout = 15 * time.Minute

// DefaultMaxReceiveCount is the redrive policies' maxReceiveCount unless
// CreateQueues is told otherwise (the CDK construct's default too).
const DefaultMaxReceiveCount = 5

// QueueOption configures CreateQueues.
type QueueOption func(*queueOptions)

type queueOptions struct {
	visibility time.Duration
	maxReceive int
}

// WithVisibilityTimeout sets the input and relay queues' visibility timeout
// (whole seconds, at most 12 h; default DefaultVisibilityTimeout).
func WithVisibilityTimeout(d time.Duration) QueueOption {
	return func(o *queueOptions) { o.visibility = d }
}

// WithMaxReceiveCount sets the redrive policies' maxReceiveCount (1 to
// 1000; default DefaultMaxReceiveCount).
func WithMaxReceiveCount(n int) QueueOption {
	return func(o *queueOptions) { o.maxReceive = n }
}

// CreateQueues creates (or finds, CreateQueue being idempotent for equal
// attributes) the queues named after prefix for tests and the local
// harness, as the CDK construct deploys them: the FIFO input queue with
// content-based dedup (Scheduler targets need it), dedup scoped to the
// message group and throughput per group, and a redrive policy to its FIFO
// dead-letter queue; the standard relay queue with its own standard
// dead-letter queue; the standard output queue (display events carry their
// thread and items, so they need no order). A prefix must leave the names
// within SQS's 80 characters of [A-Za-z0-9-_].
func CreateQueues(ctx context.Context, client QueueAPI, prefix string, opts ...QueueOption) (Queues, error) {
	o := queueOptions{visibility: DefaultVisibilityTimeout, maxReceive: DefaultMaxReceiveCount}
	for _, f := range opts {
		f(&o)
	}
	if o.visibility < 0 || o.visibility > 12*time.Hour {
		return Queues{}, fmt.Errorf("sqs: create queues: visibility timeout %v: %w", o.visibility, infinity.ErrInvalid)
	}
	if o.maxReceive < 1 || o.maxReceive > 1000 {
		return Queues{}, fmt.Errorf("sqs: create queues: max receive count %d: %w", o.maxReceive, infinity.ErrInvalid)
	}
	vis := strconv.Itoa(int(o.visibility / time.Second))
	q := Queues{MaxReceiveCount: o.maxReceive}
	var err error
	if q.DeadLetter, err = createQueue(ctx, client, prefix+"-dead.fifo", map[string]string{
		string(sqstypes.QueueAttributeNameFifoQueue):                 "true",
		string(sqstypes.QueueAttributeNameContentBasedDeduplication): "true",
	}); err != nil {
		return Queues{}, err
	}
	if q.RelayDeadLetter, err = createQueue(ctx, client, prefix+"-relay-dead", nil); err != nil {
		return Queues{}, err
	}
	redrive := func(dead Queue) string {
		return fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, dead.ARN, o.maxReceive)
	}
	if q.Input, err = createQueue(ctx, client, prefix+"-input.fifo", map[string]string{
		string(sqstypes.QueueAttributeNameFifoQueue):                 "true",
		string(sqstypes.QueueAttributeNameContentBasedDeduplication): "true",
		string(sqstypes.QueueAttributeNameDeduplicationScope):        "messageGroup",
		string(sqstypes.QueueAttributeNameFifoThroughputLimit):       "perMessageGroupId",
		string(sqstypes.QueueAttributeNameVisibilityTimeout):         vis,
		string(sqstypes.QueueAttributeNameRedrivePolicy):             redrive(q.DeadLetter),
	}); err != nil {
		return Queues{}, err
	}
	if q.Relay, err = createQueue(ctx, client, prefix+"-relay", map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout): vis,
		string(sqstypes.QueueAttributeNameRedrivePolicy):     redrive(q.RelayDeadLetter),
	}); err != nil {
		return Queues{}, err
	}
	if q.Output, err = createQueue(ctx, client, prefix+"-output", map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout): vis,
	}); err != nil {
		return Queues{}, err
	}
	return q, nil
}
func createQueue(ctx context.Context, client QueueAPI, name string, attrs map[string]string) (Queue, error) {
	out, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return Queue{}, wrap("sqs: create queue "+name, err)
	}
	url := aws.ToString(out.QueueUrl)
	got, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return Queue{}, wrap("sqs: queue arn of "+name, err)
	}
	arn := got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return Queue{}, fmt.Errorf("sqs: queue %s has no QueueArn attribute", name)
	}
	return Queue{URL: url, ARN: arn}, nil
}
