package bedrock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/httpclient"
)

// The model ID is escaped as the SDK escapes it (the expected paths are
// what its client sent), below the endpoint's own path.
func TestStreamURL(t *testing.T) {
	for _, tc := range []struct{ base, model, want string }{
		{"https://bedrock-runtime.us-east-1.amazonaws.com", "anthropic.claude-3-haiku-20240307-v1:0",
			"https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"},
		{"http://127.0.0.1:1", "a/b c:d", "http://127.0.0.1:1/model/a%2Fb%20c%3Ad/converse-stream"},
		{"http://127.0.0.1:1/", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x~y_z",
			"http://127.0.0.1:1/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x~y_z/converse-stream"},
		{"https://proxy.example/bedrock%20a/?q=1#f", "m", "https://proxy.example/bedrock%20a/model/m/converse-stream"},
		{"http://127.0.0.1:1", "é?#%", "http://127.0.0.1:1/model/%C3%A9%3F%23%25/converse-stream"},
	} {
		u, err := url.Parse(tc.base)
		if err != nil {
			t.Fatal(err)
		}
		if got := streamURL(u, tc.model); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.base, tc.model, got, tc.want)
		}
	}
}

// The requests are signed for service "bedrock" in the region, over the
// path as sent: signing the received request again with the SDK's signer
// gives the same signature.
func TestSignature(t *testing.T) {
	const model = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude x"
	creds := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", SessionToken: "token"}
	var checked atomic.Int32
	var s *server
	s = newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		s.mu.Lock()
		body := s.raw[n-1]
		s.mu.Unlock()
		if err := verify(r, body, creds, "eu-west-3"); err != nil {
			t.Error(err)
		} else {
			checked.Add(1)
		}
		if want := "/model/" + escapeSegment(model) + "/converse-stream"; r.RequestURI != want {
			t.Errorf("request URI %s, want %s", r.RequestURI, want)
		}
		if ct, ua := r.Header.Get("Content-Type"), r.Header.Get("User-Agent"); ct != "application/json" || ua != userAgent {
			t.Errorf("Content-Type %q, User-Agent %q", ct, ua)
		}
		streamHeader(w)
		textTurn(w, "ok")
	})
	cfg := testConfig(s.URL, s.Client(), 1)
	cfg.AWS.Region = "eu-west-3"
	cfg.AWS.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	req := simpleReq("x")
	req.Model = model
	if r := collect(context.Background(), newTestProvider(t, cfg), req); r.err != nil {
		t.Fatal(r.err)
	}
	if checked.Load() != 1 {
		t.Fatal("the signature was not checked")
	}
}

// verify signs the request r (with body) as received again and compares
// the signatures.
func verify(r *http.Request, body []byte, creds aws.Credentials, region string) error {
	auth := r.Header.Get("Authorization")
	var signed string
	for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ", ") {
		if v, ok := strings.CutPrefix(part, "SignedHeaders="); ok {
			signed = v
		}
	}
	if !strings.Contains(auth, "Credential="+creds.AccessKeyID+"/") || !strings.Contains(auth, "/"+region+"/bedrock/aws4_request") || signed == "" {
		return fmt.Errorf("authorization %q", auth)
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return fmt.Errorf("security token %q", r.Header.Get("X-Amz-Security-Token"))
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range strings.Split(signed, ";") {
		if h != "host" && h != "content-length" {
			again.Header.Set(h, r.Header.Get(h))
		}
	}
	again.Header.Del("Authorization")
	again.Header.Del("X-Amz-Security-Token")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "bedrock", region, date); err != nil {
		return err
	}
	if got := again.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signed again: %s\nsent: %s", got, auth)
	}
	return nil
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		typ      string
		hits     int // of 3 attempts
		limited  bool
		retryErr bool
	}{
		{"throttling", 400, "ThrottlingException", 3, true, true},
		{"unmodeled 429", 429, "TooManyRequests", 3, true, true},
		{"model not ready", 429, "ModelNotReadyException", 1, false, true},
		{"request timeout code", 400, "RequestTimeoutException", 3, false, false},
		{"internal", 500, "InternalServerException", 3, false, true},
		{"bad gateway", 502, "", 3, false, true},
		{"unavailable", 503, "ServiceUnavailableException", 3, false, true},
		{"gateway timeout", 504, "", 3, false, true},
		{"model timeout", 408, "ModelTimeoutException", 1, false, true},
		{"model error", 424, "ModelErrorException", 1, false, true},
		{"not implemented", 501, "", 1, false, true},
		{"quota", 400, "ServiceQuotaExceededException", 1, false, false},
		{"conflict", 409, "ConflictException", 1, false, false},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "7")
			apiError(w, tc.code, tc.typ, "no "+tc.name)
		})
		r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
		var rl *infinity.RateLimitedError
		if s.count() != tc.hits || errors.Is(r.err, infinity.ErrRetryable) != tc.retryErr || errors.As(r.err, &rl) != tc.limited ||
			!strings.Contains(r.err.Error(), "no "+tc.name) {
			t.Errorf("%s: %d hits, err %v", tc.name, s.count(), r.err)
		}
		if tc.limited && rl.RetryAfter != 7*time.Second {
			t.Errorf("%s: RetryAfter %v", tc.name, rl.RetryAfter)
		}
		var e *Error
		if !errors.As(r.err, &e) || e.StatusCode != tc.code || e.Code != tc.typ || e.RequestID != "req-err" {
			t.Errorf("%s: %#v", tc.name, e)
		}
	}
}

