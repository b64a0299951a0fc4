package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// A Function URL request event (payload format 2.0) as Lambda delivers it.
const eventJSON = `{
  "version": "2.0",
  "routeKey": "$default",
  "rawPath": "%PATH%",
  "rawQueryString": "",
  "headers": {
    "content-type": "application/json",
    "host": "abcdefg.lambda-url.us-east-1.on.aws",
    "x-amzn-trace-id": "Root=1-5eb33ba4-d4a8ffd5ed9c7fb3000000a8",
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https"
  },
  "requestContext": {
    "accountId": "123456789012",
    "apiId": "abcdefg",
    "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
    "domainPrefix": "abcdefg",
    "http": {"method": "%METHOD%", "path": "%PATH%", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "infinity"},
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "routeKey": "$default",
    "stage": "$default",
    "time": "06/Dec/2026:10:00:00 +0000",
    "timeEpoch": 1796551200000
  },
  "body": %BODY%,
  "isBase64Encoded": false
}`

func event(t *testing.T, method, path, body string) events.LambdaFunctionURLRequest {
	t.Helper()
	b, _ := json.Marshal(body)
	raw := strings.NewReplacer("%METHOD%", method, "%PATH%", path, "%BODY%", string(b)).Replace(eventJSON)
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

type inbox struct {
	mu   sync.Mutex
	msgs []infinity.InputMessage
}

func (b *inbox) Send(_ context.Context, m infinity.InputMessage, _ time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
	return nil
}

func TestFunctionURL(t *testing.T) {
	h := handler()
	ctx := t.Context()

	resp, err := h(ctx, event(t, "GET", "/.well-known/rap-toolset", ""))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("manifest: %v %+v", err, resp)
	}
	m, err := rap.DecodeManifest([]byte(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Endpoint != "https://abcdefg.lambda-url.us-east-1.on.aws/invoke" || len(m.Tools) != 2 {
		t.Fatalf("manifest %+v", m)
	}

	// An invocation is answered once its result has been delivered: the
	// function may be frozen right after.
	tokens := rap.Tokens{Key: []byte("lambda-test-key-0123456789")}
	in := &inbox{}
	cb := httptest.NewServer(&rap.Handler{Tokens: tokens, Sender: in, Log: slog.New(slog.DiscardHandler)})
	defer cb.Close()
	inv, _ := json.Marshal(rap.Invocation{Operation: "current_time", Arguments: json.RawMessage(`{"zone":"Asia/Tokyo"}`), ID: "c1",
		GroupID: "t1", CallbackURL: tokens.CallbackURL(cb.URL, "t1", "c1")})
	resp, err = h(ctx, event(t, "POST", "/invoke", string(inv)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("invoke: %v %+v", err, resp)
	}
	in.mu.Lock()
	got := in.msgs
	in.mu.Unlock()
	if len(got) != 1 || !strings.Contains(infinity.PartsText(got[0].Content.Parts), "in Asia/Tokyo") {
		t.Fatalf("when the invocation was answered, the callbacks were %+v", got)
	}

	// The tools that outlive a request are not offered here.
	inv, _ = json.Marshal(rap.Invocation{Operation: "request_approval", ID: "c2", GroupID: "t1", CallbackURL: tokens.CallbackURL(cb.URL, "t1", "c2")})
	if resp, err = h(ctx, event(t, "POST", "/invoke", string(inv))); err != nil || resp.StatusCode != 400 {
		t.Fatalf("request_approval: %v %+v", err, resp)
	}
}
