package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"

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
	f := &fake{handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	var apiErr *oai.Error
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
				t.Errorf("%d hits: a started stream must not be retried by the SDK", f.hits.Load())
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
			var apiErr *oai.Error
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
