package sqs_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/tools/httpclient"
)

// captured is what a client sent: every header but those of signing,
// retries and transport.
type captured struct {
	Method, Path string
	Headers      map[string]string
	Body         map[string]any
	Signed       bool
}

// unchecked are the headers a capture leaves out.
var unchecked = map[string]bool{"Authorization": true, "X-Amz-Date": true, "X-Amz-Content-Sha256": true, "User-Agent": true,
	"Amz-Sdk-Invocation-Id": true, "Amz-Sdk-Request": true, "Accept-Encoding": true, "Content-Length": true}

// capture records requests and answers each with answer(n), n counting
// from 1.
type capture struct {
	mu     sync.Mutex
	got    []captured
	answer func(n int, w http.ResponseWriter, body []byte)
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	json.Unmarshal(raw, &body)
	c.mu.Lock()
	headers := map[string]string{}
	for k, v := range r.Header {
		if !unchecked[k] {
			headers[k] = strings.Join(v, ",")
		}
	}
	c.got = append(c.got, captured{Method: r.Method, Path: r.URL.EscapedPath(), Headers: headers, Body: body,
		Signed: r.Header.Get("Authorization") != ""})
	n := len(c.got)
	c.mu.Unlock()
	c.answer(n, w, raw)
}

func (c *capture) last(t *testing.T) captured {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		t.Fatal("nothing was sent")
	}
	return c.got[len(c.got)-1]
}

var testCfg = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	RetryMaxAttempts: 1}

func signer(t *testing.T, service string) *httpclient.SigV4 {
	t.Helper()
	s, err := httpclient.NewSigV4("us-east-1", testCfg.Credentials, httpclient.WithService(service))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sqsAnswer(n int, w http.ResponseWriter, body []byte) {
	var in struct{ MessageBody string }
	json.Unmarshal(body, &in)
	sum := md5.Sum([]byte(in.MessageBody))
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	json.NewEncoder(w).Encode(map[string]string{"MessageId": "m1", "MD5OfMessageBody": hex.EncodeToString(sum[:]), "SequenceNumber": "1"})
}

// The hand-written SendMessage sends what the SDK's client sends.
func TestSendClientSendsWhatTheSDKSends(t *testing.T) {
	c := &capture{answer: sqsAnswer}
	srv := httptest.NewServer(c)
	defer srv.Close()
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(srv.URL + "/000000000000/in.fifo"), MessageBody: aws.String(`{"content":"héllo"}`),
		MessageGroupId: aws.String("t1"), MessageDeduplicationId: aws.String("m1"), DelaySeconds: 5,
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{"infinity.error": {DataType: aws.String("String"), StringValue: aws.String("boom")}}}

	sdk := awssqs.NewFromConfig(testCfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	if _, err := sdk.SendMessage(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	want := c.last(t)
	mine, err := sqs.NewSendClient(signer(t, "sqs"), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mine.SendMessage(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.last(t); !reflect.DeepEqual(got, want) {
		t.Errorf("sent\n%+v\nthe SDK sends\n%+v", got, want)
	}
	if aws.ToString(out.MessageId) != "m1" || aws.ToString(out.SequenceNumber) != "1" {
		t.Errorf("output %+v", out)
	}
}

func TestSendClientErrors(t *testing.T) {
	var status, fails int
	c := &capture{answer: func(n int, w http.ResponseWriter, body []byte) {
		switch status {
		case 0: // a wrong MD5
			json.NewEncoder(w).Encode(map[string]string{"MessageId": "m1", "MD5OfMessageBody": "00"})
		case 500: // twice, then fine
			if fails < 2 {
				fails++
				w.WriteHeader(500)
				return
			}
			sqsAnswer(n, w, body)
		default:
			w.Header().Set("X-Amzn-Query-Error", "AWS.SimpleQueueService.NonExistentQueue;Sender")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."})
		}
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	mine, _ := sqs.NewSendClient(signer(t, "sqs"), srv.URL)
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(srv.URL + "/q"), MessageBody: aws.String("x")}
	if _, err := mine.SendMessage(t.Context(), in); err == nil {
		t.Error("a wrong MD5 of the body was accepted")
	}
	status = 400
	var gone *sqstypes.QueueDoesNotExist
	if _, err := mine.SendMessage(t.Context(), in); !errors.As(err, &gone) {
		t.Errorf("err = %v, want QueueDoesNotExist", err)
	}
	status = 500
	before := len(c.got)
	if _, err := mine.SendMessage(t.Context(), in); err != nil || len(c.got)-before != 3 {
		t.Errorf("after two 500s: %v, %d sends", err, len(c.got)-before)
	}
}

// The hand-written CreateSchedule sends what the SDK's client sends, and a
// ConflictException comes back as the SDK's type.
func TestSchedulerClientSendsWhatTheSDKSends(t *testing.T) {
	conflict := false
	c := &capture{answer: func(n int, w http.ResponseWriter, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		if conflict {
			w.Header().Set("X-Amzn-ErrorType", "ConflictException:http://internal.amazon.com/coral/com.amazonaws.scheduler/")
			w.WriteHeader(409)
			json.NewEncoder(w).Encode(map[string]string{"Message": "exists"})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"ScheduleArn": "arn:aws:scheduler:us-east-1:000000000000:schedule/g/s"})
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	in := &scheduler.CreateScheduleInput{
		Name: aws.String("sleep-t1-m1"), GroupName: aws.String("g"), ScheduleExpression: aws.String(sqs.AtExpression(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))),
		ScheduleExpressionTimezone: aws.String("UTC"), FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: schedtypes.ActionAfterCompletionDelete, ClientToken: aws.String("tok"),
		Target: &schedtypes.Target{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:in.fifo"), RoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
			Input: aws.String(`{"content":"x"}`), SqsParameters: &schedtypes.SqsParameters{MessageGroupId: aws.String("t1")},
			RetryPolicy: &schedtypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(10)}},
	}
	sdk := scheduler.NewFromConfig(testCfg, func(o *scheduler.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	if _, err := sdk.CreateSchedule(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	want := c.last(t)
	mine, err := sqs.NewSchedulerClient(signer(t, "scheduler"), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mine.CreateSchedule(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.last(t); !reflect.DeepEqual(got, want) {
		t.Errorf("sent\n%+v\nthe SDK sends\n%+v", got, want)
	}
	if aws.ToString(out.ScheduleArn) == "" {
		t.Error("no schedule ARN")
	}
	conflict = true
	var ce *schedtypes.ConflictException
	if _, err := mine.CreateSchedule(t.Context(), in); !errors.As(err, &ce) {
		t.Errorf("err = %v, want ConflictException", err)
	}
	if _, err := sdk.CreateSchedule(t.Context(), in); !errors.As(err, &ce) {
		t.Errorf("the SDK: err = %v, want ConflictException", err)
	}
}
