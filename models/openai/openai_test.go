package openai_test

import (
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
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/openai"
	"github.com/infinity-runtime/infinity/models/providertest"
)

const testKey = "sk-test-secret-123"

var testModels = []infinity.ModelInfo{
	{ID: "test-model", ContextWindow: 8192, MaxOutput: 1024},
	{ID: "other-model", ContextWindow: 4096, MaxOutput: 512},
}

// fake is a local OpenAI-compatible server. handle answers the n-th request
// (from 1); the request bodies and headers are recorded.
type fake struct {
	srv     *httptest.Server
	hits    atomic.Int32
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	handle  func(w http.ResponseWriter, r *http.Request, n int)
}

func newFake(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *fake {
	t.Helper()
	return newFakeWith(t, handle, nil)
}

// newFakeWith is newFake with setup run on the server before it starts.
func newFakeWith(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int), setup func(*http.Server)) *fake {
	t.Helper()
	f := &fake{handle: handle}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"no route","type":"not_found"}}`, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		n := int(f.hits.Add(1))
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		f.handle(w, r, n)
	}))
	if setup != nil {
		setup(f.srv.Config)
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) body(t *testing.T, i int) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(f.bodies[i], &m); err != nil {
		t.Fatalf("request body %d: %v: %s", i, err, f.bodies[i])
	}
	return m
}

func (f *fake) provider(t testing.TB, mod func(*openai.Config)) *openai.Provider {
	t.Helper()
	cfg := openai.Config{BaseURL: f.srv.URL + "/v1", APIKey: testKey, Models: testModels, HTTPClient: f.srv.Client()}
	if mod != nil {
		mod(&cfg)
	}
	p, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sse writes server-sent events the way OpenAI does.
type sse struct {
	w http.ResponseWriter
}

func startSSE(w http.ResponseWriter) sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return sse{w}
}

func (s sse) data(v any) {
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	fmt.Fprintf(s.w, "data: %s\n\n", b)
	s.w.(http.Flusher).Flush()
}

func chunk(delta map[string]any, finish any) map[string]any {
	return map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "test-model",
		"system_fingerprint": "fp_1",
		"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		"usage":              nil,
	}
}

func usageChunk(in, out int) map[string]any {
	return map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "test-model",
		"choices": []any{},
		"usage":   map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out},
	}
}

func toolFrag(index int, id, name, args string) map[string]any {
	tc := map[string]any{"index": index, "function": map[string]any{"arguments": args}}
	if id != "" {
		tc["id"] = id
		tc["type"] = "function"
		tc["function"].(map[string]any)["name"] = name
	}
	return map[string]any{"tool_calls": []any{tc}}
}

// textReply streams parts as content deltas, then stop, usage and [DONE].
func textReply(parts ...string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		s := startSSE(w)
		s.data(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
		for _, p := range parts {
			s.data(chunk(map[string]any{"content": p}, nil))
		}
		s.data(chunk(map[string]any{}, "stop"))
		s.data(usageChunk(12, 3))
		s.data("[DONE]")
	}
}

func apiError(status int, msg, typ, code string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After-Ms", "1")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code, "param": nil}})
		w.Write(b)
	}
}

type result struct {
	events []infinity.StreamEvent
	text   string
	calls  []infinity.ToolCall
	done   *infinity.StreamEvent
	err    error
}

func collect(seq func(func(infinity.StreamEvent, error) bool)) result {
	var r result
	for ev, err := range seq {
		if err != nil {
			r.err = err
			break
		}
		r.events = append(r.events, ev)
		switch ev.Kind {
		case infinity.StreamText:
			r.text += ev.Text
		case infinity.StreamToolCall:
			r.calls = append(r.calls, *ev.Call)
		case infinity.StreamDone:
			r.done = &ev
		}
	}
	return r
}

var schema = json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`)

