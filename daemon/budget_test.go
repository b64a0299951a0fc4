package daemon_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// budgetScript: the root spawns three children and waits for their
// reports; each child reports and closes (whatever it last read: its task,
// or the notice that the budget was raised).
const budgetScript = `{"rules":[
  {"when":{"depth":0,"last_tool":"receive_event__injected","count":{"tool":"receive_event__injected","min":3}},"reply":{"text":"All three children reported back."}},
  {"when":{"depth":0,"last":"user","count":{"tool":"receive_event__injected","min":3}},"reply":{"text":"All three children reported back."}},
  {"when":{"depth":0,"last":"user","last_text":"Start"},"reply":{"calls":[
    {"name":"spawn_thread","args":{"instructions":"a","child_of":"$STACK"}},
    {"name":"spawn_thread","args":{"instructions":"b","child_of":"$STACK"}},
    {"name":"spawn_thread","args":{"instructions":"c","child_of":"$STACK"}}]}},
  {"when":{"depth":0},"reply":{"calls":[{"name":"sleep_until_event_or_input","args":{}}]}},
  {"when":{"depth":1},"reply":{"calls":[{"name":"close_thread","args":{"thread_id":"$THREAD","report_to_parent":"done"}}]}}
]}`

// A tree with a budget of one model call (the root's first): the children stop with a
// history entry saying the budget is spent and show over_budget; the
// root's budget reads back through the API; raising it lets the tree
// finish. Raising a child's budget, or by nothing, is refused.
func TestBudgetThroughAPI(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	ctx := t.Context()
	if _, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "budget.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: budget\nmodel:\n  provider: scripted\n  script: s.json\n", Script: budgetScript}}); err != nil {
		t.Fatal(err)
	}
	// The agent file's budget applies to a start that gives none.
	if _, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "filebudget.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: filebudget\nmodel:\n  provider: scripted\n  script: s.json\nbudget:\n  tokens: 1000\n  wall: 2h\n", Script: budgetScript}}); err != nil {
		t.Fatal(err)
	}
	fb, err := c.Start(ctx, daemon.StartRequest{Agent: "filebudget", Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // once its first slice stored it
		tb, err := c.Budget(ctx, fb.Thread)
		if err == nil && tb.Budget == (infinity.Budget{Tokens: 1000, Wall: 2 * time.Hour}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent file's budget: %+v, %v", tb, err)
		}
	}
	// A USD cap on a model without a price would never stop anything.
	_, err = c.Start(ctx, daemon.StartRequest{Agent: "budget", Text: "Start.", Budget: &infinity.Budget{USD: 1}})
	wantCode(t, err, http.StatusBadRequest, daemon.CodeBadRequest)
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "budget", Text: "Start.", Budget: &infinity.Budget{ModelCalls: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var kids []daemon.Tree
	deadline := time.Now().Add(20 * time.Second)
	for {
		tr, err := c.Tree(ctx, st.Thread)
		if err != nil {
			t.Fatal(err)
		}
		kids = tr.Threads
		over := 0
		for _, k := range kids {
			if k.Status == daemon.StatusOverBudget {
				over++
			}
		}
		// The root's first call spawned them, and was committed before
		// they ran: every one of them finds the budget spent.
		if len(kids) == 3 && over == 3 && tr.Status == daemon.StatusOverBudget {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the children never all stopped: %+v", tr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, k := range kids {
		if k.Status == daemon.StatusOverBudget && !strings.Contains(k.Detail, "budget is spent") {
			t.Errorf("an over-budget child's detail: %q", k.Detail)
		}
	}
	tb, err := c.Budget(ctx, st.Thread)
	if err != nil || tb.Budget.ModelCalls != 1 || tb.Spent == "" || tb.Spend.ModelCalls != 1 {
		t.Fatalf("budget: %+v, %v", tb, err)
	}
	root, err := c.Thread(ctx, st.Thread)
	if err != nil || root.Budget == nil || root.Budget.Spent == "" {
		t.Fatalf("the root's view lacks its budget: %+v, %v", root, err)
	}

	_, err = c.RaiseBudget(ctx, kids[2].ID, daemon.BudgetRequest{Add: infinity.Budget{ModelCalls: 5}})
	wantCode(t, err, http.StatusBadRequest, daemon.CodeBadRequest)
	_, err = c.RaiseBudget(ctx, st.Thread, daemon.BudgetRequest{})
	wantCode(t, err, http.StatusBadRequest, daemon.CodeBadRequest)
	if _, err := c.RaiseBudget(ctx, st.Thread, daemon.BudgetRequest{Add: infinity.Budget{ModelCalls: 100}, ID: "raise-1"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var answer string
		if err := c.Items(ctx, st.Thread, 0, false, func(l daemon.ItemLine) error {
			if l.Item != nil && l.Item.Kind == infinity.KindAssistant {
				answer = l.Item.Text
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(answer, "All three children reported back") {
			break
		}
		if time.Now().After(deadline) {
			tr, _ := c.Tree(ctx, st.Thread)
			t.Fatalf("the tree did not finish after the raise: %q\n%+v", answer, tr)
		}
	}
	if tb, err := c.Budget(ctx, st.Thread); err != nil || tb.Budget.ModelCalls != 101 || tb.Spent != "" {
		t.Errorf("budget after the raise: %+v, %v", tb, err)
	}
	// Every stop and the raise are counted.
	fams := scrape(t, "http://"+d.Addr()+"/metrics", token(t, home))
	if v, ok := value(fams, "infinity_budget_notices_total", map[string]string{"notice": infinity.NoticeBudgetSpent}); !ok || v < 1 {
		t.Errorf("budget_spent notices counted: %v (%v)", v, ok)
	}
	if v, ok := value(fams, "infinity_budget_notices_total", map[string]string{"notice": infinity.NoticeBudgetRaised}); !ok || v < 1 {
		t.Errorf("budget_raised notices counted: %v (%v)", v, ok)
	}
	_, err = c.Budget(ctx, "nosuch")
	var ae *daemon.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("budget of an unknown thread: %v", err)
	}
}