// An error answer's code may come from its body; the message from
// "Message".
func TestErrorBody(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"com.amazon.bedrock#ValidationException:http://x","Message":"too long"}`)
	})
	r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
	var e *Error
	if !errors.Is(r.err, infinity.ErrInvalid) || !errors.As(r.err, &e) || e.Code != "ValidationException" || e.Message != "too long" {
		t.Fatalf("err = %v", r.err)
	}
}

// countingClient fails every request with err, counting them.
type countingClient struct {
	n   atomic.Int32
	err error
}

func (c *countingClient) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, c.err
}

func TestConnectionErrorsRetried(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	addr := s.URL
	s.Close() // nothing listens there now
	cfg := testConfig(addr, nil, 3)
	r := collect(context.Background(), newTestProvider(t, cfg), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) || !strings.Contains(r.err.Error(), "after 3 attempts") {
		t.Fatalf("err = %v", r.err)
	}
	c := &countingClient{err: &url.Error{Op: "Post", URL: addr, Err: io.ErrUnexpectedEOF}}
	cfg.AWS.HTTPClient = c
	r = collect(context.Background(), newTestProvider(t, cfg), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) || c.n.Load() != 3 {
		t.Fatalf("err = %v after %d sends", r.err, c.n.Load())
	}
}

// Credentials that cannot be had are final, and nothing is sent.
func TestCredentialErrors(t *testing.T) {
	c := &countingClient{err: errors.New("unreachable")}
	for name, creds := range map[string]aws.CredentialsProvider{
		"failing": aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no role")
		}),
		"anonymous": aws.AnonymousCredentials{},
		"keyless": aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, nil
		}),
	} {
		cfg := testConfig("http://127.0.0.1:1", nil, 3)
		cfg.AWS.Credentials, cfg.AWS.HTTPClient = creds, c
		r := collect(context.Background(), newTestProvider(t, cfg), simpleReq("x"))
		if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) || c.n.Load() != 0 {
			t.Errorf("%s: err = %v, %d sends", name, r.err, c.n.Load())
		}
		if name == "keyless" && !errors.Is(r.err, httpclient.ErrNoCredentials) {
			t.Errorf("keyless: err = %v", r.err)
		}
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt  int
		throttle bool
		max      time.Duration
	}{
		{1, false, 50 * time.Millisecond}, {2, false, 100 * time.Millisecond}, {1, true, time.Second},
		{3, true, 4 * time.Second}, {6, true, 20 * time.Second}, {100, false, 20 * time.Second},
	} {
		for range 50 {
			if d := retryDelay(tc.attempt, tc.throttle); d < 0 || d > tc.max {
				t.Fatalf("retryDelay(%d, %v) = %v, want at most %v", tc.attempt, tc.throttle, d, tc.max)
			}
		}
	}
}

// A retry's wait ends with the context.
func TestCancelDuringBackoff(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		apiError(w, 503, "ServiceUnavailableException", "busy")
	})
	p := newProvider(t, s, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.delay = func(int, bool) time.Duration {
		cancel() // while the wait begins
		return time.Hour
	}
	if r := collect(ctx, p, simpleReq("x")); !errors.Is(r.err, context.Canceled) || s.count() != 1 {
		t.Fatalf("err = %v, %d hits", r.err, s.count())
	}
}

func TestStreamFailures(t *testing.T) {
	corrupt := func(w io.Writer) {
		var b bytes.Buffer
		event(&b, "contentBlockDelta", textDelta(0, "lost"))
		raw := b.Bytes()
		raw[len(raw)-5] ^= 1
		w.Write(raw)
	}
	for name, tc := range map[string]struct {
		write func(io.Writer)
		is    error
	}{
		"checksum": {corrupt, errChecksum},
		"error message": {func(w io.Writer) {
			writeFrame(w, map[string]string{":message-type": "error", ":error-code": "InternalFailure", ":error-message": "oops"}, "")
		}, nil},
		"unknown message type":  {func(w io.Writer) { writeFrame(w, map[string]string{":message-type": "gossip"}, "") }, nil},
		"unknown exception":     {func(w io.Writer) { exception(w, "somethingNewException", "new") }, nil},
		"undecodable event":     {func(w io.Writer) { event(w, "contentBlockDelta", `{"delta":`) }, nil},
		"toolUse without start": {func(w io.Writer) { event(w, "contentBlockDelta", toolDelta(4, `{}`)) }, nil},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			streamHeader(w)
			event(w, "messageStart", messageStart)
			event(w, "contentBlockDelta", textDelta(0, "partial "))
			tc.write(w)
			event(w, "contentBlockStop", blockStop(0))
			event(w, "messageStop", messageStop("end_turn"))
			event(w, "metadata", metadata(1, 1))
		})
		r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
		if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil || r.text != "partial " || s.count() != 1 {
			t.Errorf("%s: err = %v, result %+v, %d hits", name, r.err, r, s.count())
		}
		if tc.is != nil && !errors.Is(r.err, tc.is) {
			t.Errorf("%s: err = %v, want %v", name, r.err, tc.is)
		}
	}
}

// Events the provider does not use, and deltas it does not read
// (reasoning), are skipped; cache tokens count as input.
func TestSkippedEvents(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		event(w, "messageStart", messageStart)
		event(w, "somethingNew", `{"x":1}`)
		event(w, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hmm"}}}`)
		event(w, "contentBlockDelta", textDelta(0, "answer"))
		event(w, "contentBlockStop", blockStop(0))
		event(w, "messageStop", `{"stopReason":"end_turn","additionalModelResponseFields":{"a":1}}`)
		event(w, "metadata", `{"usage":{"inputTokens":3,"outputTokens":4,"cacheReadInputTokens":100,"cacheWriteInputTokens":20,"totalTokens":127}}`)
	})
	r := collect(context.Background(), newProvider(t, s, 1), simpleReq("x"))
	if r.err != nil || r.text != "answer" || r.done == nil || r.done.Usage != (infinity.Usage{Input: 123, Output: 4}) {
		t.Fatalf("result %+v, done %+v", r, r.done)
	}
}