func TestTextTurn(t *testing.T) {
	f := newFake(t, textReply("Hel", "lo, ", "world"))
	p := f.provider(t, nil)
	req := infinity.CompletionRequest{
		System:    "You are terse.",
		Items:     []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}},
		Tools:     []infinity.ToolSpec{{Name: "read", Description: "Read a file.", Schema: schema}},
		MaxTokens: 100,
	}
	r := collect(p.Stream(t.Context(), req))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.text != "Hello, world" {
		t.Errorf("text %q", r.text)
	}
	if n := len(r.events); n != 4 {
		t.Errorf("%d events, want 3 deltas and done: %+v", n, r.events)
	}
	if r.done == nil || r.done.Stop != infinity.StopEnd || r.done.Usage != (infinity.Usage{Input: 12, Output: 3}) {
		t.Errorf("done %+v", r.done)
	}
	if r.events[len(r.events)-1].Kind != infinity.StreamDone {
		t.Error("done is not last")
	}

	b := f.body(t, 0)
	if b["model"] != "test-model" || b["stream"] != true || b["max_tokens"] != float64(100) {
		t.Errorf("model/stream/max_tokens: %v %v %v", b["model"], b["stream"], b["max_tokens"])
	}
	if so, _ := b["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options %v", b["stream_options"])
	}
	want := []any{
		map[string]any{"role": "system", "content": "You are terse."},
		map[string]any{"role": "user", "content": "hi"},
	}
	if !reflect.DeepEqual(b["messages"], want) {
		t.Errorf("messages %v", b["messages"])
	}
	var wantSchema any
	json.Unmarshal(schema, &wantSchema)
	wantTools := []any{map[string]any{"type": "function", "function": map[string]any{
		"name": "read", "description": "Read a file.", "parameters": wantSchema,
	}}}
	if !reflect.DeepEqual(b["tools"], wantTools) {
		t.Errorf("tools %v", b["tools"])
	}
	if got := f.headers[0].Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("authorization %q", got)
	}
}

func parallelReply(w http.ResponseWriter, r *http.Request, n int) {
	s := startSSE(w)
	s.data(chunk(map[string]any{"role": "assistant", "content": nil}, nil))
	s.data(chunk(map[string]any{"content": "Reading both."}, nil))
	s.data(chunk(toolFrag(0, "call_a", "read", ""), nil))
	s.data(chunk(toolFrag(0, "", "", `{"pa`), nil))
	s.data(chunk(toolFrag(1, "call_b", "write", ""), nil))
	s.data(chunk(toolFrag(0, "", "", `th":"a.txt"}`), nil))
	s.data(chunk(toolFrag(1, "", "", `{"path":"b.txt",`), nil))
	s.data(chunk(toolFrag(1, "", "", `"text":"hi"}`), nil))
	s.data(chunk(map[string]any{}, "tool_calls"))
	s.data(usageChunk(40, 25))
	s.data("[DONE]")
}

func TestParallelToolCalls(t *testing.T) {
	f := newFake(t, parallelReply)
	p := f.provider(t, nil)
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "go"}}}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []infinity.ToolCall{
		{ID: "call_a", Name: "read", Args: json.RawMessage(`{"path":"a.txt"}`)},
		{ID: "call_b", Name: "write", Args: json.RawMessage(`{"path":"b.txt","text":"hi"}`)},
	}
	if !reflect.DeepEqual(r.calls, want) {
		t.Errorf("calls %+v", r.calls)
	}
	if r.text != "Reading both." {
		t.Errorf("text %q", r.text)
	}
	if r.done == nil || r.done.Stop != infinity.StopToolUse || r.done.Usage != (infinity.Usage{Input: 40, Output: 25}) {
		t.Errorf("done %+v", r.done)
	}
	kinds := make([]infinity.StreamEventKind, len(r.events))
	for i, ev := range r.events {
		kinds[i] = ev.Kind
	}
	if !reflect.DeepEqual(kinds, []infinity.StreamEventKind{infinity.StreamText, infinity.StreamToolCall, infinity.StreamToolCall, infinity.StreamDone}) {
		t.Errorf("kinds %v", kinds)
	}
	// No limit asked: the model's output limit is sent.
	if b := f.body(t, 0); b["max_tokens"] != float64(1024) {
		t.Errorf("max_tokens %v", b["max_tokens"])
	}
}

