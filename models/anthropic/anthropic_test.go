package anthropic

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/providertest"
)

const testKey = "sk-test-secret-key"

var testModels = []infinity.ModelInfo{{ID: "claude-test", ContextWindow: 200000, MaxOutput: 8192}}

// server is a local Messages API; handle answers the n-th request (from 1).
type server struct {
	*httptest.Server
	mu     sync.Mutex
	hits   int
	bodies []map[string]any
	auth   []string
}

func newServer(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
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
		s.auth = append(s.auth, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Api-Key"))
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

func newProvider(t testing.TB, s *server, retries int) *Provider {
	t.Helper()
	p, err := New(Config{BaseURL: s.URL, APIKey: testKey, Models: testModels, MaxRetries: retries})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sse writes one server-sent event and flushes it.
func sse(w http.ResponseWriter, typ string, data string) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func sseHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func messageStart(input int) string {
	return fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-test","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":1}}}`, input)
}

func textStart(i int) string {
	return fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}`, i)
}

func textDelta(i int, s string) string {
	b, _ := json.Marshal(s)
	return fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}`, i, b)
}

func toolStart(i int, id, name string) string {
	return fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"tool_use","id":%q,"name":%q,"input":{}}}`, i, id, name)
}

func jsonDelta(i int, frag string) string {
	b, _ := json.Marshal(frag)
	return fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%s}}`, i, b)
}

func blockStop(i int) string { return fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, i) }

func messageDelta(stop string, output int) string {
	return fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":{"output_tokens":%d}}`, stop, output)
}

const messageStop = `{"type":"message_stop"}`

// textTurn streams a text response in deltas.
func textTurn(w http.ResponseWriter, deltas ...string) {
	sseHeader(w)
	sse(w, "message_start", messageStart(12))
	sse(w, "content_block_start", textStart(0))
	sse(w, "ping", `{"type": "ping"}`)
	for _, d := range deltas {
		sse(w, "content_block_delta", textDelta(0, d))
	}
	sse(w, "content_block_stop", blockStop(0))
	sse(w, "message_delta", messageDelta("end_turn", 7))
	sse(w, "message_stop", messageStop)
}

func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After-Ms", "1")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg)
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

