package cloudlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/infinity-runtime/infinity/internal/backoff"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSClient is what the poller calls.
type SQSClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Poller does what the Lambda event source mapping does for one queue:
// long-polls it, hands each batch to the function as the JSON of an SQS
// event (through aws-lambda-go's handler path, as lambda.Start would),
// deletes the records the function did not report failed, and leaves the
// failed ones to the queue's visibility timeout. Several pollers run at once,
// like concurrent invocations; SQS FIFO keeps a message group locked while
// one of its messages is in flight, so a thread never runs twice at once.
type Poller struct {
	Client   SQSClient
	QueueURL string
	QueueARN string
	Region   string
	// Handler is the function: anything lambda.NewHandler accepts.
	Handler any
	// BatchSize is at most 10 (the default).
	BatchSize int32
	// Concurrency is how many invocations run at once; default 2.
	Concurrency int
	// Timeout is the function timeout, the deadline each invocation's
	// context carries; default 30 s.
	Timeout time.Duration
	Logger  *slog.Logger
	// OnInvoke, when set, is told about every invocation's outcome.
	OnInvoke func(Invocation)
}

// Invocation is one handler call.
type Invocation struct {
	Records  int
	Failures int
	Err      error
	Took     time.Duration
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	if p.BatchSize <= 0 || p.BatchSize > 10 {
		p.BatchSize = 10
	}
	if p.Concurrency <= 0 {
		p.Concurrency = 2
	}
	if p.Timeout <= 0 {
		p.Timeout = 30 * time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	h := lambda.NewHandler(p.Handler)
	var wg sync.WaitGroup
	for i := 0; i < p.Concurrency; i++ {
		wg.Go(func() { p.loop(ctx, h) })
	}
	wg.Wait()
	return nil
}

func (p *Poller) loop(ctx context.Context, h lambda.Handler) {
	for ctx.Err() == nil {
		out, err := p.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.QueueURL),
			MaxNumberOfMessages:         p.BatchSize,
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if ctx.Err() == nil {
				p.Logger.Warn("receive failed", "queue", p.QueueURL, "err", err)
				backoff.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(out.Messages) == 0 {
			continue
		}
		p.invoke(ctx, h, out.Messages)
	}
}

// invoke runs the function on one batch and deletes what succeeded.
func (p *Poller) invoke(ctx context.Context, h lambda.Handler, msgs []types.Message) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = p.record(m)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		p.Logger.Error("event", "err", err)
		return
	}
	start := time.Now()
	ictx, cancel := context.WithTimeout(ctx, p.Timeout)
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{
		AwsRequestID:       strconv.FormatInt(time.Now().UnixNano(), 36),
		InvokedFunctionArn: "arn:aws:lambda:" + p.Region + ":000000000000:function:local",
	})
	out, err := h.Invoke(ictx, payload)
	cancel()
	inv := Invocation{Records: len(msgs), Err: err, Took: time.Since(start)}
	failed := map[string]bool{}
	if err != nil {
		// A function error fails the whole batch, as on AWS.
		for _, r := range ev.Records {
			failed[r.MessageId] = true
		}
	} else {
		var resp events.SQSEventResponse
		if len(out) > 0 && string(out) != "null" {
			if jerr := json.Unmarshal(out, &resp); jerr != nil {
				inv.Err = fmt.Errorf("response: %w", jerr)
				for _, r := range ev.Records {
					failed[r.MessageId] = true
				}
			}
		}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
	}
	inv.Failures = len(failed)
	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if failed[aws.ToString(m.MessageId)] {
			continue
		}
		del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if len(del) > 0 {
		// A delete that fails leaves the record to come back: at least once.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if _, derr := p.Client.DeleteMessageBatch(dctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: del}); derr != nil {
			p.Logger.Warn("delete failed; the records come back", "err", derr)
		}
		dcancel()
	}
	if inv.Err != nil && !errors.Is(inv.Err, context.Canceled) {
		p.Logger.Warn("invocation failed", "queue", p.QueueURL, "err", inv.Err)
	}
	if p.OnInvoke != nil {
		p.OnInvoke(inv)
	}
}

// record converts a received message into an event record as AWS builds
// it.
func (p *Poller) record(m types.Message) events.SQSMessage {
	r := events.SQSMessage{
		MessageId:      aws.ToString(m.MessageId),
		ReceiptHandle:  aws.ToString(m.ReceiptHandle),
		Body:           aws.ToString(m.Body),
		Md5OfBody:      aws.ToString(m.MD5OfBody),
		Attributes:     map[string]string{},
		EventSourceARN: p.QueueARN,
		EventSource:    "aws:sqs",
		AWSRegion:      p.Region,
	}
	for k, v := range m.Attributes {
		r.Attributes[k] = v
	}
	if len(m.MessageAttributes) > 0 {
		r.Md5OfMessageAttributes = aws.ToString(m.MD5OfMessageAttributes)
		r.MessageAttributes = map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			r.MessageAttributes[k] = events.SQSMessageAttribute{
				StringValue: v.StringValue, BinaryValue: v.BinaryValue,
				StringListValues: v.StringListValues, BinaryListValues: v.BinaryListValues,
				DataType: aws.ToString(v.DataType),
			}
		}
	}
	return r
}