// Ollama sends each whole call at index 0 and finishes with "stop", and
// needs no key.
func TestOllamaStyleCalls(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		s := startSSE(w)
		s.data(chunk(map[string]any{"role": "assistant", "content": "", "tool_calls": []any{
			map[string]any{"id": "call_1", "index": 0, "type": "function", "function": map[string]any{"name": "read", "arguments": `{"path":"x"}`}},
		}}, nil))
		s.data(chunk(map[string]any{"role": "assistant", "content": "", "tool_calls": []any{
			map[string]any{"id": "call_2", "index": 0, "type": "function", "function": map[string]any{"name": "read", "arguments": `{"path":"y"}`}},
		}}, nil))
		s.data(chunk(map[string]any{"role": "assistant", "content": ""}, "stop"))
		s.data("[DONE]") // no usage chunk
	})
	p := f.provider(t, func(c *openai.Config) { c.APIKey = "" })
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{Model: "other-model", Items: []infinity.Item{{Kind: infinity.KindUser, Text: "go"}}}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.calls) != 2 || r.calls[0].ID != "call_1" || r.calls[1].ID != "call_2" || string(r.calls[1].Args) != `{"path":"y"}` {
		t.Errorf("calls %+v", r.calls)
	}
	if r.done == nil || r.done.Stop != infinity.StopToolUse || r.done.Usage != (infinity.Usage{}) {
		t.Errorf("done %+v", r.done)
	}
	if got := f.headers[0].Get("Authorization"); got != "" {
		t.Errorf("authorization sent without a key: %q", got)
	}
	if b := f.body(t, 0); b["model"] != "other-model" || b["max_tokens"] != float64(512) {
		t.Errorf("model %v max_tokens %v", b["model"], b["max_tokens"])
	}
}

func TestCallEdgeCases(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		s := startSSE(w)
		s.data(chunk(toolFrag(0, "", "", ""), nil))                     // no id at all
		s.data(chunk(toolFrag(1, "call_t", "read", `{"path":"x`), nil)) // cut by the limit
		s.data(chunk(map[string]any{}, "length"))
		s.data(usageChunk(1, 2))
		s.data("[DONE]")
	})
	p := f.provider(t, nil)
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "go"}}}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.calls) != 2 {
		t.Fatalf("calls %+v", r.calls)
	}
	if !strings.HasPrefix(r.calls[0].ID, "call_") || string(r.calls[0].Args) != "{}" {
		t.Errorf("synthesised call %+v", r.calls[0])
	}
	if string(r.calls[1].Args) != `"{\"path\":\"x"` {
		t.Errorf("truncated args %s", r.calls[1].Args)
	}
	if r.done.Stop != infinity.StopMaxTokens {
		t.Errorf("stop %v", r.done.Stop)
	}
}

func TestHistoryWithCalls(t *testing.T) {
	f := newFake(t, textReply("done"))
	p := f.provider(t, nil)
	items := []infinity.Item{
		{Kind: infinity.KindUser, Text: "read a and b"},
		{Kind: infinity.KindAssistant, Text: "Reading."},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "call_a", Name: "read", Args: json.RawMessage(`{"path":"a"}`)}},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "call_b", Name: "read"}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call_a", Parts: []infinity.Part{{Type: "text", Text: "A"}}}},
		{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call_b", IsError: true, Parts: []infinity.Part{{Type: "text", Text: "no such file"}}}},
		{Kind: infinity.KindUser, Text: "thanks"},
	}
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{System: "sys", Items: items}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []any{
		map[string]any{"role": "system", "content": "sys"},
		map[string]any{"role": "user", "content": "read a and b"},
		map[string]any{"role": "assistant", "content": "Reading.", "tool_calls": []any{
			map[string]any{"id": "call_a", "type": "function", "function": map[string]any{"name": "read", "arguments": `{"path":"a"}`}},
			map[string]any{"id": "call_b", "type": "function", "function": map[string]any{"name": "read", "arguments": `{}`}},
		}},
		map[string]any{"role": "tool", "tool_call_id": "call_a", "content": "A"},
		map[string]any{"role": "tool", "tool_call_id": "call_b", "content": "Error: no such file"},
		map[string]any{"role": "user", "content": "thanks"},
	}
	if got := f.body(t, 0)["messages"]; !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("messages:\n%s", g)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	for _, status := range []int{429, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					apiError(status, "slow down", "rate_limit_exceeded", "")(w, r, n)
					return
				}
				textReply("ok")(w, r, n)
			})
			r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}}}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.text != "ok" || r.done == nil || len(r.events) != 2 {
				t.Errorf("events %+v", r.events)
			}
			if n := f.hits.Load(); n != 2 {
				t.Errorf("%d hits, want 2", n)
			}
		})
	}
}

