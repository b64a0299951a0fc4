package bedrock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awsjson"
	"github.com/infinity-runtime/infinity/internal/backoff"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
	"github.com/infinity-runtime/infinity/tools/httpclient"
)

// DefaultMaxAttempts is how many times a request is sent at most when
// aws.Config.RetryMaxAttempts is zero, as the SDK's standard retryer.
const DefaultMaxAttempts = 3

// DefaultMaxIdleConns is how many idle connections the default HTTP client
// keeps to the endpoint, so that a burst of concurrent calls reuses its
// connections.
const DefaultMaxIdleConns = 1024

// signingName is Bedrock Runtime's SigV4 service name; sdkID its SDK id,
// which names its endpoint variable (AWS_ENDPOINT_URL_BEDROCK_RUNTIME);
// hostPrefix its endpoint prefix.
const (
	signingName = "bedrock"
	sdkID       = "Bedrock Runtime"
	hostPrefix  = "bedrock-runtime"
)

// userAgent names the client to the service.
const userAgent = "infinity-runtime (models/bedrock)"

// Retry waits, as the SDK's standard retryer computes them: a random part
// of base·2^(attempt-1), capped at maxBackoff, where base is a second
// after throttling and 50 ms otherwise.
const (
	backoffBase         = 50 * time.Millisecond
	backoffBaseThrottle = time.Second
	maxBackoff          = 20 * time.Second
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// maxMessage bounds how much of the service's message an error quotes.
const maxMessage = 1000

// Error is Bedrock Runtime's refusal: an HTTP error answer (StatusCode
// set, Code from its X-Amzn-ErrorType header or body, Message from its
// body), or an exception or error message in a started event stream
// (StatusCode 0, Code its :exception-type or :error-code header, which a
// stream spells in camel case: "throttlingException").
type Error struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// Header is the HTTP answer's header (nil in a stream).
	Header http.Header
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		if e.Code != "" {
			b.WriteString(" ")
			b.WriteString(e.Code)
		}
	} else {
		code := e.Code
		if code == "" {
			code = "an error"
		}
		b.WriteString(code)
		b.WriteString(" in the stream")
	}
	if msg := strings.TrimSpace(e.Message); msg != "" {
		b.WriteString(": ")
		b.WriteString(httpapi.Clip(msg, maxMessage))
	}
	if e.RequestID != "" {
		b.WriteString(" (request ID ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// sendError marks an error of sending a request (connection, TLS, a
// response that did not arrive), as opposed to one of signing it.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// sender is the signed client's inner client: it marks its errors.
type sender struct{ next aws.HTTPClient }

func (s sender) Do(req *http.Request) (*http.Response, error) {
	resp, err := s.next.Do(req)
	if err != nil {
		return nil, &sendError{err}
	}
	return resp, nil
}

// newClient returns cfg's signing client.
func newClient(cfg *aws.Config) (*httpclient.SigV4, error) {
	// Without one: a client keeping DefaultMaxIdleConns idle connections
	// to the endpoint, with a 10-minute response-header timeout.
	var inner aws.HTTPClient = httpapi.DefaultHTTPClient(DefaultMaxIdleConns)
	if cfg.HTTPClient != nil {
		inner = cfg.HTTPClient
	}
	c, err := httpclient.NewSigV4(cfg.Region, cfg.Credentials, httpclient.WithService(signingName), httpclient.WithClient(sender{inner}))
	if err != nil {
		return nil, fmt.Errorf("bedrock: %w", err)
	}
	return c, nil
}

// streamURL is the ConverseStream URL of model under base: the model ID
// is one path segment with everything but unreserved characters escaped
// (as the SDK escapes it: "a:b/c" is "a%3Ab%2Fc").
func streamURL(base *url.URL, model string) string {
	u := *base
	u.RawQuery, u.Fragment = "", ""
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	u.Path, u.RawPath = "", ""
	return u.String() + prefix + "/model/" + escapeSegment(model) + "/converse-stream"
}

func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// send posts body to target and returns the response once its status is
// 2xx. What the SDK's standard retryer retries is sent again, up to
// p.attempts sends in all: errors of sending (connections, TLS, a
// response that never came; not a name that does not resolve), 500, 502,
// 503 and 504 answers, throttling error codes, request timeouts and a 429
// whose error code Bedrock does not model. Errors are classified by
// requestError.
func (p *Provider) send(ctx context.Context, target, model string, body []byte) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := p.do(ctx, target, body)
		if cerr := ctx.Err(); cerr != nil {
			if err == nil {
				_ = resp.Body.Close()
			}
			return nil, cerr
		}
		if err == nil && resp.StatusCode/100 == 2 {
			return resp, nil
		}
		if err == nil {
			err = responseError(resp)
		}
		retry, throttle := retryable(err)
		if !retry || attempt >= p.attempts {
			return nil, requestError(model, attempt, err)
		}
		if err := backoff.Sleep(ctx, p.delay(attempt, throttle)); err != nil {
			return nil, err
		}
	}
}

// do makes one attempt.
func (p *Provider) do(ctx context.Context, target string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	return p.client.Do(req)
}

// retryDelay is the SDK's standard wait before the retry that follows
// attempt (from 1).
func retryDelay(attempt int, throttle bool) time.Duration {
	d := backoffBase
	if throttle {
		d = backoffBaseThrottle
	}
	d <<= min(attempt-1, 20)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return time.Duration(rand.Float64() * float64(d))
}