func TestTextTurn(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { textTurn(w, "Hel", "lo, ", "world") })
	p := newProvider(t, s, 0)
	req := simpleReq("hi there")
	req.System = "be brief"
	req.Tools = []infinity.ToolSpec{{Name: "search", Description: "search the web",
		Schema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}},"required":["q"],"additionalProperties":false}`)}}
	r := collect(context.Background(), p, req)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.text != "Hello, world" {
		t.Errorf("text = %q", r.text)
	}
	if r.done == nil || r.done.Stop != infinity.StopEnd || r.done.Usage != (infinity.Usage{Input: 12, Output: 7}) {
		t.Errorf("done = %+v", r.done)
	}
	body := s.body(0)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("%s = %s, want %s", what, gj, wj)
		}
	}
	check("stream", body["stream"], true)
	check("model", body["model"], "claude-test")
	check("max_tokens", body["max_tokens"], float64(DefaultMaxTokens))
	check("system", body["system"], []any{map[string]any{"type": "text", "text": "be brief"}})
	check("messages", body["messages"], []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi there"}}}})
	check("tools", body["tools"], []any{map[string]any{
		"name": "search", "description": "search the web",
		"input_schema": map[string]any{
			"type":                 "object",
			"properties":           map[string]any{"q": map[string]any{"type": "string"}},
			"required":             []any{"q"},
			"additionalProperties": false,
		},
	}})
	if a := s.auth[0]; a != "Bearer "+testKey+"|"+testKey {
		t.Errorf("the API key was not sent as x-api-key and bearer token (auth headers %q)", a)
	}
}

func TestMaxTokensAndModel(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { textTurn(w, "ok") })
	p := newProvider(t, s, 0)
	req := simpleReq("x")
	req.Model, req.MaxTokens = "claude-other", 123
	if r := collect(context.Background(), p, req); r.err != nil {
		t.Fatal(r.err)
	}
	if b := s.body(0); b["model"] != "claude-other" || b["max_tokens"] != float64(123) {
		t.Errorf("model %v, max_tokens %v", b["model"], b["max_tokens"])
	}
}

func TestParallelToolCalls(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sseHeader(w)
		sse(w, "message_start", messageStart(40))
		sse(w, "content_block_start", textStart(0))
		sse(w, "content_block_delta", textDelta(0, "Checking both."))
		sse(w, "content_block_stop", blockStop(0))
		sse(w, "content_block_start", toolStart(1, "toolu_01A", "get_weather"))
		sse(w, "content_block_delta", jsonDelta(1, ""))
		sse(w, "content_block_delta", jsonDelta(1, `{"city": "Pa`))
		sse(w, "content_block_delta", jsonDelta(1, `ris", "unit`))
		sse(w, "content_block_delta", jsonDelta(1, `": "c"}`))
		sse(w, "content_block_stop", blockStop(1))
		sse(w, "content_block_start", toolStart(2, "toolu_01B", "get_time"))
		sse(w, "ping", `{"type":"ping"}`)
		sse(w, "content_block_delta", jsonDelta(2, `{"tz":`))
		sse(w, "content_block_delta", jsonDelta(2, ` "Europe/Paris"}`))
		sse(w, "content_block_stop", blockStop(2))
		sse(w, "content_block_start", toolStart(3, "toolu_01C", "now"))
		sse(w, "content_block_stop", blockStop(3))
		sse(w, "message_delta", messageDelta("tool_use", 55))
		sse(w, "message_stop", messageStop)
	})
	p := newProvider(t, s, 0)
	r := collect(context.Background(), p, simpleReq("weather and time in Paris?"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.text != "Checking both." {
		t.Errorf("text = %q", r.text)
	}
	want := []struct{ id, name, args string }{
		{"toolu_01A", "get_weather", `{"city":"Paris","unit":"c"}`},
		{"toolu_01B", "get_time", `{"tz":"Europe/Paris"}`},
		{"toolu_01C", "now", `{}`},
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
		sseHeader(w)
		sse(w, "message_start", messageStart(5))
		sse(w, "content_block_start", toolStart(0, "toolu_X", "write"))
		sse(w, "content_block_delta", jsonDelta(0, `{"text": "a very lo`))
		sse(w, "content_block_stop", blockStop(0))
		sse(w, "message_delta", messageDelta("max_tokens", 100))
		sse(w, "message_stop", messageStop)
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("go"))
	if r.err != nil || len(r.calls) != 0 || r.done == nil || r.done.Stop != infinity.StopMaxTokens {
		t.Fatalf("result = %+v, done %+v", r, r.done)
	}
}

func TestHistoryConversion(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { textTurn(w, "ok") })
	p := newProvider(t, s, 0)
	items := []infinity.Item{
		{Kind: infinity.KindUser, Text: "look both up"},
		{Kind: infinity.KindAssistant, Text: "On it."},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "toolu_a", Name: "lookup", Args: json.RawMessage(`{"k":"a"}`)}},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "toolu_b", Name: "lookup", Args: nil}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "toolu_a", Parts: []infinity.Part{{Type: "text", Text: "A is 1"}}}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "toolu_b", Parts: []infinity.Part{{Type: "text", Text: "no such key"}}, IsError: true}},
		{Kind: infinity.KindUser, Text: "thanks"},
	}
	if r := collect(context.Background(), p, infinity.CompletionRequest{Items: items}); r.err != nil {
		t.Fatal(r.err)
	}
	got, _ := json.Marshal(s.body(0)["messages"])
	want := `[` +
		`{"content":[{"text":"look both up","type":"text"}],"role":"user"},` +
		`{"content":[{"text":"On it.","type":"text"},` +
		`{"id":"toolu_a","input":{"k":"a"},"name":"lookup","type":"tool_use"},` +
		`{"id":"toolu_b","input":{},"name":"lookup","type":"tool_use"}],"role":"assistant"},` +
		`{"content":[{"content":[{"text":"A is 1","type":"text"}],"tool_use_id":"toolu_a","type":"tool_result"},` +
		`{"content":[{"text":"no such key","type":"text"}],"is_error":true,"tool_use_id":"toolu_b","type":"tool_result"},` +
		`{"text":"thanks","type":"text"}],"role":"user"}]`
	if string(got) != want {
		t.Errorf("messages =\n%s\nwant\n%s", got, want)
	}

	// A history that starts with an assistant turn gets a user message first;
	// a call-only turn has no (empty) text block.
	items = []infinity.Item{
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "toolu_c", Name: "spawn", Args: json.RawMessage(`{}`)}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "toolu_c"}},
	}
	if r := collect(context.Background(), p, infinity.CompletionRequest{Items: items}); r.err != nil {
		t.Fatal(r.err)
	}
	got, _ = json.Marshal(s.body(1)["messages"])
	want = `[` +
		`{"content":[{"text":"(conversation start)","type":"text"}],"role":"user"},` +
		`{"content":[{"id":"toolu_c","input":{},"name":"spawn","type":"tool_use"}],"role":"assistant"},` +
		`{"content":[{"tool_use_id":"toolu_c","type":"tool_result"}],"role":"user"}]`
	if string(got) != want {
		t.Errorf("messages =\n%s\nwant\n%s", got, want)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			apiError(w, http.StatusTooManyRequests, "rate_limit_error", "slow down")
			return
		}
		textTurn(w, "fine")
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if s.count() != 2 || r.text != "fine" || r.done == nil || r.events != 2 {
		t.Errorf("hits %d, result %+v", s.count(), r)
	}
}