func TestRetryExhausted(t *testing.T) {
	f := newFake(t, apiError(429, "Rate limit reached", "requests", "rate_limit_exceeded"))
	r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}))
	if !errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err %v, want retryable", r.err)
	}
	t.Log(r.err)
	var apiErr *openai.Error
	if !errors.As(r.err, &apiErr) || apiErr.StatusCode != 429 {
		t.Errorf("err %v does not wrap the 429", r.err)
	}
	if n := f.hits.Load(); n != 1+openai.DefaultMaxRetries {
		t.Errorf("%d hits, want %d", n, 1+openai.DefaultMaxRetries)
	}
	// Retries off.
	f.hits.Store(0)
	r = collect(f.provider(t, func(c *openai.Config) { c.MaxRetries = -1 }).Stream(t.Context(), infinity.CompletionRequest{}))
	if !errors.Is(r.err, infinity.ErrRetryable) || f.hits.Load() != 1 {
		t.Errorf("no retries: err %v, %d hits", r.err, f.hits.Load())
	}
}

func TestConnectionRefused(t *testing.T) {
	f := newFake(t, textReply("x"))
	p := f.provider(t, func(c *openai.Config) { c.MaxRetries = -1 })
	f.srv.Close()
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{}))
	if !errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err %v, want retryable", r.err)
	}
}

func TestStreamCut(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, r *http.Request, n int){
		"aborted": func(w http.ResponseWriter, r *http.Request, n int) {
			s := startSSE(w)
			s.data(chunk(map[string]any{"content": "Hello"}, nil))
			s.data(chunk(map[string]any{"content": " there"}, nil))
			s.data(chunk(toolFrag(0, "call_a", "read", `{"pa`), nil))
			panic(http.ErrAbortHandler) // drops the connection mid-body
		},
		"hijacked": func(w http.ResponseWriter, r *http.Request, n int) {
			s := startSSE(w)
			s.data(chunk(map[string]any{"content": "Hello"}, nil))
			s.data(chunk(map[string]any{"content": " there"}, nil))
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			buf.WriteString("1f\r\ndata: {\"id\":\"x\",\"choi") // half a chunk
			buf.Flush()
			conn.Close()
		},
		"no finish": func(w http.ResponseWriter, r *http.Request, n int) {
			s := startSSE(w)
			s.data(chunk(map[string]any{"content": "Hello"}, nil))
			s.data(chunk(map[string]any{"content": " there"}, nil))
		},
		"error event": func(w http.ResponseWriter, r *http.Request, n int) {
			s := startSSE(w)
			s.data(chunk(map[string]any{"content": "Hello"}, nil))
			s.data(chunk(map[string]any{"content": " there"}, nil))
			s.data(map[string]any{"error": map[string]any{"message": "The server had an error", "type": "server_error"}})
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, h)
			r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}))
			if !errors.Is(r.err, infinity.ErrRetryable) {
				t.Fatalf("err %v, want retryable", r.err)
			}
			t.Log(r.err)
			if r.text != "Hello there" || len(r.calls) != 0 || r.done != nil {
				t.Errorf("before the error: %+v", r.events)
			}
			if f.hits.Load() != 1 {
				t.Errorf("%d hits: a started stream must not be retried", f.hits.Load())
			}
		})
	}
}

func TestErrorEventAboutRequest(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		s := startSSE(w)
		s.data(map[string]any{"error": map[string]any{"message": "prompt too long", "type": "BadRequestError", "code": 400}})
	})
	r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}))
	if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err %v, want a final error", r.err)
	}
}

func TestFinalHTTPErrors(t *testing.T) {
	cases := []struct {
		status      int
		says        string
		invalid     bool
		serverQuote bool
	}{
		{401, "API key", false, false},
		{403, "may use model", false, false},
		{404, "base URL", false, true},
		{400, "context window", true, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			f := newFake(t, apiError(c.status, "Incorrect API key provided: "+testKey, "invalid_request_error", "invalid_api_key"))
			r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}))
			if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) {
				t.Fatalf("err %v, want final", r.err)
			}
			msg := r.err.Error()
			t.Log(msg)
			if !strings.Contains(msg, c.says) {
				t.Errorf("message %q does not mention %q", msg, c.says)
			}
			if strings.Contains(msg, testKey) != c.serverQuote {
				t.Errorf("message %q: server message quoted = %v, want %v", msg, !c.serverQuote, c.serverQuote)
			}
			if errors.Is(r.err, infinity.ErrInvalid) != c.invalid {
				t.Errorf("ErrInvalid = %v", !c.invalid)
			}
			var apiErr *openai.Error
			if !errors.As(r.err, &apiErr) || apiErr.StatusCode != c.status {
				t.Errorf("does not wrap the API error")
			}
			if f.hits.Load() != 1 {
				t.Errorf("%d hits, want 1", f.hits.Load())
			}
		})
	}
}