// Tool results carry their images; call arguments keep their numbers as
// written.
func TestWireDetails(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { streamHeader(w); textTurn(w, "ok") })
	items := []infinity.Item{
		{Kind: infinity.KindUser, Text: "look"},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "t_a", Name: "shot", Args: []byte(`{"n":12345678901234567890,"x":1.50}`)}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "t_a", Parts: []infinity.Part{
			{Type: "text", Text: "here"},
			{Type: "image", MediaType: "image/PNG", Data: "aGVsbG8="},
			{Type: "image", MediaType: "image/bmp", Data: "aGVsbG8="},    // not a format Bedrock takes
			{Type: "image", MediaType: "image/jpeg", Data: "not base64"}, // undecodable
		}}},
	}
	req := infinity.CompletionRequest{Items: items, Tools: []infinity.ToolSpec{{Name: "y", Schema: []byte(`{"properties":{"a":{"type":"number","minimum":1.0}}}`)}}}
	if r := collect(context.Background(), newProvider(t, s, 1), req); r.err != nil {
		t.Fatal(r.err)
	}
	raw := string(s.raw[0])
	for _, want := range []string{
		`{"toolUse":{"toolUseId":"t_a","name":"shot","input":{"n":12345678901234567890,"x":1.50}}}`,
		`{"toolResult":{"toolUseId":"t_a","content":[{"text":"here"},{"image":{"format":"png","source":{"bytes":"aGVsbG8="}}}]}}`,
		`"inputSchema":{"json":{"properties":{"a":{"minimum":1.0,"type":"number"}},"type":"object"}}`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("body %s\nlacks %s", raw, want)
		}
	}
}