// retryable says whether a failed attempt is tried again, as the SDK's
// standard retryer decides, and whether it was throttled.
func retryable(err error) (retry, throttle bool) {
	var e *Error
	if errors.As(err, &e) {
		switch {
		case awsjson.Throttle(e.Code):
			return true, true
		case e.Code == "RequestTimeout", e.Code == "RequestTimeoutException":
			return true, false
		}
		switch e.StatusCode {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true, false
		case http.StatusTooManyRequests:
			return !modeled(e.Code), false
		}
		return false, false
	}
	var se *sendError
	if !errors.As(err, &se) {
		return false, false // signing failed: nothing was sent
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false, false
	}
	return true, false
}

// modeled reports whether code names one of the errors Bedrock Runtime
// models for ConverseStream.
func modeled(code string) bool {
	switch strings.ToLower(code) {
	case "throttlingexception", "serviceunavailableexception", "internalserverexception", "modelnotreadyexception",
		"modelstreamerrorexception", "modeltimeoutexception", "modelerrorexception", "accessdeniedexception",
		"resourcenotfoundexception", "validationexception", "servicequotaexceededexception", "conflictexception":
		return true
	}
	return false
}

// responseError reads an AWS JSON error answer (at most maxErrorBody of
// it) as the SDK does, and closes it: the code from the X-Amzn-ErrorType
// header, else the body's code or __type, cut at ':' and after '#'.
func responseError(resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	code, msg := awsjson.ErrorOf(resp.Header, raw)
	return &Error{StatusCode: resp.StatusCode, Code: code, Message: msg, RequestID: resp.Header.Get("X-Amzn-RequestId"), Header: resp.Header}
}

// requestError classifies the error of the last of attempts attempts.
func requestError(model string, attempts int, err error) error {
	where := "the request failed"
	if attempts > 1 {
		where = fmt.Sprintf("the request failed after %d attempts", attempts)
	}
	var e *Error
	if errors.As(err, &e) {
		return classify(e, model, where)
	}
	var se *sendError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("bedrock: %s: connection error: %w: %w", where, err, infinity.ErrRetryable)
	case errors.Is(err, httpclient.ErrNoCredentials):
		return fmt.Errorf("bedrock: %s: the AWS credentials have no access key; check the AWS credentials: %w", where, err)
	}
	return fmt.Errorf("bedrock: %s: %w", where, err)
}

// classify turns Bedrock's refusal, an HTTP answer or an exception in the
// stream, into the provider's error: transient ones wrap
// infinity.ErrRetryable, throttling is an *infinity.RateLimitedError.
func classify(e *Error, model, where string) error {
	switch strings.ToLower(e.Code) {
	case "throttlingexception":
		return &infinity.RateLimitedError{RetryAfter: infinity.RetryAfter(e.Header, time.Now()), Err: fmt.Errorf("bedrock: %s: throttled: %w", where, e)}
	case "serviceunavailableexception", "internalserverexception", "modelnotreadyexception",
		"modelstreamerrorexception", "modeltimeoutexception", "modelerrorexception":
		return fmt.Errorf("bedrock: %s: %w: %w", where, e, infinity.ErrRetryable)
	case "accessdeniedexception":
		return fmt.Errorf("bedrock: %s: access denied: check the AWS credentials, that the IAM identity may call bedrock:InvokeModelWithResponseStream, and that model access to %q is granted in this region: %w", where, model, e)
	case "resourcenotfoundexception":
		return fmt.Errorf("bedrock: %s: not found: check the model ID %q (or inference profile) and that it is offered in this region: %w", where, model, e)
	case "validationexception":
		return fmt.Errorf("bedrock: %s: the request was rejected; check the model ID %q, maxTokens, tool schemas and history: %w: %w", where, model, e, infinity.ErrInvalid)
	case "servicequotaexceededexception":
		return fmt.Errorf("bedrock: %s: a service quota is exceeded; check the account's Bedrock quotas: %w", where, e)
	case "conflictexception":
		return fmt.Errorf("bedrock: %s: %w", where, e)
	}
	switch code := e.StatusCode; {
	case code == 0: // an exception or error message the stream does not model
		return fmt.Errorf("bedrock: the stream broke: %w: %w", e, infinity.ErrRetryable)
	case code == http.StatusTooManyRequests:
		return &infinity.RateLimitedError{RetryAfter: infinity.RetryAfter(e.Header, time.Now()), Err: fmt.Errorf("bedrock: %s: throttled: %w", where, e)}
	case code == http.StatusRequestTimeout, code >= 500:
		return fmt.Errorf("bedrock: %s: %w: %w", where, e, infinity.ErrRetryable)
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return fmt.Errorf("bedrock: %s: check the AWS credentials and model access to %q: %w", where, model, e)
	case code == http.StatusNotFound:
		return fmt.Errorf("bedrock: %s: check the model ID %q and the endpoint: %w", where, model, e)
	case code == http.StatusBadRequest:
		return fmt.Errorf("bedrock: %s: %w: %w", where, e, infinity.ErrInvalid)
	}
	return fmt.Errorf("bedrock: %s: %w", where, e)
}
