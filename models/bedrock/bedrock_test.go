package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/providertest"
)

// testModel has a colon, as Bedrock model IDs do: it is escaped in the
// path.
const testModel = "test.model-v1:0"

var testModels = []infinity.ModelInfo{{ID: testModel, ContextWindow: 200000, MaxOutput: 8192}}

// server is a local Bedrock Runtime endpoint; handle answers the n-th
// ConverseStream request (from 1).
type server struct {
	*httptest.Server
	mu     sync.Mutex
	hits   int
	bodies []map[string]any
	raw    [][]byte
	paths  []string
	uris   []string // as sent, escaped
}

func newServer(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/model/") || !strings.HasSuffix(r.URL.Path, "/converse-stream") {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, "bad json: "+err.Error(), http.StatusTeapot)
			return
		}
		s.mu.Lock()
		s.hits++
		n := s.hits
		s.bodies = append(s.bodies, body)
		s.raw = append(s.raw, raw)
		s.paths = append(s.paths, r.URL.Path)
		s.uris = append(s.uris, r.RequestURI)
		s.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func (s *server) body(i int) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[i]
}

// testCredentials are static test credentials.
var testCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Source: "test"}, nil
})

// testConfig points a provider at url, through hc, making up to attempts
// attempts.
func testConfig(url string, hc *http.Client, attempts int) Config {
	cfg := Config{
		AWS: aws.Config{
			Region:           "us-east-1",
			BaseEndpoint:     aws.String(url),
			Credentials:      testCredentials,
			RetryMaxAttempts: attempts,
		},
		Models: testModels,
	}
	if hc != nil {
		cfg.AWS.HTTPClient = hc
	}
	return cfg
}

// newTestProvider returns a provider for cfg that retries without
// backoff.
func newTestProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.delay = func(int, bool) time.Duration { return time.Millisecond }
	return p
}

func newProvider(t testing.TB, s *server, attempts int) *Provider {
	t.Helper()
	return newTestProvider(t, testConfig(s.URL, s.Client(), attempts))
}

// writeFrame encodes one event-stream message with the SDK's encoder (an
// Encoder is not safe for concurrent use: one per frame). A write error (a
// client that went away) is left for the client side of the test to
// notice.
func writeFrame(w io.Writer, headers map[string]string, payload string) {
	var m eventstream.Message
	for _, k := range []string{":message-type", ":event-type", ":exception-type", ":content-type", ":error-code", ":error-message"} {
		if v, ok := headers[k]; ok {
			m.Headers.Set(k, eventstream.StringValue(v))
		}
	}
	m.Payload = []byte(payload)
	_ = eventstream.NewEncoder().Encode(w, m)
}