func TestOverloadedEveryTime(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		apiError(w, 529, "overloaded_error", "Overloaded")
	})
	r := collect(context.Background(), newProvider(t, s, 2), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err = %v, want ErrRetryable", r.err)
	}
	if s.count() != 3 {
		t.Errorf("hits = %d, want 3 (1 + 2 retries)", s.count())
	}
}

func TestServerErrorsRetryable(t *testing.T) {
	for _, code := range []int{408, 409, 500, 503} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { apiError(w, code, "api_error", "boom") })
		r := collect(context.Background(), newProvider(t, s, -1), simpleReq("x"))
		if !errors.Is(r.err, infinity.ErrRetryable) || s.count() != 1 {
			t.Errorf("%d: err = %v, hits %d", code, r.err, s.count())
		}
	}
}

func TestErrorEventMidStream(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sseHeader(w)
		sse(w, "message_start", messageStart(3))
		sse(w, "content_block_start", textStart(0))
		sse(w, "content_block_delta", textDelta(0, "partial "))
		sse(w, "error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil {
		t.Fatalf("err = %v, done %v", r.err, r.done)
	}
	if !strings.Contains(r.err.Error(), "overloaded_error") {
		t.Errorf("err = %v", r.err)
	}
	if s.count() != 1 {
		t.Errorf("hits = %d", s.count())
	}
}

func TestInvalidRequestErrorEventNotRetryable(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sseHeader(w)
		sse(w, "error", `{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`)
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
	if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err = %v", r.err)
	}
}

func TestConnectionClosedMidStream(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		chunk := "event: message_start\ndata: " + messageStart(3) + "\n\n" +
			"event: content_block_start\ndata: " + textStart(0) + "\n\n" +
			"event: content_block_delta\ndata: " + textDelta(0, "half a ") + "\n\n"
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(chunk), chunk)
		buf.Flush()
		// closed without the terminating chunk
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil {
		t.Fatalf("err = %v, done %v", r.err, r.done)
	}
}

func TestStreamEndsWithoutMessageStop(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sseHeader(w)
		sse(w, "message_start", messageStart(3))
		sse(w, "content_block_start", textStart(0))
		sse(w, "content_block_delta", textDelta(0, "cut"))
		sse(w, "content_block_stop", blockStop(0))
		sse(w, "message_delta", messageDelta("end_turn", 2))
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
	if !errors.Is(r.err, infinity.ErrRetryable) || r.done != nil {
		t.Fatalf("err = %v, done %v", r.err, r.done)
	}
}

func TestUnauthorized(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		apiError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
	})
	r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
	if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err = %v, want a non-retryable error", r.err)
	}
	if msg := r.err.Error(); !strings.Contains(msg, "API key") || strings.Contains(msg, testKey) {
		t.Errorf("err = %q: want a hint about the API key, and not the key", msg)
	}
	if s.count() != 1 {
		t.Errorf("hits = %d, want 1 (no retries)", s.count())
	}
}

func TestClientErrors(t *testing.T) {
	for _, tc := range []struct {
		code    int
		typ     string
		hint    string
		invalid bool
	}{
		{400, "invalid_request_error", "check the model", true},
		{403, "permission_error", "permissions", false},
		{404, "not_found_error", "model name", false},
	} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { apiError(w, tc.code, tc.typ, "no") })
		r := collect(context.Background(), newProvider(t, s, 0), simpleReq("x"))
		if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) || errors.Is(r.err, infinity.ErrInvalid) != tc.invalid ||
			!strings.Contains(r.err.Error(), tc.hint) || s.count() != 1 {
			t.Errorf("%d: err = %v, hits %d", tc.code, r.err, s.count())
		}
	}
}

