package replay_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/infinitytest"
	"github.com/infinity-runtime/infinity/models/anthropic"
	"github.com/infinity-runtime/infinity/models/openai"
	"github.com/infinity-runtime/infinity/models/replay"
)

// secretKey is the API key the providers send; no recording may hold it.
const secretKey = "sk-test-SECRET-4f1c9e0b7d"

// reply is what the local model servers answer: text, or tool calls.
type reply struct {
	text  string
	calls []wireCall
}

type wireCall struct {
	id, name, args string
}

var (
	selfRE  = regexp.MustCompile(`Your thread ID is (\S+?)\. `)
	stackRE = regexp.MustCompile(`Your thread stack \(root first\) is (\[[^\]]*\])\.`)
)

// brain plays the model behind both wire formats: the root spawns a child
// that counts, sleeps until its report comes, then answers with it; the
// child closes with its report. It reads the system prompt and the last
// message as the server received them.
type brain struct {
	mu    sync.Mutex
	calls int
}

func (b *brain) answer(system string, last []byte) (reply, error) {
	b.mu.Lock()
	b.calls++
	id := fmt.Sprintf("call_wire_%04d", b.calls)
	b.mu.Unlock()
	self := selfRE.FindStringSubmatch(system)
	stack := stackRE.FindStringSubmatch(system)
	if self == nil || stack == nil {
		return reply{}, fmt.Errorf("no thread identity in the system prompt %q", system)
	}
	switch {
	case strings.Contains(system, "You are a child thread"):
		return reply{calls: []wireCall{{id, "close_thread", fmt.Sprintf(`{"thread_id":%q,"report_to_parent":"one, two"}`, self[1])}}}, nil
	case strings.Contains(string(last), "Final report: "):
		return reply{text: "The child counted: one, two."}, nil
	case strings.Contains(string(last), "Spawned child thread"):
		return reply{calls: []wireCall{{id, "sleep_until_event_or_input", `{}`}}}, nil
	default:
		return reply{text: "Let me delegate. ", calls: []wireCall{{id, "spawn_thread", fmt.Sprintf(`{"instructions":"count to two","child_of":%s}`, stack[1])}}}, nil
	}
}

// wireServer is a local server of one provider's API, with the brain
// behind it; it refuses requests without the key.
type wireServer struct {
	*httptest.Server
	brain brain
	mu    sync.Mutex
	hits  int
}

func (s *wireServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func sseHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // test values always marshal
	}
	return string(b)
}

// newOpenAIServer speaks OpenAI's streaming chat completions.
func newOpenAIServer(t *testing.T) *wireServer {
	s := &wireServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+secretKey {
			http.Error(w, `{"error":{"message":"no route or no key","type":"invalid_request_error"}}`, http.StatusUnauthorized)
			return
		}
		var body struct {
			Messages []json.RawMessage `json:"messages"`
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil || len(body.Messages) < 2 {
			http.Error(w, `{"error":{"message":"bad body","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		var sys struct {
			Content string `json:"content"`
		}
		json.Unmarshal(body.Messages[0], &sys)
		rep, err := s.brain.answer(sys.Content, body.Messages[len(body.Messages)-1])
		if err != nil {
			http.Error(w, mustJSON(map[string]any{"error": map[string]any{"message": err.Error(), "type": "invalid_request_error"}}), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.hits++
		s.mu.Unlock()
		sseHeaders(w)
		chunk := func(delta map[string]any, finish any) {
			fmt.Fprintf(w, "data: %s\n\n", mustJSON(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-test",
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}))
			flush(w)
		}
		if rep.text != "" {
			for _, word := range strings.SplitAfter(rep.text, " ") {
				chunk(map[string]any{"role": "assistant", "content": word}, nil)
			}
		}
		for i, c := range rep.calls {
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.id, "type": "function", "function": map[string]any{"name": c.name, "arguments": ""}}}}, nil)
			half := len(c.args) / 2
			for _, frag := range []string{c.args[:half], c.args[half:]} {
				chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": frag}}}}, nil)
			}
		}
		finish := "stop"
		if len(rep.calls) > 0 {
			finish = "tool_calls"
		}
		chunk(map[string]any{}, finish)
		fmt.Fprintf(w, "data: %s\n\n", mustJSON(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-test",
			"choices": []any{}, "usage": map[string]any{"prompt_tokens": len(raw) / 4, "completion_tokens": 7, "total_tokens": len(raw)/4 + 7}}))
		fmt.Fprint(w, "data: [DONE]\n\n")
		flush(w)
	}))
	t.Cleanup(s.Close)
	return s
}

// newAnthropicServer speaks Anthropic's streaming Messages API.
func newAnthropicServer(t *testing.T) *wireServer {
	s := &wireServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != secretKey {
			http.Error(w, `{"type":"error","error":{"type":"authentication_error","message":"no route or no key"}}`, http.StatusUnauthorized)
			return
		}
		var body struct {
			System   json.RawMessage   `json:"system"`
			Messages []json.RawMessage `json:"messages"`
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil || len(body.Messages) == 0 {
			http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad body"}}`, http.StatusBadRequest)
			return
		}
		var system string
		if json.Unmarshal(body.System, &system) != nil {
			var blocks []struct {
				Text string `json:"text"`
			}
			json.Unmarshal(body.System, &blocks)
			for _, b := range blocks {
				system += b.Text
			}
		}
		rep, err := s.brain.answer(system, body.Messages[len(body.Messages)-1])
		if err != nil {
			http.Error(w, mustJSON(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "message": err.Error()}}), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.hits++
		s.mu.Unlock()
		sseHeaders(w)
		event := func(typ string, data any) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, mustJSON(data))
			flush(w)
		}
		event("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_1", "type": "message", "role": "assistant",
			"content": []any{}, "model": "claude-test", "stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": len(raw) / 4, "output_tokens": 1}}})
		block := 0
		if rep.text != "" {
			event("content_block_start", map[string]any{"type": "content_block_start", "index": block, "content_block": map[string]any{"type": "text", "text": ""}})
			for _, word := range strings.SplitAfter(rep.text, " ") {
				event("content_block_delta", map[string]any{"type": "content_block_delta", "index": block, "delta": map[string]any{"type": "text_delta", "text": word}})
			}
			event("content_block_stop", map[string]any{"type": "content_block_stop", "index": block})
			block++
		}
		for _, c := range rep.calls {
			event("content_block_start", map[string]any{"type": "content_block_start", "index": block, "content_block": map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": map[string]any{}}})
			event("content_block_delta", map[string]any{"type": "content_block_delta", "index": block, "delta": map[string]any{"type": "input_json_delta", "partial_json": c.args}})
			event("content_block_stop", map[string]any{"type": "content_block_stop", "index": block})
			block++
		}
		stop := "end_turn"
		if len(rep.calls) > 0 {
			stop = "tool_use"
		}
		event("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 9}})
		event("message_stop", map[string]any{"type": "message_stop"})
	}))
	t.Cleanup(s.Close)
	return s
}