// event writes one event frame and flushes it.
func event(w io.Writer, typ, payload string) {
	writeFrame(w, map[string]string{":message-type": "event", ":event-type": typ, ":content-type": "application/json"}, payload)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// exception writes one exception frame and flushes it.
func exception(w io.Writer, typ, msg string) {
	writeFrame(w, map[string]string{":message-type": "exception", ":exception-type": typ, ":content-type": "application/json"}, fmt.Sprintf(`{"message":%q}`, msg))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func streamHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", "req-1")
	w.WriteHeader(http.StatusOK)
}

const messageStart = `{"role":"assistant"}`

func textDelta(i int, s string) string {
	b, _ := json.Marshal(s)
	return fmt.Sprintf(`{"contentBlockIndex":%d,"delta":{"text":%s}}`, i, b)
}

func toolStart(i int, id, name string) string {
	return fmt.Sprintf(`{"contentBlockIndex":%d,"start":{"toolUse":{"toolUseId":%q,"name":%q}}}`, i, id, name)
}

func toolDelta(i int, frag string) string {
	b, _ := json.Marshal(frag)
	return fmt.Sprintf(`{"contentBlockIndex":%d,"delta":{"toolUse":{"input":%s}}}`, i, b)
}

func blockStop(i int) string { return fmt.Sprintf(`{"contentBlockIndex":%d}`, i) }

func messageStop(reason string) string { return fmt.Sprintf(`{"stopReason":%q}`, reason) }

func metadata(in, out int) string {
	return fmt.Sprintf(`{"usage":{"inputTokens":%d,"outputTokens":%d,"totalTokens":%d},"metrics":{"latencyMs":1}}`, in, out, in+out)
}

// textTurn streams a text response in deltas.
func textTurn(w io.Writer, deltas ...string) {
	event(w, "messageStart", messageStart)
	for _, d := range deltas {
		event(w, "contentBlockDelta", textDelta(0, d))
	}
	event(w, "contentBlockStop", blockStop(0))
	event(w, "messageStop", messageStop("end_turn"))
	event(w, "metadata", metadata(10, 5))
}

// apiError writes a JSON error response as Bedrock does.
func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.Header().Set("X-Amzn-Requestid", "req-err")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"message":%q}`, msg)
}

// result is what a stream yielded.
type result struct {
	text   string
	calls  []infinity.ToolCall
	done   *infinity.StreamEvent
	events int
	err    error
}

func collect(ctx context.Context, p *Provider, req infinity.CompletionRequest) result {
	r := providertest.Collect(ctx, p, req)
	return result{text: r.Text, calls: r.Calls, done: r.Done, events: r.Events, err: r.Err}
}

func simpleReq(text string) infinity.CompletionRequest { return providertest.UserText(text) }

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("%s = %s, want %s", what, gj, wj)
	}
}

func TestTextTurn(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		textTurn(w, "Hel", "lo, ", "world")
	})
	p := newProvider(t, s, 1)
	req := simpleReq("hi there")
	req.System = "be brief"
	req.Tools = []infinity.ToolSpec{{Name: "search", Description: "search the web",
		Schema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string","maxLength":100}},"required":["q"]}`)}}
	r := collect(context.Background(), p, req)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.text != "Hello, world" || r.events != 4 {
		t.Errorf("text = %q, %d events", r.text, r.events)
	}
	if r.done == nil || r.done.Stop != infinity.StopEnd || r.done.Usage != (infinity.Usage{Input: 10, Output: 5}) {
		t.Errorf("done = %+v", r.done)
	}
	if s.paths[0] != "/model/"+testModel+"/converse-stream" {
		t.Errorf("path = %q", s.paths[0])
	}
	body := s.body(0)
	check(t, "system", body["system"], []any{map[string]any{"text": "be brief"}})
	check(t, "messages", body["messages"], []any{map[string]any{"role": "user", "content": []any{map[string]any{"text": "hi there"}}}})
	check(t, "inferenceConfig", body["inferenceConfig"], map[string]any{"maxTokens": float64(8192)})
	check(t, "toolConfig", body["toolConfig"], map[string]any{"tools": []any{map[string]any{"toolSpec": map[string]any{
		"name": "search", "description": "search the web",
		"inputSchema": map[string]any{"json": map[string]any{
			"type":       "object",
			"properties": map[string]any{"q": map[string]any{"type": "string", "maxLength": float64(100)}},
			"required":   []any{"q"},
		}},
	}}}})
}

func TestMaxTokensAndModel(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { streamHeader(w); textTurn(w, "ok") })
	p := newProvider(t, s, 1)
	req := simpleReq("x")
	req.Model, req.MaxTokens = "other.model", 123
	if r := collect(context.Background(), p, req); r.err != nil {
		t.Fatal(r.err)
	}
	if s.paths[0] != "/model/other.model/converse-stream" || !reflect.DeepEqual(s.body(0)["inferenceConfig"], map[string]any{"maxTokens": float64(123)}) {
		t.Errorf("path %q, inferenceConfig %v", s.paths[0], s.body(0)["inferenceConfig"])
	}
}