func TestCancelWhileStalled(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 { // stall mid-stream
			sseHeader(w)
			sse(w, "message_start", messageStart(3))
			sse(w, "content_block_start", textStart(0))
			sse(w, "content_block_delta", textDelta(0, "thinking"))
		} // n == 2: stall before the headers
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	p := newProvider(t, s, 0)
	providertest.CancelWhileStalled(t, p)
}

func TestEarlyBreak(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { textTurn(w, "a", "b", "c") })
	p := newProvider(t, s, 0)
	providertest.EarlyBreak(t, p, "abc")
}

func TestNewValidation(t *testing.T) {
	ok := Config{APIKey: "k", Models: testModels}
	for name, mod := range map[string]func(*Config){
		"no key":       func(c *Config) { c.APIKey = "" },
		"no models":    func(c *Config) { c.Models = nil },
		"no model id":  func(c *Config) { c.Models = []infinity.ModelInfo{{ContextWindow: 1, MaxOutput: 1}} },
		"no window":    func(c *Config) { c.Models = []infinity.ModelInfo{{ID: "m", MaxOutput: 1}} },
		"no output":    func(c *Config) { c.Models = []infinity.ModelInfo{{ID: "m", ContextWindow: 1}} },
		"duplicate":    func(c *Config) { c.Models = append(append([]infinity.ModelInfo{}, testModels...), testModels...) },
		"bad base url": func(c *Config) { c.BaseURL = "localhost:8080" },
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
}

func TestFromEnv(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { textTurn(w, "env") })
	t.Setenv("ANTHROPIC_API_KEY", "")
	if _, err := FromEnv(testModels); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("err = %v", err)
	}
	t.Setenv("ANTHROPIC_API_KEY", testKey)
	t.Setenv("ANTHROPIC_BASE_URL", s.URL)
	p, err := FromEnv(testModels)
	if err != nil {
		t.Fatal(err)
	}
	if r := collect(context.Background(), p, simpleReq("x")); r.err != nil || r.text != "env" {
		t.Fatalf("%+v", r)
	}
}

func TestInvalidToolSchema(t *testing.T) {
	p, _ := New(Config{APIKey: "k", Models: testModels})
	req := simpleReq("x")
	req.Tools = []infinity.ToolSpec{{Name: "t", Schema: json.RawMessage(`[1]`)}}
	if r := collect(context.Background(), p, req); !errors.Is(r.err, infinity.ErrInvalid) {
		t.Fatalf("err = %v", r.err)
	}
}

// BenchmarkStream measures the adapter's overhead for one text + tool_use
// turn against a local server that answers from a prepared byte slice.
func BenchmarkStream(b *testing.B) {
	var resp strings.Builder
	w := bufio.NewWriter(&resp)
	ev := func(typ, data string) { fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data) }
	ev("message_start", messageStart(100))
	ev("content_block_start", textStart(0))
	for _, d := range []string{"Let me ", "look that ", "up for ", "you."} {
		ev("content_block_delta", textDelta(0, d))
	}
	ev("content_block_stop", blockStop(0))
	ev("content_block_start", toolStart(1, "toolu_bench", "search"))
	for _, f := range []string{`{"query": `, `"weather `, `in Paris"}`} {
		ev("content_block_delta", jsonDelta(1, f))
	}
	ev("content_block_stop", blockStop(1))
	ev("message_delta", messageDelta("tool_use", 30))
	ev("message_stop", messageStop)
	w.Flush()
	payload := []byte(resp.String())

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(payload)
	}))
	defer srv.Close()
	p, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Models: testModels})
	if err != nil {
		b.Fatal(err)
	}
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
	b.Run("http-floor", func(b *testing.B) { providertest.Floor(b, "text/event-stream", payload) })
}

// A 429 after the retries is a RateLimitedError carrying the server's
// retry-after.
func TestRateLimitedCarriesRetryAfter(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
	})
	r := collect(context.Background(), newProvider(t, s, -1), simpleReq("x"))
	var rl *infinity.RateLimitedError
	if !errors.As(r.err, &rl) || rl.RetryAfter != 3*time.Second || !errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err %v, want a RateLimitedError with retry after 3s", r.err)
	}
}