func TestCancel(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stall := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	t.Run("before headers", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { stall(r) })
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		r := collect(f.provider(t, nil).Stream(ctx, infinity.CompletionRequest{}))
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err %v", r.err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("mid-stream", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			s := startSSE(w)
			s.data(chunk(map[string]any{"content": "Hello"}, nil))
			stall(r)
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var got []string
		var gotErr error
		start := time.Now()
		for ev, err := range f.provider(t, nil).Stream(ctx, infinity.CompletionRequest{}) {
			if err != nil {
				gotErr = err
				break
			}
			got = append(got, ev.Text)
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		if !errors.Is(gotErr, context.Canceled) || !reflect.DeepEqual(got, []string{"Hello"}) {
			t.Fatalf("got %q, err %v", got, gotErr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("already", func(t *testing.T) {
		f := newFake(t, textReply("x"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := collect(f.provider(t, nil).Stream(ctx, infinity.CompletionRequest{}))
		if !errors.Is(r.err, context.Canceled) || f.hits.Load() != 0 {
			t.Fatalf("err %v, %d hits", r.err, f.hits.Load())
		}
	})
}

// Breaking out of the loop early closes the stream and stops the sequence.
func TestEarlyBreak(t *testing.T) {
	f := newFake(t, parallelReply)
	n := 0
	for range f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}) {
		n++
		break
	}
	if n != 1 {
		t.Fatal(n)
	}
}

func TestMaxCompletionTokens(t *testing.T) {
	f := newFake(t, textReply("ok"))
	p := f.provider(t, func(c *openai.Config) { c.MaxTokensParam = openai.ParamMaxCompletionTokens })
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{MaxTokens: 5000}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	b := f.body(t, 0)
	if _, ok := b["max_tokens"]; ok || b["max_completion_tokens"] != float64(1024) {
		t.Errorf("body %v", b)
	}
}

func TestRequestValidation(t *testing.T) {
	f := newFake(t, textReply("x"))
	p := f.provider(t, nil)
	for name, req := range map[string]infinity.CompletionRequest{
		"unknown model": {Model: "gpt-nope"},
		"bad schema":    {Tools: []infinity.ToolSpec{{Name: "t", Schema: json.RawMessage(`[1]`)}}},
	} {
		r := collect(p.Stream(t.Context(), req))
		if !errors.Is(r.err, infinity.ErrInvalid) {
			t.Errorf("%s: err %v", name, r.err)
		}
	}
	if f.hits.Load() != 0 {
		t.Errorf("%d hits", f.hits.Load())
	}
}

func TestNew(t *testing.T) {
	ok := openai.Config{BaseURL: "http://localhost:11434/v1", Models: testModels[:1]}
	for name, mod := range map[string]func(*openai.Config){
		"no models":       func(c *openai.Config) { c.Models = nil },
		"bad url":         func(c *openai.Config) { c.BaseURL = "localhost:11434" },
		"ftp url":         func(c *openai.Config) { c.BaseURL = "ftp://x/v1" },
		"openai, no key":  func(c *openai.Config) { c.BaseURL = "" },
		"empty id":        func(c *openai.Config) { c.Models = []infinity.ModelInfo{{ContextWindow: 1, MaxOutput: 1}} },
		"duplicate":       func(c *openai.Config) { c.Models = []infinity.ModelInfo{testModels[0], testModels[0]} },
		"no window":       func(c *openai.Config) { c.Models = []infinity.ModelInfo{{ID: "m", MaxOutput: 1}} },
		"no output limit": func(c *openai.Config) { c.Models = []infinity.ModelInfo{{ID: "m", ContextWindow: 1}} },
		"output > window": func(c *openai.Config) { c.Models = []infinity.ModelInfo{{ID: "m", ContextWindow: 1, MaxOutput: 2}} },
		"bad param":       func(c *openai.Config) { c.MaxTokensParam = "max" },
	} {
		c := ok
		mod(&c)
		if _, err := openai.New(c); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	p, err := openai.New(ok)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Models(t.Context())
	if err != nil || !reflect.DeepEqual(ms, testModels[:1]) {
		t.Errorf("models %v %v", ms, err)
	}
	if _, err := openai.New(openai.Config{APIKey: "k", Models: testModels}); err != nil {
		t.Errorf("default base URL: %v", err)
	}
}

func TestConfigHidesKey(t *testing.T) {
	c := openai.Config{APIKey: testKey, Models: testModels}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.LogValue().String()} {
		if strings.Contains(s, testKey) {
			t.Errorf("key in %q", s)
		}
	}
}

func TestFromEnv(t *testing.T) {
	f := newFake(t, textReply("env"))
	t.Setenv("OPENAI_BASE_URL", f.srv.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "sk-env")
	p, err := openai.FromEnv(testModels)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(p.Stream(t.Context(), infinity.CompletionRequest{}))
	if r.err != nil || r.text != "env" {
		t.Fatalf("%+v", r)
	}
	if got := f.headers[0].Get("Authorization"); got != "Bearer sk-env" {
		t.Errorf("authorization %q", got)
	}
}

func BenchmarkStream(b *testing.B) {
	// One turn: ten text deltas and two tool calls in fragments, pre-rendered.
	var sb strings.Builder
	put := func(v any) {
		j, _ := json.Marshal(v)
		fmt.Fprintf(&sb, "data: %s\n\n", j)
	}
	put(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for i := range 10 {
		put(chunk(map[string]any{"content": fmt.Sprintf("word%d ", i)}, nil))
	}
	put(chunk(toolFrag(0, "call_a", "read", ""), nil))
	put(chunk(toolFrag(0, "", "", `{"path":`), nil))
	put(chunk(toolFrag(0, "", "", `"a.txt"}`), nil))
	put(chunk(toolFrag(1, "call_b", "read", ""), nil))
	put(chunk(toolFrag(1, "", "", `{"path":"b.txt"}`), nil))
	put(chunk(map[string]any{}, "tool_calls"))
	put(usageChunk(100, 40))
	sb.WriteString("data: [DONE]\n\n")
	body := []byte(sb.String())
	f := newFake(b, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	})
	p := f.provider(b, nil)
	req := infinity.CompletionRequest{
		System: "sys",
		Items:  []infinity.Item{{Kind: infinity.KindUser, Text: "read a and b"}},
		Tools:  []infinity.ToolSpec{{Name: "read", Description: "Read a file.", Schema: schema}},
	}
	ctx := context.Background()
	b.Run("adapter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			calls := 0
			for ev, err := range p.Stream(ctx, req) {
				if err != nil {
					b.Fatal(err)
				}
				if ev.Kind == infinity.StreamToolCall {
					calls++
				}
			}
			if calls != 2 {
				b.Fatal(calls)
			}
		}
		f.mu.Lock()
		f.bodies = nil
		f.mu.Unlock()
	})
	// Eight streams at a time per CPU through the provider's own client
	// (Config.HTTPClient unset), as the runtime runs many threads at once.
	dp := f.provider(b, func(c *openai.Config) { c.HTTPClient = nil })
	b.Run("parallel-default-client", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				calls := 0
				for ev, err := range dp.Stream(ctx, req) {
					if err != nil {
						b.Error(err)
						return
					}
					if ev.Kind == infinity.StreamToolCall {
						calls++
					}
				}
				if calls != 2 {
					b.Error(calls)
					return
				}
			}
		})
		f.mu.Lock()
		f.bodies = nil
		f.mu.Unlock()
	})
	b.Run("http-floor", func(b *testing.B) { providertest.Floor(b, "text/event-stream", body) })
}