func TestParallelToolCalls(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		event(w, "messageStart", messageStart)
		event(w, "contentBlockDelta", textDelta(0, "Checking both."))
		event(w, "contentBlockStop", blockStop(0))
		event(w, "contentBlockStart", toolStart(1, "t1", "get_weather"))
		event(w, "contentBlockDelta", toolDelta(1, `{"city": "Pa`))
		event(w, "contentBlockDelta", toolDelta(1, `ris", "unit`))
		event(w, "contentBlockDelta", toolDelta(1, `": "c"}`))
		event(w, "contentBlockStop", blockStop(1))
		event(w, "contentBlockStart", toolStart(2, "t2", "get_time"))
		event(w, "contentBlockDelta", toolDelta(2, `{"tz":`))
		event(w, "contentBlockDelta", toolDelta(2, ` "Europe/Paris"}`))
		event(w, "contentBlockStop", blockStop(2))
		event(w, "contentBlockStart", toolStart(3, "t3", "now"))
		event(w, "contentBlockStop", blockStop(3))
		event(w, "messageStop", messageStop("tool_use"))
		event(w, "metadata", metadata(40, 55))
	})
	r := collect(context.Background(), newProvider(t, s, 1), simpleReq("weather and time in Paris?"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.text != "Checking both." {
		t.Errorf("text = %q", r.text)
	}
	want := []struct{ id, name, args string }{
		{"t1", "get_weather", `{"city":"Paris","unit":"c"}`},
		{"t2", "get_time", `{"tz":"Europe/Paris"}`},
		{"t3", "now", `{}`},
	}
	if len(r.calls) != len(want) {
		t.Fatalf("calls = %+v", r.calls)
	}
	for i, w := range want {
		c := r.calls[i]
		var got, exp any
		if err := json.Unmarshal(c.Args, &got); err != nil {
			t.Fatalf("call %d args %s: %v", i, c.Args, err)
		}
		_ = json.Unmarshal([]byte(w.args), &exp)
		if c.ID != w.id || c.Name != w.name || !reflect.DeepEqual(got, exp) {
			t.Errorf("call %d = %s %s %s, want %s %s %s", i, c.ID, c.Name, c.Args, w.id, w.name, w.args)
		}
	}
	if r.done == nil || r.done.Stop != infinity.StopToolUse || r.done.Usage != (infinity.Usage{Input: 40, Output: 55}) {
		t.Errorf("done = %+v", r.done)
	}
}

func TestTruncatedToolCallAtMaxTokens(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		event(w, "messageStart", messageStart)
		event(w, "contentBlockStart", toolStart(0, "tx", "write"))
		event(w, "contentBlockDelta", toolDelta(0, `{"text": "a very lo`))
		event(w, "contentBlockStop", blockStop(0))
		stop := "max_tokens"
		if n == 2 {
			stop = "tool_use"
		}
		event(w, "messageStop", messageStop(stop))
		event(w, "metadata", metadata(5, 100))
	})
	p := newProvider(t, s, 1)
	r := collect(context.Background(), p, simpleReq("go"))
	if r.err != nil || len(r.calls) != 0 || r.done == nil || r.done.Stop != infinity.StopMaxTokens {
		t.Fatalf("result = %+v, done %+v", r, r.done)
	}
	// The same cut-short input with another stop reason is a broken stream.
	if r := collect(context.Background(), p, simpleReq("go")); !errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err = %v", r.err)
	}
}

func TestHistoryConversion(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { streamHeader(w); textTurn(w, "ok") })
	p := newProvider(t, s, 1)
	items := []infinity.Item{
		{Kind: infinity.KindUser, Text: "look both up"},
		{Kind: infinity.KindAssistant, Text: "On it."},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "t_a", Name: "lookup", Args: json.RawMessage(`{"k":"a","n":12345678901234567890}`)}},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "t_b", Name: "lookup", Args: nil}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "t_a", Parts: []infinity.Part{{Type: "text", Text: "A is 1"}}}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "t_b", Parts: []infinity.Part{{Type: "text", Text: "no such key"}}, IsError: true}},
		{Kind: infinity.KindUser, Text: "thanks"},
	}
	if r := collect(context.Background(), p, infinity.CompletionRequest{Items: items}); r.err != nil {
		t.Fatal(r.err)
	}
	got, _ := json.Marshal(s.body(0)["messages"])
	want := `[` +
		`{"content":[{"text":"look both up"}],"role":"user"},` +
		`{"content":[{"text":"On it."},` +
		`{"toolUse":{"input":{"k":"a","n":12345678901234567000},"name":"lookup","toolUseId":"t_a"}},` +
		`{"toolUse":{"input":{},"name":"lookup","toolUseId":"t_b"}}],"role":"assistant"},` +
		`{"content":[{"toolResult":{"content":[{"text":"A is 1"}],"toolUseId":"t_a"}},` +
		`{"toolResult":{"content":[{"text":"no such key"}],"status":"error","toolUseId":"t_b"}},` +
		`{"text":"thanks"}],"role":"user"}]`
	if string(got) != want {
		t.Errorf("messages =\n%s\nwant\n%s", got, want)
	}

	// A history that starts with an assistant turn gets a user message first;
	// a call-only turn has no (empty) text block; an empty result gets a
	// placeholder.
	items = []infinity.Item{
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "t_c", Name: "spawn", Args: json.RawMessage(`{}`)}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "t_c"}},
	}
	if r := collect(context.Background(), p, infinity.CompletionRequest{Items: items}); r.err != nil {
		t.Fatal(r.err)
	}
	got, _ = json.Marshal(s.body(1)["messages"])
	want = `[` +
		`{"content":[{"text":"(conversation start)"}],"role":"user"},` +
		`{"content":[{"toolUse":{"input":{},"name":"spawn","toolUseId":"t_c"}}],"role":"assistant"},` +
		`{"content":[{"toolResult":{"content":[{"text":"(empty)"}],"toolUseId":"t_c"}}],"role":"user"}]`
	if string(got) != want {
		t.Errorf("messages =\n%s\nwant\n%s", got, want)
	}
	if _, ok := s.body(1)["system"]; ok {
		t.Errorf("an empty system prompt was sent")
	}
}