// A run against a local server of a real provider's API, with an API key,
// is recorded (no key or header in the file), then replayed offline with
// the server gone: the same answer and the same stored histories, item
// for item. A changed prompt fails the replay with a diff naming the
// line.
func TestRecordAgainstWireServersReplayOffline(t *testing.T) {
	for _, tc := range []struct {
		provider string
		server   func(*testing.T) *wireServer
		build    func(url string) (infinity.ModelProvider, error)
		model    string
	}{
		{"openai", newOpenAIServer, func(url string) (infinity.ModelProvider, error) {
			return openai.New(openai.Config{BaseURL: url + "/v1", APIKey: secretKey, MaxRetries: -1,
				Models: []infinity.ModelInfo{{ID: "gpt-test", ContextWindow: 128000, MaxOutput: 4096}}})
		}, "gpt-test"},
		{"anthropic", newAnthropicServer, func(url string) (infinity.ModelProvider, error) {
			return anthropic.New(anthropic.Config{BaseURL: url, APIKey: secretKey, MaxRetries: -1,
				Models: []infinity.ModelInfo{{ID: "claude-test", ContextWindow: 200000, MaxOutput: 8192}}})
		}, "claude-test"},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			srv := tc.server(t)
			p, err := tc.build(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			agent := actors.Agent{Name: "counter", System: "You delegate counting.", Provider: p, ProviderName: tc.provider, Model: tc.model}
			path := filepath.Join(t.TempDir(), tc.provider+".jsonl")
			recorded := infinitytest.Record(t, path, nil, agent, "Have a child count to two.")
			if recorded.Answer != "The child counted: one, two." || len(recorded.Tree.Children) != 1 || !recorded.Tree.Children[0].Info.Closed || srv.count() != 4 {
				t.Fatalf("recorded run (%d requests): %q\n%s", srv.count(), recorded.Answer, recorded.Transcript())
			}

			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{secretKey, "SECRET", "Bearer", "Authorization", "X-Api-Key", "x-api-key", "anthropic-version", "User-Agent"} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("the recording holds %q", secret)
				}
			}
			rec, err := replay.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Calls) != 4 || rec.Models[tc.provider] == nil || rec.Calls[0].Provider != tc.provider || rec.Calls[0].Response.Usage.Input == 0 || rec.Calls[0].Response.Text != "Let me delegate. " {
				t.Fatalf("recording: %d calls, models %v, first %+v", len(rec.Calls), rec.Models, rec.Calls[0])
			}

			srv.Close() // offline from here on
			replayed := infinitytest.Replay(t, path, agent, "Have a child count to two.")
			if replayed.Answer != recorded.Answer || len(replayed.Unused) != 0 {
				t.Fatalf("replayed %q with %d calls unused", replayed.Answer, len(replayed.Unused))
			}
			sameItems(t, recorded, replayed)
			fresh := infinitytest.Replay(t, path, agent, "Have a child count to two.", infinitytest.WithID(""))
			if fresh.Root == recorded.Root || fresh.Transcript() != recorded.Transcript() {
				t.Fatalf("replayed under a new root id:\n%s\nrecorded:\n%s", fresh.Transcript(), recorded.Transcript())
			}

			_, err = infinitytest.TryReplay(t, path, agent, "Have a child count to three.")
			if !errors.Is(err, replay.ErrNotRecorded) || !hasLine(err.Error(), "- item 0 user | Have a child count to two.") || !hasLine(err.Error(), "+ item 0 user | Have a child count to three.") {
				t.Fatalf("replay with a changed prompt: %v", err)
			}
		})
	}
}
