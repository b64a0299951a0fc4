package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// toolScript drives the tools end to end; each root thread starts with a
// word that picks its tool.
const toolScript = `{"rules": [
  {"when": {"depth": 0, "last": "user", "last_text": "echo"}, "reply": {"calls": [{"name": "slow_echo", "args": {"text": "hello rap"}}]}},
  {"when": {"depth": 0, "last_tool": "slow_echo"}, "reply": {"text": "echoed"}},
  {"when": {"depth": 0, "last": "user", "last_text": "watch"}, "reply": {"calls": [{"name": "subscribe_ticks", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "subscribe_ticks"}, "reply": {"text": "watching"}},
  {"when": {"depth": 1, "last_tool": "receive_event__injected"}, "reply": {"calls": [{"name": "close_thread", "args": {"thread_id": "$THREAD", "report_to_parent": "tick handled"}}]}},
  {"when": {"depth": 1, "last_tool": "close_thread"}, "reply": {"text": "event done"}},
  {"when": {"depth": 0, "last": "user", "last_text": "ask"}, "reply": {"calls": [{"name": "ask_user", "args": {"prompt": "Ship it?", "choices": ["yes", "no"]}}]}},
  {"when": {"depth": 0, "last": "user", "last_text": "add"}, "reply": {"calls": [{"name": "add", "args": {"a": 2, "b": 3}}]}},
  {"when": {"depth": 0, "last_tool": "add"}, "reply": {"text": "sum done"}},
  {"when": {"depth": 0, "last": "user", "last_text": "show"}, "reply": {"calls": [{"name": "show_view", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "show_view"}, "reply": {"text": "shown"}},
  {"when": {"depth": 0, "last_tool": "receive_event__injected"}, "reply": {"text": "noted"}}
]}`

