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
	// Input is the FIFO input queue, "<prefix>-input.fifo".
	Input Queue
	// Relay is the standard delay queue, "<prefix>-relay".
	Relay Queue
	// Output is the standard queue of display events, "<prefix>-output".
	Output Queue
	// DeadLetter is the standard queue of records that can never be
	// applied, "<prefix>-dead".
	DeadLetter Queue
}

// DefaultVisibilityTimeout is the input queue's visibility timeout unless
// CreateQueues is told otherwise.
const DefaultVisibilityTimeout = 15 * time.Minute

// QueueOption configures CreateQueues.
type QueueOption func(*queueOptions)

type queueOptions struct {
	visibility time.Duration
}

// WithVisibilityTimeout sets the input and relay queues' visibility timeout
// (whole seconds, at most 12 h; default DefaultVisibilityTimeout).
func WithVisibilityTimeout(d time.Duration) QueueOption {
	return func(o *queueOptions) { o.visibility = d }
}

// CreateQueues creates (or finds, CreateQueue being idempotent for equal
// attributes) the queues named after prefix for tests and the local
// harness: the FIFO input queue with content-based dedup (Scheduler targets
// need it) and dedup scoped to the message group, and the standard relay
// queue, the output queue and the dead-letter queue (all three standard:
// display events carry their thread and items, so they need no order). A
// prefix must leave the names within SQS's 80 characters of [A-Za-z0-9-_].
func CreateQueues(ctx context.Context, client QueueAPI, prefix string, opts ...QueueOption) (Queues, error) {
	o := queueOptions{visibility: DefaultVisibilityTimeout}
	for _, f := range opts {
		f(&o)
	}
	if o.visibility < 0 || o.visibility > 12*time.Hour {
		return Queues{}, fmt.Errorf("sqs: create queues: visibility timeout %v: %w", o.visibility, infinity.ErrInvalid)
	}
	vis := strconv.Itoa(int(o.visibility / time.Second))
	var q Queues
	var err error
	q.Input, err = createQueue(ctx, client, prefix+"-input.fifo", map[string]string{
		string(sqstypes.QueueAttributeNameFifoQueue):                 "true",
		string(sqstypes.QueueAttributeNameContentBasedDeduplication): "true",
		string(sqstypes.QueueAttributeNameDeduplicationScope):        "messageGroup",
		string(sqstypes.QueueAttributeNameFifoThroughputLimit):       "perMessageGroupId",
		string(sqstypes.QueueAttributeNameVisibilityTimeout):         vis,
	})
	if err != nil {
		return Queues{}, err
	}
	for _, c := range []struct {
		q    *Queue
		name string
	}{{&q.Relay, "-relay"}, {&q.Output, "-output"}, {&q.DeadLetter, "-dead"}} {
		*c.q, err = createQueue(ctx, client, prefix+c.name, map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout): vis,
		})
		if err != nil {
			return Queues{}, err
		}
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