func TestThrottledThenSuccess(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			apiError(w, http.StatusTooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again.")
			return
		}
		streamHeader(w)
		textTurn(w, "fine")
	})
	r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if s.count() != 2 || r.text != "fine" || r.done == nil || r.events != 2 {
		t.Errorf("hits %d, result %+v", s.count(), r)
	}
}

func TestThrottledEveryTime(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		apiError(w, http.StatusTooManyRequests, "ThrottlingException", "Too many requests")
	})
	r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) || !errors.Is(r.err, infinity.ErrRateLimited) || !strings.Contains(r.err.Error(), "throttled") {
		t.Fatalf("err = %v, want ErrRetryable and ErrRateLimited", r.err)
	}
	if s.count() != 3 {
		t.Errorf("hits = %d, want 3", s.count())
	}
}

func TestServerErrorsRetryable(t *testing.T) {
	for _, tc := range []struct {
		code int
		typ  string
	}{
		{500, "InternalServerException"},
		{503, "ServiceUnavailableException"},
		{429, "ModelNotReadyException"},
		{408, "ModelTimeoutException"},
		{502, "SomethingUnmodeled"},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { apiError(w, tc.code, tc.typ, "boom") })
		r := collect(context.Background(), newProvider(t, s, 1), simpleReq("x"))
		if !errors.Is(r.err, infinity.ErrRetryable) || s.count() != 1 {
			t.Errorf("%d %s: err = %v, hits %d", tc.code, tc.typ, r.err, s.count())
		}
	}
}

func TestExceptionMidStream(t *testing.T) {
	for _, typ := range []string{"throttlingException", "modelStreamErrorException", "internalServerException", "serviceUnavailableException"} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			streamHeader(w)
			event(w, "messageStart", messageStart)
			event(w, "contentBlockDelta", textDelta(0, "partial "))
			exception(w, typ, "it broke")
		})
		r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
		if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil || r.text != "partial " {
			t.Errorf("%s: err = %v, result %+v", typ, r.err, r)
		}
		if s.count() != 1 {
			t.Errorf("%s: hits = %d", typ, s.count())
		}
	}
}

func TestValidationExceptionMidStreamNotRetryable(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		exception(w, "validationException", "bad input")
	})
	r := collect(context.Background(), newProvider(t, s, 1), simpleReq("x"))
	if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) || !errors.Is(r.err, infinity.ErrInvalid) {
		t.Fatalf("err = %v", r.err)
	}
}

func TestConnectionClosedMidStream(t *testing.T) {
	for _, half := range []bool{true, false} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			var chunk bytes.Buffer
			event(&chunk, "messageStart", messageStart)
			event(&chunk, "contentBlockDelta", textDelta(0, "half a "))
			if half { // a frame cut in the middle
				var f bytes.Buffer
				event(&f, "contentBlockDelta", textDelta(0, "sentence"))
				chunk.Write(f.Bytes()[:f.Len()/2])
			}
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", chunk.Len())
			buf.Write(chunk.Bytes())
			buf.WriteString("\r\n")
			buf.Flush()
			// closed without the terminating chunk
		})
		r := collect(context.Background(), newProvider(t, s, 1), simpleReq("x"))
		if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil {
			t.Errorf("half %v: err = %v, done %v", half, r.err, r.done)
		}
	}
}