func waitItems(t *testing.T, c *daemon.Client, id infinity.ThreadID, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var b strings.Builder
		err := c.Items(t.Context(), id, 0, false, func(l daemon.ItemLine) error {
			if it := l.Item; it != nil {
				fmt.Fprintf(&b, "%s %s", it.Kind, it.Text)
				if it.Call != nil {
					fmt.Fprintf(&b, " %s %s", it.Call.Name, it.Call.Args)
				}
				if it.Result != nil {
					fmt.Fprintf(&b, " %s", it.Result.Text())
				}
				b.WriteByte('\n')
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if cond(b.String()) {
			return b.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never came; history:\n%s", id, what, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentStarter registers a scripted agent with its files and returns a
// function that starts a root thread of it.
func agentStarter(t *testing.T, c *daemon.Client, origin, yaml, script string) (daemon.AgentInfo, func(text string) infinity.ThreadID) {
	t.Helper()
	agent, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: origin, AgentSource: daemon.AgentSource{YAML: yaml, Script: script}})
	if err != nil {
		t.Fatal(err)
	}
	return agent, func(text string) infinity.ThreadID {
		t.Helper()
		st, err := c.Start(t.Context(), daemon.StartRequest{Agent: agent.Key, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return st.Thread
	}
}

func has(s ...string) func(string) bool {
	return func(h string) bool {
		for _, x := range s {
			if !strings.Contains(h, x) {
				return false
			}
		}
		return true
	}
}

// RAP and MCP tools end to end through the daemon: a slow RAP tool whose
// thread hibernates and wakes on the callback; a subscription whose events
// run in event threads that report back; a user choice answered through the
// API; a view update; an MCP tool.
func TestToolsThroughTheDaemon(t *testing.T) {
	srv := raptest.New(t, raptest.WithDelay(800*time.Millisecond), raptest.WithTicks(2))
	mcpURL, closeMCP := mcptest.New()
	t.Cleanup(closeMCP)
	d, c := startDaemon(t, t.TempDir())
	agent, start := agentStarter(t, c, "tools.yaml",
		fmt.Sprintf("name: tooled\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [%q]\n  mcp: [%q]\n", srv.URL, mcpURL), toolScript)

	t.Run("slow RAP tool: hibernate, wake on the callback", func(t *testing.T) {
		st, err := c.Start(t.Context(), daemon.StartRequest{Agent: agent.Key, Text: "echo this", Metadata: json.RawMessage(`{"user_id":"u-42"}`)})
		if err != nil {
			t.Fatal(err)
		}
		root := st.Thread
		deadline := time.Now().Add(10 * time.Second)
		for len(srv.Invocations()) == 0 || d.Runtime().Active() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no hibernation while the tool ran: %d invocations, %d active", len(srv.Invocations()), d.Runtime().Active())
			}
			time.Sleep(10 * time.Millisecond)
		}
		inv := srv.Invocations()[0]
		if inv.GroupID != string(root) || !strings.Contains(inv.CallbackURL, "/rap/callback/") || inv.Operation != "slow_echo" ||
			inv.UserID == nil || *inv.UserID != "u-42" || len(inv.ThreadAncestors) != 0 {
			t.Fatalf("invocation %+v", inv)
		}
		waitItems(t, c, root, "the echo", has("hello rap", "echoed"))
	})

	t.Run("subscription events in event threads", func(t *testing.T) {
		root := start("watch the ticks")
		h := waitItems(t, c, root, "two reports and the end", func(h string) bool {
			return strings.Count(h, "tick handled") == 2 && strings.Contains(h, "no more events will come")
		})
		tree, err := c.Tree(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		if len(tree.Threads) != 2 {
			t.Fatalf("want two event threads, got %d:\n%s", len(tree.Threads), h)
		}
		for _, kid := range tree.Threads {
			if kid.Status != daemon.StatusClosed {
				t.Errorf("event thread %s is %s", kid.ID, kid.Status)
			}
		}
	})

	t.Run("user choice answered through the API", func(t *testing.T) {
		root := start("ask the user")
		v := waitStatus(t, c, root, daemon.StatusWaiting, "your choice: Ship it? (infinity answer)")
		if len(v.Choices) != 1 || v.Choices[0].Choices[1] != "no" {
			t.Fatalf("choices: %+v", v.Choices)
		}
		a, err := c.Answer(t.Context(), root, daemon.AnswerRequest{Choice: "NO"})
		if err != nil || a.Selected != 1 || a.Label != "no" {
			t.Fatalf("answer: %+v, %v", a, err)
		}
		waitItems(t, c, root, "the tool's result", has("selected: no", "noted"))
		if v, err := c.Thread(t.Context(), root); err != nil || len(v.Choices) != 0 {
			t.Fatalf("choice still pending: %+v %v", v, err)
		}
		_, err = c.Answer(t.Context(), root, daemon.AnswerRequest{Choice: "yes"})
		wantCode(t, err, 409, daemon.CodeNoChoice)
	})

	t.Run("view update", func(t *testing.T) {
		root := start("show a view")
		waitItems(t, c, root, "the result", has("shown"))
		views, err := c.Views(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		var diff struct{ Path string }
		if err := json.Unmarshal(views["diff"], &diff); err != nil || diff.Path != "a.go" {
			t.Fatalf("views: %s %v", views["diff"], err)
		}
		// A client that follows the thread gets the views with the items.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var got *daemon.ViewLine
		errStop := errors.New("stop")
		err = c.Items(ctx, root, 0, true, func(l daemon.ItemLine) error {
			if l.View != nil {
				got = l.View
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) || got == nil || got.Type != "diff" {
			t.Fatalf("followed stream: view %+v, %v", got, err)
		}
	})

	t.Run("MCP tool", func(t *testing.T) {
		root := start("add two numbers")
		waitItems(t, c, root, "the sum", has("add {", "5", "sum done"))
	})

	t.Run("forged callbacks are refused", func(t *testing.T) {
		inv := srv.Invocations()[0]
		body := fmt.Sprintf(`{"type":"tool_result","group_id":%q,"id":"call-forged","text":"x"}`, inv.GroupID)
		status, _ := raw(t, d, "POST", "/rap/callback/"+tokenOf(inv.CallbackURL), body, nil)
		if status != 401 {
			t.Fatalf("a token for another call: HTTP %d, want 401", status)
		}
		status, _ = raw(t, d, "POST", "/rap/callback/abc", `{"type":"nope"}`, nil)
		if status != 400 {
			t.Fatalf("a malformed callback: HTTP %d, want 400", status)
		}
	})
}

func tokenOf(callbackURL string) string {
	_, tok, _ := strings.Cut(callbackURL, "/rap/callback/")
	tok, _, _ = strings.Cut(tok, "?")
	return tok
}
