package infinitycdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// relayTimeoutSeconds is the relay and receiver functions' timeout: they
// forward one batch or one callback.
const relayTimeoutSeconds = 30

// deadLetterRetention keeps dead letters as long as SQS allows.
func deadLetterRetention() awscdk.Duration { return awscdk.Duration_Days(jsii.Number(14)) }

// queues makes the FIFO input queue and its FIFO dead-letter queue, the
// standard relay queue and its dead-letter queue, and the output queue.
func (a *InfinityAgent) queues() {
	a.InputDeadLetterQueue = a.queue("InputDeadLetterQueue", awssqs.QueueProps{
		// SQS requires a FIFO queue's dead-letter queue to be FIFO. The
		// agent function also sends records it gives up on itself, with
		// the thread as message group and a deduplication id of its own;
		// content-based deduplication covers any other sender.
		Fifo:                      jsii.Bool(true),
		ContentBasedDeduplication: jsii.Bool(true),
		RetentionPeriod:           deadLetterRetention(),
	})
	a.InputQueue = a.queue("InputQueue", awssqs.QueueProps{
		Fifo: jsii.Bool(true),
		// Scheduler cannot set a deduplication id; the runtime's ids are
		// per thread, so deduplication is scoped to the message group,
		// which also allows the per-group throughput limit.
		ContentBasedDeduplication: jsii.Bool(true),
		DeduplicationScope:        awssqs.DeduplicationScope_MESSAGE_GROUP,
		FifoThroughputLimit:       awssqs.FifoThroughputLimit_PER_MESSAGE_GROUP_ID,
		VisibilityTimeout:         awscdk.Duration_Seconds(jsii.Number(float64(VisibilityFactor * a.s.timeoutSeconds))),
		// A record that keeps failing would block its thread (its message
		// group) for ever: after MaxReceiveCount tries it is set aside.
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           a.InputDeadLetterQueue,
			MaxReceiveCount: jsii.Number(float64(a.s.MaxReceiveCount)),
		},
	})
	a.RelayDeadLetterQueue = a.queue("RelayDeadLetterQueue", awssqs.QueueProps{
		RetentionPeriod: deadLetterRetention(),
	})
	a.RelayQueue = a.queue("RelayQueue", awssqs.QueueProps{
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(VisibilityFactor * relayTimeoutSeconds)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           a.RelayDeadLetterQueue,
			MaxReceiveCount: jsii.Number(float64(a.s.MaxReceiveCount)),
		},
	})
	a.OutputQueue = a.queue("OutputQueue", awssqs.QueueProps{})
}

// queue makes a queue that refuses requests without TLS and is encrypted at
// rest with SQS-managed keys (which its users need no KMS grant for).
func (a *InfinityAgent) queue(id string, p awssqs.QueueProps) awssqs.Queue {
	p.EnforceSSL = jsii.Bool(true)
	p.Encryption = awssqs.QueueEncryption_SQS_MANAGED
	return awssqs.NewQueue(a.Construct, jsii.String(id), &p)
}
