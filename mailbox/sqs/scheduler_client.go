package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awsjson"
)

// SchedulerClient is EventBridge Scheduler's CreateSchedule over its REST
// JSON protocol, signed with SigV4: the one call the sender makes. The
// Lambda bootstrap uses it instead of the SDK's client, which costs the
// bootstrap about 0.2 MB of its size budget; its requests are checked
// against the SDK client's in the tests. Its errors are the SDK's typed
// ones (*types.ConflictException and the others), so the sender treats
// both clients alike. Throttling, 5xx answers and transport errors are
// tried again, three attempts in all, as the SDK's standard retryer does;
// the ClientToken makes a repeat harmless (see internal/awsjson).
type SchedulerClient struct {
	http     infinity.HTTPClient
	endpoint string
}

// NewSchedulerClient returns a client that sends through c (a SigV4 client
// for service "scheduler") to endpoint (https://scheduler.REGION.amazonaws.com
// or the environment's override).
func NewSchedulerClient(c infinity.HTTPClient, endpoint string) (*SchedulerClient, error) {
	if c == nil || endpoint == "" {
		return nil, fmt.Errorf("sqs: scheduler client needs an HTTP client and an endpoint: %w", infinity.ErrInvalid)
	}
	return &SchedulerClient{http: c, endpoint: strings.TrimRight(endpoint, "/")}, nil
}

// Wire shapes of CreateSchedule's body: only what this client sends.
type (
	wireSchedule struct {
		ActionAfterCompletion      string              `json:"ActionAfterCompletion,omitempty"`
		ClientToken                *string             `json:"ClientToken,omitempty"`
		Description                *string             `json:"Description,omitempty"`
		FlexibleTimeWindow         *wireFlexibleWindow `json:"FlexibleTimeWindow,omitempty"`
		GroupName                  *string             `json:"GroupName,omitempty"`
		ScheduleExpression         *string             `json:"ScheduleExpression,omitempty"`
		ScheduleExpressionTimezone *string             `json:"ScheduleExpressionTimezone,omitempty"`
		State                      string              `json:"State,omitempty"`
		Target                     *wireScheduleTarget `json:"Target,omitempty"`
	}
	wireFlexibleWindow struct {
		MaximumWindowInMinutes *int32 `json:"MaximumWindowInMinutes,omitempty"`
		Mode                   string `json:"Mode,omitempty"`
	}
	wireScheduleTarget struct {
		Arn              *string            `json:"Arn,omitempty"`
		DeadLetterConfig *wireDeadLetter    `json:"DeadLetterConfig,omitempty"`
		Input            *string            `json:"Input,omitempty"`
		RetryPolicy      *wireRetryPolicy   `json:"RetryPolicy,omitempty"`
		RoleArn          *string            `json:"RoleArn,omitempty"`
		SqsParameters    *wireSqsParameters `json:"SqsParameters,omitempty"`
	}
	wireDeadLetter struct {
		Arn *string `json:"Arn,omitempty"`
	}
	wireRetryPolicy struct {
		MaximumEventAgeInSeconds *int32 `json:"MaximumEventAgeInSeconds,omitempty"`
		MaximumRetryAttempts     *int32 `json:"MaximumRetryAttempts,omitempty"`
	}
	wireSqsParameters struct {
		MessageGroupId *string `json:"MessageGroupId,omitempty"`
	}
)

// CreateSchedule creates a schedule. Fields this client does not send
// (start and end dates, a KMS key, targets other than SQS) are refused
// with infinity.ErrNotImplemented rather than dropped.
func (c *SchedulerClient) CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	if in == nil || aws.ToString(in.Name) == "" {
		return nil, fmt.Errorf("create schedule: a name is required: %w", infinity.ErrInvalid)
	}
	if in.StartDate != nil || in.EndDate != nil || in.KmsKeyArn != nil || (in.Target != nil && (in.Target.EcsParameters != nil ||
		in.Target.EventBridgeParameters != nil || in.Target.KinesisParameters != nil || in.Target.SageMakerPipelineParameters != nil)) {
		return nil, fmt.Errorf("create schedule %s: only SQS targets without start, end or KMS key are sent by this client: %w", aws.ToString(in.Name), infinity.ErrNotImplemented)
	}
	token := in.ClientToken
	if token == nil {
		// As the SDK does: a token per call, so its own retries are one
		// request to the service.
		token = aws.String(string(infinity.NewThreadID()))
	}
	w := wireSchedule{ActionAfterCompletion: string(in.ActionAfterCompletion), ClientToken: token, Description: in.Description,
		GroupName: in.GroupName, ScheduleExpression: in.ScheduleExpression, ScheduleExpressionTimezone: in.ScheduleExpressionTimezone, State: string(in.State)}
	if f := in.FlexibleTimeWindow; f != nil {
		w.FlexibleTimeWindow = &wireFlexibleWindow{MaximumWindowInMinutes: f.MaximumWindowInMinutes, Mode: string(f.Mode)}
	}
	if t := in.Target; t != nil {
		w.Target = &wireScheduleTarget{Arn: t.Arn, Input: t.Input, RoleArn: t.RoleArn}
		if t.DeadLetterConfig != nil {
			w.Target.DeadLetterConfig = &wireDeadLetter{Arn: t.DeadLetterConfig.Arn}
		}
		if r := t.RetryPolicy; r != nil {
			w.Target.RetryPolicy = &wireRetryPolicy{MaximumEventAgeInSeconds: r.MaximumEventAgeInSeconds, MaximumRetryAttempts: r.MaximumRetryAttempts}
		}
		if t.SqsParameters != nil {
			w.Target.SqsParameters = &wireSqsParameters{MessageGroupId: t.SqsParameters.MessageGroupId}
		}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("create schedule %s: %w", aws.ToString(in.Name), err)
	}
	raw, err := awsjson.Do(ctx, c.http, awsjson.Request{Method: http.MethodPost, Body: body,
		URL:     c.endpoint + "/schedules/" + url.PathEscape(aws.ToString(in.Name)),
		Headers: map[string]string{"Content-Type": "application/json"}})
	if err != nil {
		return nil, fmt.Errorf("create schedule %s: %w", aws.ToString(in.Name), schedulerError(err))
	}
	var out struct{ ScheduleArn *string }
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("create schedule %s: answer: %w", aws.ToString(in.Name), err)
	}
	return &scheduler.CreateScheduleOutput{ScheduleArn: out.ScheduleArn}, nil
}

// schedulerError turns a refusal into the SDK's typed error of its code.
func schedulerError(err error) error {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		return err
	}
	msg := aws.String(e.Message)
	switch e.Code {
	case "ConflictException":
		return &schedtypes.ConflictException{Message: msg}
	case "ResourceNotFoundException":
		return &schedtypes.ResourceNotFoundException{Message: msg}
	case "ValidationException":
		return &schedtypes.ValidationException{Message: msg}
	case "ServiceQuotaExceededException":
		return &schedtypes.ServiceQuotaExceededException{Message: msg}
	case "ThrottlingException":
		return &schedtypes.ThrottlingException{Message: msg}
	case "InternalServerException":
		return &schedtypes.InternalServerException{Message: msg}
	}
	return &smithy.GenericAPIError{Code: e.Code, Message: e.Message}
}
