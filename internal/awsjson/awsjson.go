// Package awsjson sends the few AWS API calls the Lambda bootstrap makes
// without the SDK's service clients (SQS SendMessage, Scheduler
// CreateSchedule, Secrets Manager GetSecretValue): those clients cost the
// bootstrap more of its size budget than the calls themselves. It sends one
// request through a SigV4-signing client, retries what the SDK's standard
// retryer retries (transport errors, throttling, 5xx; three attempts in
// all), and reads AWS's JSON error answers. The callers turn an *Error
// into the SDK's typed errors, so code written against the SDK's clients
// treats both alike; their tests compare their requests with the SDK's.
package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/backoff"
)

// Attempts is how many times a request is sent at most.
const Attempts = 3

// retryStatus are the answers tried again whatever their code, as the
// SDK's standard retryer does (throttling codes are tried again too).
var retryStatus = map[int]bool{
	http.StatusTooManyRequests: true, http.StatusInternalServerError: true, http.StatusBadGateway: true,
	http.StatusServiceUnavailable: true, http.StatusGatewayTimeout: true,
}

// maxAnswer bounds an answer's body.
const maxAnswer = 4 << 20

// Error is a service's refusal: the HTTP status and the error code the
// answer names (without its namespace), with its message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Request is one call.
type Request struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    []byte
}

// Do sends r through c and returns the body of a 2xx answer; any other
// answer is an *Error. Transport errors, throttling and 5xx answers are
// tried again after a short wait, up to Attempts sends.
func Do(ctx context.Context, c infinity.HTTPClient, r Request) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		raw, retry, err := once(ctx, c, r)
		if err == nil || !retry || attempt == Attempts {
			return raw, err
		}
		if serr := backoff.Sleep(ctx, backoff.Delay(100*time.Millisecond, 2*time.Second, attempt)); serr != nil {
			return nil, errors.Join(err, serr)
		}
	}
}

func once(ctx context.Context, c infinity.HTTPClient, r Request) ([]byte, bool, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, false, err
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, true, err
	}
	if resp.StatusCode/100 == 2 {
		return raw, false, nil
	}
	e := parseError(resp, raw)
	return nil, retryStatus[resp.StatusCode] || Throttle(e.Code), e
}

// parseError reads an AWS JSON error answer as the SDK does: the code from
// the X-Amzn-ErrorType header, else the body's code or __type, cut at ':'
// and after '#'.
func parseError(resp *http.Response, raw []byte) *Error {
	code, msg := ErrorOf(resp.Header, raw)
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: code, Message: msg}
}

// ErrorOf reads an AWS JSON protocol error as the SDK does: the code from
// the X-Amzn-ErrorType header, else the body's code or __type, cut at ':'
// and after '#' ("" when there is none), and the body's message or
// Message.
func ErrorOf(h http.Header, raw []byte) (code, message string) {
	var body struct {
		Code     string `json:"code"`
		Type     string `json:"__type"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(raw, &body) // an unreadable body leaves the status to speak
	code = h.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Code
	}
	if code == "" {
		code = body.Type
	}
	code, _, _ = strings.Cut(code, ":")
	code = code[strings.LastIndexByte(code, '#')+1:]
	message = body.Message
	if message == "" {
		message = body.Message2
	}
	return code, message
}

// Throttle reports whether code is one of the AWS SDK's throttling error
// codes.
func Throttle(code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
		"ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
		"BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
		"EC2ThrottledException", "KmsThrottled":
		return true
	}
	return false
}
