package sqs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awsjson"
)

// SendClient is SQS's SendMessage over its JSON protocol, signed with
// SigV4: the one SQS call the Lambda functions make (the event source
// mapping receives and deletes for them). The bootstrap uses it instead
// of the SDK's client to stay within its size budget; the tests check its
// requests against the SDK client's and run it against an SQS emulator.
// Like the SDK it checks the answer's MD5 of the body, and its errors are
// the SDK's typed ones (*types.QueueDoesNotExist, *types.RequestThrottled,
// ...), so the sender treats both clients alike. Throttling, 5xx answers
// and transport errors are tried again (see internal/awsjson).
type SendClient struct {
	http     infinity.HTTPClient
	endpoint string
}

// NewSendClient returns a client that sends through c (a SigV4 client for
// service "sqs") to endpoint (https://sqs.REGION.amazonaws.com or the
// environment's override).
func NewSendClient(c infinity.HTTPClient, endpoint string) (*SendClient, error) {
	if c == nil || endpoint == "" {
		return nil, fmt.Errorf("sqs: send client needs an HTTP client and an endpoint: %w", infinity.ErrInvalid)
	}
	return &SendClient{http: c, endpoint: endpoint}, nil
}

type wireAttribute struct {
	DataType    *string `json:"DataType,omitempty"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
}

type wireSendMessage struct {
	QueueUrl               *string                  `json:"QueueUrl,omitempty"`
	MessageBody            *string                  `json:"MessageBody,omitempty"`
	DelaySeconds           int32                    `json:"DelaySeconds,omitempty"`
	MessageAttributes      map[string]wireAttribute `json:"MessageAttributes,omitempty"`
	MessageDeduplicationId *string                  `json:"MessageDeduplicationId,omitempty"`
	MessageGroupId         *string                  `json:"MessageGroupId,omitempty"`
}

// SendMessage sends one message. Message system attributes (X-Ray trace
// headers) are refused with infinity.ErrNotImplemented rather than dropped.
func (c *SendClient) SendMessage(ctx context.Context, in *awssqs.SendMessageInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
	if in == nil {
		return nil, fmt.Errorf("send message: no input: %w", infinity.ErrInvalid)
	}
	if len(in.MessageSystemAttributes) > 0 {
		return nil, fmt.Errorf("send message: system attributes are not sent by this client: %w", infinity.ErrNotImplemented)
	}
	w := wireSendMessage{QueueUrl: in.QueueUrl, MessageBody: in.MessageBody, DelaySeconds: in.DelaySeconds,
		MessageDeduplicationId: in.MessageDeduplicationId, MessageGroupId: in.MessageGroupId}
	if len(in.MessageAttributes) > 0 {
		w.MessageAttributes = make(map[string]wireAttribute, len(in.MessageAttributes))
		for k, v := range in.MessageAttributes {
			w.MessageAttributes[k] = wireAttribute{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
		}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("send message: %w", err)
	}
	raw, err := awsjson.Do(ctx, c.http, awsjson.Request{Method: http.MethodPost, URL: c.endpoint, Body: body,
		// Query mode: SQS answers errors with their query-protocol codes
		// too (AWS.SimpleQueueService.NonExistentQueue), as the SDK asks.
		Headers: map[string]string{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage", "X-Amzn-Query-Mode": "true"}})
	if err != nil {
		return nil, fmt.Errorf("send message to %s: %w", aws.ToString(in.QueueUrl), sqsError(err))
	}
	var out struct {
		MessageId        *string
		MD5OfMessageBody *string
		SequenceNumber   *string
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("send message to %s: answer: %w", aws.ToString(in.QueueUrl), err)
	}
	if out.MD5OfMessageBody != nil {
		sum := md5.Sum([]byte(aws.ToString(in.MessageBody)))
		if hex.EncodeToString(sum[:]) != *out.MD5OfMessageBody {
			return nil, fmt.Errorf("send message to %s: the answer's MD5 of the body does not match what was sent", aws.ToString(in.QueueUrl))
		}
	}
	return &awssqs.SendMessageOutput{MessageId: out.MessageId, MD5OfMessageBody: out.MD5OfMessageBody, SequenceNumber: out.SequenceNumber}, nil
}

// sqsError turns a refusal into the SDK's typed error of its code.
func sqsError(err error) error {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		return err
	}
	msg := aws.String(e.Message)
	switch e.Code {
	case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue":
		return &sqstypes.QueueDoesNotExist{Message: msg}
	case "RequestThrottled":
		return &sqstypes.RequestThrottled{Message: msg}
	case "KmsThrottled":
		return &sqstypes.KmsThrottled{Message: msg}
	case "InvalidMessageContents":
		return &sqstypes.InvalidMessageContents{Message: msg}
	case "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation":
		return &sqstypes.UnsupportedOperation{Message: msg}
	case "InvalidAddress":
		return &sqstypes.InvalidAddress{Message: msg}
	case "InvalidSecurity":
		return &sqstypes.InvalidSecurity{Message: msg}
	}
	return &smithy.GenericAPIError{Code: e.Code, Message: e.Message}
}