func TestStreamEndsWithoutMessageStop(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		event(w, "messageStart", messageStart)
		event(w, "contentBlockDelta", textDelta(0, "cut"))
		event(w, "contentBlockStop", blockStop(0))
		if n == 2 {
			event(w, "messageStop", messageStop("end_turn")) // but no metadata
		}
	})
	p := newProvider(t, s, 1)
	for i := 1; i <= 2; i++ {
		r := collect(context.Background(), p, simpleReq("x"))
		if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil {
			t.Fatalf("request %d: err = %v, done %v", i, r.err, r.done)
		}
	}
}

func TestClientErrors(t *testing.T) {
	for _, tc := range []struct {
		code    int
		typ     string
		hint    string
		invalid bool
	}{
		{403, "AccessDeniedException", "credentials", false},
		{403, "AccessDeniedException", "model access", false},
		{404, "ResourceNotFoundException", "model ID", false},
		{400, "ValidationException", "check the model ID", true},
		{403, "UnrecognizedClientException", "credentials", false},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { apiError(w, tc.code, tc.typ, "no") })
		r := collect(context.Background(), newProvider(t, s, 3), simpleReq("x"))
		if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) || errors.Is(r.err, infinity.ErrInvalid) != tc.invalid ||
			!strings.Contains(r.err.Error(), tc.hint) || s.count() != 1 {
			t.Errorf("%d %s: err = %v, hits %d", tc.code, tc.typ, r.err, s.count())
		}
	}
}

func TestCancelWhileStalled(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 { // stall mid-stream
			streamHeader(w)
			event(w, "messageStart", messageStart)
			event(w, "contentBlockDelta", textDelta(0, "thinking"))
		} // n == 2: stall before the headers
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	p := newProvider(t, s, 3)
	providertest.CancelWhileStalled(t, p)
}

func TestEarlyBreak(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { streamHeader(w); textTurn(w, "a", "b", "c") })
	p := newProvider(t, s, 1)
	providertest.EarlyBreak(t, p, "abc")
}

