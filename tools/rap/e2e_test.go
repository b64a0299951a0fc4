package rap

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// TestEndToEnd runs each raptest tool through Loader, Tool, the tool server
// and the Handler, and checks what reaches the sender.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	env := infinity.ToolEnv{Thread: "t1", Stack: []infinity.ThreadID{"t1"}}

	t.Run("2 7 50 slow_echo answers by callback", func(t *testing.T) {
		srv := raptest.New(t, raptest.WithDelay(20*time.Millisecond))
		rt := newRuntime(t, srv.URL)
		tool := loadTool(t, rt.cfg, "slow_echo")
		if _, err := tool.Invoke(ctx, env, infinity.ToolCall{ID: "c1", Args: json.RawMessage(`{"text":"hello"}`)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the result", func() bool { return len(rt.sender.sent()) == 1 })
		m := rt.sender.sent()[0]
		if m.ID != "rap-tool-result-c1" || m.GroupID != "t1" || m.Content.ID != "c1" || infinity.PartsText(m.Content.Parts) != "hello" {
			t.Fatalf("message %+v", m)
		}
	})
	t.Run("57 62 67 subscribe_ticks: confirmation then events, the last final", func(t *testing.T) {
		srv := raptest.New(t, raptest.WithTicks(3), raptest.WithDelay(time.Millisecond))
		rt := newRuntime(t, srv.URL)
		tool := loadTool(t, rt.cfg, "subscribe_ticks")
		if _, err := tool.Invoke(ctx, env, infinity.ToolCall{ID: "sub1"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "four messages", func() bool { return len(rt.sender.sent()) == 4 })
		msgs := rt.sender.sent()
		if !msgs[0].Subscription || msgs[0].Synthetic != nil {
			t.Fatalf("confirmation %+v", msgs[0])
		}
		for i, m := range msgs[1:] {
			s := m.Synthetic
			if s == nil || s.Type != infinity.SyntheticSubscriptionEvent || s.ToolCallID != "sub1" || s.Final != (i == 2) || m.Content.ID != "sub1" {
				t.Fatalf("event %d: %+v %+v", i, m, s)
			}
		}
	})
	t.Run("81 ask_user: user_choice, answer, result", func(t *testing.T) {
		srv := raptest.New(t)
		rt := newRuntime(t, srv.URL)
		tool := loadTool(t, rt.cfg, "ask_user")
		if _, err := tool.Invoke(ctx, env, infinity.ToolCall{ID: "q1", Args: json.RawMessage(`{"prompt":"Deploy?","choices":["yes","no"]}`)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the choice", func() bool { return len(rt.sender.sent()) == 1 })
		c := rt.sender.sent()[0]
		if c.ID != "rap-user-choice-q1" || c.Content.Type != infinity.ContentUserChoice || c.Content.Prompt != "Deploy?" || len(c.Content.Choices) != 2 {
			t.Fatalf("choice %+v", c)
		}
		// What the engine will do when the user picks "no".
		ans, _ := json.Marshal(UserChoiceAnswer{ID: c.Content.ID, Selected: 1})
		resp, err := http.Post(c.Content.ResponseURL, "application/json", bytes.NewReader(ans))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("answer: %v %v", err, resp)
		}
		resp.Body.Close()
		eventually(t, "the result", func() bool { return len(rt.sender.sent()) == 2 })
		if r := rt.sender.sent()[1]; r.ID != "rap-tool-result-q1" || infinity.PartsText(r.Content.Parts) != "selected: no" {
			t.Fatalf("result %+v", r)
		}
	})
	t.Run("87 show_view: view to the sink, then the result", func(t *testing.T) {
		srv := raptest.New(t)
		rt := newRuntime(t, srv.URL)
		tool := loadTool(t, rt.cfg, "show_view")
		if _, err := tool.Invoke(ctx, env, infinity.ToolCall{ID: "v1"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the result", func() bool { return len(rt.sender.sent()) == 1 })
		if v := rt.views.all(); len(v) != 1 || v[0].group != "t1" || v[0].viewType != "diff" {
			t.Fatalf("views %+v", v)
		}
	})
	t.Run("7 a callback refused with 500 is retried by the tool", func(t *testing.T) {
		srv := raptest.New(t, raptest.WithIdempotencyKeys(), raptest.WithTicks(1), raptest.WithDelay(time.Millisecond))
		rt := newRuntime(t, srv.URL)
		rt.sender.failN = 1
		tool := loadTool(t, rt.cfg, "subscribe_ticks")
		if _, err := tool.Invoke(ctx, env, infinity.ToolCall{ID: "s2"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "both messages", func() bool { return len(rt.sender.applied()) == 2 })
		if d := srv.Deliveries(); d[0].Status != 500 || d[1].Status != 200 || d[1].Type != "tool_result" {
			t.Fatalf("deliveries %+v", d)
		}
	})
}