// A 429 after the retries is a RateLimitedError carrying the server's
// retry-after, so the runtime backs off the whole provider.
func TestRateLimitedCarriesRetryAfter(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded","param":null}}`))
	})
	r := collect(f.provider(t, func(c *openai.Config) { c.MaxRetries = -1 }).Stream(t.Context(), infinity.CompletionRequest{}))
	var rl *infinity.RateLimitedError
	if !errors.As(r.err, &rl) || rl.RetryAfter != 7*time.Second || !errors.Is(r.err, infinity.ErrRateLimited) || !errors.Is(r.err, infinity.ErrRetryable) {
		t.Fatalf("err %v, want a RateLimitedError with retry after 7s", r.err)
	}
}

func TestRequestHeaders(t *testing.T) {
	f := newFake(t, textReply("ok"))
	if r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{})); r.err != nil {
		t.Fatal(r.err)
	}
	h := f.headers[0]
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"Accept":        "application/json",
		"Authorization": "Bearer " + testKey,
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "infinity-runtime") {
		t.Errorf("user agent %q", ua)
	}
	for k := range h {
		if strings.HasPrefix(k, "X-Stainless") || k == "Openai-Organization" || k == "Openai-Project" {
			t.Errorf("header %s sent", k)
		}
	}
}

// The base URL is a directory whether or not it ends in a slash.
func TestBaseURLForms(t *testing.T) {
	f := newFake(t, textReply("ok"))
	for _, base := range []string{f.srv.URL + "/v1", f.srv.URL + "/v1/"} {
		p := f.provider(t, func(c *openai.Config) { c.BaseURL = base })
		if r := collect(p.Stream(t.Context(), infinity.CompletionRequest{})); r.err != nil || r.text != "ok" {
			t.Errorf("%s: %+v", base, r)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	withHeader := func(status int, k, v string) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n > 1 {
				textReply("ok")(w, r, n)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(k, v)
			w.WriteHeader(status)
			w.Write([]byte(`{"error":{"message":"m","type":"t"}}`))
		}
	}
	cases := []struct {
		name      string
		handle    func(w http.ResponseWriter, r *http.Request, n int)
		hits      int32
		retryable bool
		ok        bool
	}{
		{"x-should-retry false", withHeader(503, "X-Should-Retry", "false"), 1, true, false},
		{"x-should-retry true", withHeader(400, "X-Should-Retry", "true"), 2, false, true},
		{"retry-after over two minutes", withHeader(429, "Retry-After", "300"), 1, true, false},
		{"retry-after date", withHeader(503, "Retry-After", time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat)), 2, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.handle)
			r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}))
			if (r.err == nil) != c.ok || r.err != nil && errors.Is(r.err, infinity.ErrRetryable) != c.retryable {
				t.Errorf("err %v", r.err)
			}
			if n := f.hits.Load(); n != c.hits {
				t.Errorf("%d hits, want %d", n, c.hits)
			}
		})
	}
	t.Run("429 asking for five minutes", func(t *testing.T) {
		f := newFake(t, withHeader(429, "Retry-After", "300"))
		r := collect(f.provider(t, nil).Stream(t.Context(), infinity.CompletionRequest{}))
		var rl *infinity.RateLimitedError
		if !errors.As(r.err, &rl) || rl.RetryAfter != 300*time.Second {
			t.Errorf("err %v", r.err)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		f := newFake(t, withHeader(503, "Retry-After", "60"))
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		r := collect(f.provider(t, nil).Stream(ctx, infinity.CompletionRequest{}))
		if !errors.Is(r.err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("err %v after %v", r.err, time.Since(start))
		}
	})
}