// A schema's "required": null (a Go MCP server's nil slice) names no
// required property: it is left out, as the SDK did, since the API
// rejects a null "required".
func TestToolSchemaRequiredNull(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) { textTurn(w, "ok") })
	req := simpleReq("x")
	req.Tools = []infinity.ToolSpec{{Name: "nullreq", Schema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}},"required":null}`)},
		{Name: "emptyreq", Schema: json.RawMessage(`{"type":"object","properties":{},"required":[]}`)}}
	if r := collect(context.Background(), newProvider(t, s, 0), req); r.err != nil {
		t.Fatal(r.err)
	}
	tools, _ := s.body(0)["tools"].([]any)
	if len(tools) != 2 {
		t.Fatalf("tools = %v", s.body(0)["tools"])
	}
	first := tools[0].(map[string]any)["input_schema"].(map[string]any)
	if r, ok := first["required"]; ok {
		t.Errorf(`"required": null was sent as %v`, r)
	}
	second := tools[1].(map[string]any)["input_schema"].(map[string]any)
	if r, ok := second["required"].([]any); !ok || len(r) != 0 {
		t.Errorf(`"required": [] was sent as %v`, second["required"])
	}
}

// After message_stop the rest of a chunked body (its last chunk) is read,
// so that calls one after another reuse one HTTP/1.1 connection.
func TestConnectionReusedAfterMessageStop(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		textTurn(w, "a", "b")             // flushed event by event: a chunked body
		time.Sleep(20 * time.Millisecond) // its last chunk comes later
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Models: testModels})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := collect(context.Background(), p, simpleReq("x")); r.err != nil || r.text != "ab" {
			t.Fatalf("%+v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("3 calls one after another opened %d connections, want 1", conns)
	}
}

// Errors name the request-id the API gave the request (as the SDK's did),
// for an error answer and for an error event mid-stream.
func TestErrorsNameRequestID(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Request-Id", fmt.Sprintf("req_%d", n))
		if n == 1 {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: too large")
			return
		}
		sseHeader(w)
		sse(w, "message_start", messageStart(3))
		sse(w, "error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	})
	p := newProvider(t, s, -1)
	for _, want := range []string{`request ID "req_1"`, `request ID "req_2"`} {
		r := collect(context.Background(), p, simpleReq("x"))
		if r.err == nil || !strings.Contains(r.err.Error(), want) {
			t.Errorf("err %v, want it to name %s", r.err, want)
		}
	}
}

// A redirect to another origin is refused before the key follows it; one
// within the origin is followed, with the body sent again.
func TestRedirects(t *testing.T) {
	var elsewhereKeys sync.Map
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereKeys.Store(r.Header.Get("X-Api-Key"), true)
		textTurn(w, "elsewhere")
	}))
	t.Cleanup(elsewhere.Close)
	var s *httptest.Server
	s = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away/v1/messages":
			http.Redirect(w, r, elsewhere.URL+"/v1/messages", http.StatusTemporaryRedirect)
		case "/here/v1/messages":
			http.Redirect(w, r, s.URL+"/moved", http.StatusPermanentRedirect)
		case "/moved":
			if b, _ := io.ReadAll(r.Body); !json.Valid(b) || r.Header.Get("X-Api-Key") != testKey {
				http.Error(w, "no body or key", http.StatusBadRequest)
				return
			}
			textTurn(w, "moved")
		}
	}))
	t.Cleanup(s.Close)
	p, err := New(Config{BaseURL: s.URL + "/away", APIKey: testKey, Models: testModels})
	if err != nil {
		t.Fatal(err)
	}
	r := collect(context.Background(), p, simpleReq("x"))
	if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) || strings.Contains(r.err.Error(), testKey) {
		t.Errorf("redirect elsewhere: %v", r.err)
	}
	elsewhereKeys.Range(func(k, _ any) bool { t.Errorf("the other origin got a request (key %q)", k); return true })
	if p, err = New(Config{BaseURL: s.URL + "/here/", APIKey: testKey, Models: testModels}); err != nil {
		t.Fatal(err)
	}
	if r := collect(context.Background(), p, simpleReq("x")); r.err != nil || r.text != "moved" {
		t.Errorf("redirect within the origin: %+v", r)
	}
}