func TestNewValidation(t *testing.T) {
	ok := testConfig("http://127.0.0.1:1", nil, 1)
	for name, mod := range map[string]func(*Config){
		"no credentials": func(c *Config) { c.AWS.Credentials = nil },
		"no region":      func(c *Config) { c.AWS.Region = "" },
		"bad region":     func(c *Config) { c.AWS.Region = "us-east-1/x" },
		"bad endpoint":   func(c *Config) { c.AWS.BaseEndpoint = aws.String("ftp://host") },
		"no models":      func(c *Config) { c.Models = nil },
		"no model id":    func(c *Config) { c.Models = []infinity.ModelInfo{{ContextWindow: 1, MaxOutput: 1}} },
		"no window":      func(c *Config) { c.Models = []infinity.ModelInfo{{ID: "m", MaxOutput: 1}} },
		"no output":      func(c *Config) { c.Models = []infinity.ModelInfo{{ID: "m", ContextWindow: 1}} },
		"duplicate":      func(c *Config) { c.Models = append(append([]infinity.ModelInfo{}, testModels...), testModels...) },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	p, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Models(context.Background())
	if err != nil || !reflect.DeepEqual(ms, testModels) {
		t.Errorf("Models = %v, %v", ms, err)
	}
	if p.attempts != 1 {
		t.Errorf("attempts = %d", p.attempts)
	}
	ok.AWS.RetryMaxAttempts = 0
	if p, _ := New(ok); p.attempts != DefaultMaxAttempts {
		t.Errorf("default attempts = %d", p.attempts)
	}
}

func TestInvalidToolSchema(t *testing.T) {
	p := newTestProvider(t, testConfig("http://127.0.0.1:1", nil, 1))
	for _, schema := range []string{`[1]`, `{"type":"string"}`, `not json`} {
		req := simpleReq("x")
		req.Tools = []infinity.ToolSpec{{Name: "t", Schema: json.RawMessage(schema)}}
		if r := collect(context.Background(), p, req); !errors.Is(r.err, infinity.ErrInvalid) {
			t.Errorf("%s: err = %v", schema, r.err)
		}
	}
	req := simpleReq("x")
	req.Tools = []infinity.ToolSpec{{Schema: json.RawMessage(`{}`)}}
	if r := collect(context.Background(), p, req); !errors.Is(r.err, infinity.ErrInvalid) {
		t.Errorf("no name: err = %v", r.err)
	}
}

// BenchmarkStream measures the adapter's overhead (signing, serialization,
// event decoding) for one text + toolUse turn against a local server that
// answers from a prepared byte slice.
func BenchmarkStream(b *testing.B) {
	var resp bytes.Buffer
	event(&resp, "messageStart", messageStart)
	for _, d := range []string{"Let me ", "look that ", "up for ", "you."} {
		event(&resp, "contentBlockDelta", textDelta(0, d))
	}
	event(&resp, "contentBlockStop", blockStop(0))
	event(&resp, "contentBlockStart", toolStart(1, "t_bench", "search"))
	for _, f := range []string{`{"query": `, `"weather `, `in Paris"}`} {
		event(&resp, "contentBlockDelta", toolDelta(1, f))
	}
	event(&resp, "contentBlockStop", blockStop(1))
	event(&resp, "messageStop", messageStop("tool_use"))
	event(&resp, "metadata", metadata(100, 30))
	payload := resp.Bytes()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.Write(payload)
	}))
	defer srv.Close()
	p := newTestProvider(b, testConfig(srv.URL, srv.Client(), 1))
	req := simpleReq("what is the weather in Paris?")
	req.System = "You are helpful."
	req.Tools = []infinity.ToolSpec{{Name: "search", Schema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}`)}}
	ctx := context.Background()
	b.Run("adapter", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			r := collect(ctx, p, req)
			if r.err != nil || len(r.calls) != 1 || r.done == nil {
				b.Fatalf("%+v", r)
			}
		}
	})
	b.Run("http-floor", func(b *testing.B) { providertest.Floor(b, "application/vnd.amazon.eventstream", payload) })
}

// TestConcurrentStreams runs overlapping streams on one provider (and one
// client); under -race it checks that streams share no decoding state.
func TestConcurrentStreams(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		event(w, "messageStart", messageStart)
		for i := range 20 {
			event(w, "contentBlockDelta", textDelta(0, fmt.Sprintf("%d-%d ", n, i)))
		}
		event(w, "contentBlockStop", blockStop(0))
		event(w, "messageStop", messageStop("end_turn"))
		event(w, "metadata", metadata(10, 5))
	})
	p := newProvider(t, s, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r := collect(context.Background(), p, simpleReq("x"))
			if r.err != nil || r.done == nil || strings.Count(r.text, " ") != 20 {
				t.Errorf("%+v", r)
			}
		})
	}
	wg.Wait()
}

// TestStreamsKeepTheirConnection checks that no request write fails after
// the response has begun (the SDK's client closed the request body then,
// which made net/http close the connection under the stream).
func TestStreamsKeepTheirConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { streamHeader(w); textTurn(w, "ok") })
	p := newProvider(t, s, 1)
	var mu sync.Mutex
	var writeErrs []error
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err != nil {
				mu.Lock()
				defer mu.Unlock()
				writeErrs = append(writeErrs, i.Err)
			}
		},
	})
	for i := range 300 {
		if r := collect(ctx, p, simpleReq("x")); r.err != nil || r.text != "ok" {
			t.Fatalf("stream %d: %+v", i, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writeErrs) > 0 {
		t.Errorf("%d of 300 request writes failed, the first with %v", len(writeErrs), writeErrs[0])
	}
}

// BenchmarkRequest encodes a call's request with ten tools of a few
// properties each (the built-ins are eight).
func BenchmarkRequest(b *testing.B) {
	var specs []infinity.ToolSpec
	for i := range 10 {
		specs = append(specs, infinity.ToolSpec{Name: fmt.Sprintf("tool_%d", i), Description: "Does one thing, and says what it did in a sentence or two.",
			Schema: json.RawMessage(`{"type":"object","properties":{"seconds":{"type":"number","description":"How long, in seconds."},"reason":{"type":"string","description":"Why, for the log."}},"required":["seconds"]}`)})
	}
	p := &Provider{models: []infinity.ModelInfo{{ID: "m", MaxOutput: 100}}}
	req := &infinity.CompletionRequest{System: "sys", Items: []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}}, Tools: specs}
	b.ReportAllocs()
	for b.Loop() {
		if _, body, err := p.request(req); err != nil || !json.Valid(body) {
			b.Fatal(err)
		}
	}
}
