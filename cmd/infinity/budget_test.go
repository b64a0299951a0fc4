package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
)

func TestParseBudget(t *testing.T) {
	b, err := parseBudget([]string{"5usd, 200ktokens", "$1.5", "50calls,2h", "10threads", "1m tokens"})
	want := infinity.Budget{USD: 6.5, Tokens: 1200000, ModelCalls: 50, Wall: 2 * time.Hour, MaxThreads: 10}
	if err != nil || b != want {
		t.Fatalf("parseBudget = %+v, %v; want %+v", b, err, want)
	}
	for _, bad := range []string{"5bananas", "-3calls", "0usd", "", "tokens", "1.5calls", "nanusd", "infusd", "$inf", "9223372036854775807ktokens"} {
		if _, err := parseBudget([]string{bad}); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// run --budget through the CLI: the tree stops at its cap (ls shows
// over_budget, budget says spent), budget --add lets it finish.
func TestBudgetCommand(t *testing.T) {
	agent := cappedAgent(t)
	serveDaemon(t, t.TempDir())
	var st daemon.Started
	if err := json.Unmarshal([]byte(cmdOut(t, "run", agent, "Start.", "--budget", "1calls", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	root := string(st.Thread)
	waitFor(t, "over_budget", "ls", "--all", "--wide")
	if out := cmdOut(t, "budget", root); !strings.Contains(out, "model calls") || !strings.Contains(out, "of 1") || !strings.Contains(out, "spent (model calls:") {
		t.Errorf("budget:\n%s", out)
	}
	if out := cmdOut(t, "budget", root, "--add", "100calls"); !strings.Contains(out, "raised the budget of "+root+" by 100calls") {
		t.Errorf("budget --add:\n%s", out)
	}
	waitFor(t, "Both children reported back.", "logs", root)
	var tb actors.TreeBudget
	if err := json.Unmarshal([]byte(cmdOut(t, "budget", root, "--json")), &tb); err != nil || tb.Budget.ModelCalls != 101 || tb.Spent != "" {
		t.Errorf("budget --json: %+v, %v", tb, err)
	}
	if out := cmdOut(t, "logs", root); !strings.Contains(out, "[budget] The budget of this thread tree was raised by 100calls") {
		t.Errorf("the raise is not in the root's transcript:\n%s", out)
	}
}

// cappedAgent writes an agent file whose root spawns two children and
// answers once both reported (also after a budget notice), and returns
// its path.
func cappedAgent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := `{"rules":[
	  {"when":{"depth":0,"last_tool":"receive_event__injected","count":{"tool":"receive_event__injected","min":2}},"reply":{"text":"Both children reported back."}},
	  {"when":{"depth":0,"last":"user","count":{"tool":"receive_event__injected","min":2}},"reply":{"text":"Both children reported back."}},
	  {"when":{"depth":0,"last":"user","last_text":"Start"},"reply":{"calls":[
	    {"name":"spawn_thread","args":{"instructions":"a","child_of":"$STACK"}},
	    {"name":"spawn_thread","args":{"instructions":"b","child_of":"$STACK"}}]}},
	  {"when":{"depth":0},"reply":{"calls":[{"name":"sleep_until_event_or_input","args":{}}]}},
	  {"when":{"depth":1},"reply":{"calls":[{"name":"close_thread","args":{"thread_id":"$THREAD","report_to_parent":"done"}}]}}
	]}`
	agent := filepath.Join(dir, "capped.yaml")
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, []byte("name: capped\nmodel:\n  provider: scripted\n  script: s.json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return agent
}