// Error answers that are not OpenAI's {"error": {...}} are still
// classified by their status, with the server's message where one is.
func TestErrorBodies(t *testing.T) {
	cases := []struct {
		status       int
		ct, body     string
		says         string
		retryable    bool
		invalid      bool
		code, typ    string
		notMentioned string
	}{
		{502, "text/html", "<html>Bad Gateway</html>", "HTTP 502 Bad Gateway", true, false, "", "", "html"},
		{400, "application/json", `{"object":"error","message":"prompt is too long","type":"BadRequestError","param":null,"code":400}`, `server says "prompt is too long"`, false, true, "400", "BadRequestError", ""},
		{400, "application/json", `{"error":"max_tokens is too large"}`, `server says "max_tokens is too large"`, false, true, "", "", ""},
		{404, "application/json", `{"detail":"Not Found"}`, `server says "Not Found"`, false, false, "", "", ""},
		{429, "application/json", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, "(insufficient_quota)", true, false, "insufficient_quota", "insufficient_quota", "exceeded"},
		{401, "application/json", `{"error":{"message":"Incorrect API key provided: sk-...","code":"invalid_api_key"}}`, "(invalid_api_key)", false, false, "invalid_api_key", "", "Incorrect"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status, " ", c.body), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", c.ct)
				w.WriteHeader(c.status)
				w.Write([]byte(c.body))
			})
			r := collect(f.provider(t, func(c *openai.Config) { c.MaxRetries = -1 }).Stream(t.Context(), infinity.CompletionRequest{}))
			if r.err == nil {
				t.Fatal("no error")
			}
			msg := r.err.Error()
			t.Log(msg)
			if !strings.Contains(msg, c.says) || c.notMentioned != "" && strings.Contains(msg, c.notMentioned) {
				t.Errorf("message %q", msg)
			}
			if errors.Is(r.err, infinity.ErrRetryable) != c.retryable || errors.Is(r.err, infinity.ErrInvalid) != c.invalid {
				t.Errorf("retryable %v, invalid %v", errors.Is(r.err, infinity.ErrRetryable), errors.Is(r.err, infinity.ErrInvalid))
			}
			var e *openai.Error
			if !errors.As(r.err, &e) || e.StatusCode != c.status || e.Code != c.code || e.Type != c.typ || e.Header.Get("Content-Type") != c.ct {
				t.Errorf("error %#v", e)
			}
		})
	}
}

// A redirect to another origin is refused (it would take the key there);
// one within the base URL's origin is followed.
func TestRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		textReply("elsewhere")(w, r, 1)
	}))
	t.Cleanup(other.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/chat/completions", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/v2/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v3/chat/completions", http.StatusPermanentRedirect)
	})
	mux.HandleFunc("/v3/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		textReply("moved")(w, r, 1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, hc := range []*http.Client{nil, srv.Client()} {
		p, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", APIKey: testKey, Models: testModels, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		r := collect(p.Stream(t.Context(), infinity.CompletionRequest{}))
		if r.err == nil || errors.Is(r.err, infinity.ErrRetryable) || elsewhere.Load() != 0 {
			t.Errorf("cross-origin redirect: %v, %d requests elsewhere", r.err, elsewhere.Load())
		}
		t.Log(r.err)
		p, err = openai.New(openai.Config{BaseURL: srv.URL + "/v2", APIKey: testKey, Models: testModels, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		if r := collect(p.Stream(t.Context(), infinity.CompletionRequest{})); r.err != nil || r.text != "moved" {
			t.Errorf("same-origin redirect: %+v", r)
		}
	}
}

// Streams work over HTTP/2 (TLS) as over HTTP/1.1.
func TestHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "not HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		io.Copy(io.Discard, r.Body)
		parallelReply(w, r, 1)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", APIKey: testKey, Models: testModels, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r := collect(p.Stream(t.Context(), infinity.CompletionRequest{}))
		if r.err != nil || len(r.calls) != 2 || r.done == nil {
			t.Fatalf("%+v", r)
		}
	}
	providertest.EarlyBreak(t, p, "Reading both.")
}

// The provider's own client reuses one connection for calls one after
// another: the rest of the body after "data: [DONE]" is read so that the
// connection goes back to the pool.
func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	reply := func(w http.ResponseWriter, r *http.Request, n int) {
		textReply("a", "b")(w, r, n)
		time.Sleep(20 * time.Millisecond) // the body ends after "data: [DONE]" has been read
	}
	f := newFakeWith(t, reply, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	})
	p := f.provider(t, func(c *openai.Config) { c.HTTPClient = nil })
	for range 5 {
		if r := collect(p.Stream(t.Context(), infinity.CompletionRequest{})); r.err != nil || r.text != "ab" {
			t.Fatalf("%+v", r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 calls", n)
	}
}

func TestProviderHidesKey(t *testing.T) {
	p, err := openai.New(openai.Config{APIKey: testKey, Models: testModels})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), p.LogValue().String()} {
		if strings.Contains(s, testKey) {
			t.Errorf("key in %q", s)
		}
	}
}

func TestProviderChecks(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n%2 == 1 {
			s := startSSE(w)
			s.data(chunk(map[string]any{"content": "Hello"}, nil))
		}
		<-r.Context().Done()
	})
	providertest.CancelWhileStalled(t, f.provider(t, nil))
}
