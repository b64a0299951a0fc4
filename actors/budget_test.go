package actors_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// work is a synchronous tool that always answers: a thread that calls it
// in a loop never stops on its own.
type work struct{}

func (work) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "work", Description: "does a step of work", Schema: []byte(`{"type":"object"}`)}
}
func (work) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: "one more step done"}}}, nil
}

func modelCalls(e *env, root infinity.ThreadID) int {
	n := 0
	var walk func(id infinity.ThreadID)
	walk = func(id infinity.ThreadID) {
		for _, it := range e.own(id) {
			if it.Usage != nil {
				n++
			}
		}
		for _, k := range e.children(id) {
			walk(k.ID)
		}
	}
	walk(root)
	return n
}

func stoppedThreads(e *env, root infinity.ThreadID) int {
	n := 0
	var walk func(id infinity.ThreadID)
	walk = func(id infinity.ThreadID) {
		own := e.own(id)
		if len(own) > 0 && own[len(own)-1].Notice == infinity.NoticeBudgetSpent {
			n++
		}
		for _, k := range e.children(id) {
			walk(k.ID)
		}
	}
	walk(root)
	return n
}

// A tree of parallel children that would work for ever stops within one
// model call per running thread of its cap: every thread that asks for
// more gets a history entry saying the budget is spent. Raising the budget
// lets the tree go on, and it stops again at the new cap.
func TestTreeBudgetStopsAndResumes(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("spawn_thread", `{"instructions":"a","child_of":"$STACK"}`),
			call("spawn_thread", `{"instructions":"b","child_of":"$STACK"}`),
			call("spawn_thread", `{"instructions":"c","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Delay: scripted.Duration(5 * time.Millisecond), Calls: []scripted.CallSpec{call("work", `{}`)}}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "worker", Tools: []infinity.Tool{work{}}}}
	})
	const cap, threads = 20, 4
	root, err := e.rt.Start(context.Background(), actors.StartOptions{Text: "go", Budget: &infinity.Budget{ModelCalls: cap}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the three children to stop", func() bool { return len(e.children(root)) == 3 && stoppedThreads(e, root) >= 3 })
	e.settle()
	if n := modelCalls(e, root); n < cap || n > cap+threads {
		t.Fatalf("%d model calls under a cap of %d", n, cap)
	}
	tb, err := e.rt.TreeBudget(context.Background(), root)
	if err != nil || tb.Spent == "" || tb.Budget.ModelCalls != cap || tb.Spend.LiveThreads != threads || !tb.Warned {
		t.Fatalf("TreeBudget = %+v, %v", tb, err)
	}

	if _, err := e.rt.RaiseBudget(context.Background(), root, infinity.Budget{ModelCalls: 10}, "raise-1"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the tree to go on and stop again", func() bool { return modelCalls(e, root) >= cap+10 && stoppedThreads(e, root) >= 3 })
	e.settle()
	if n := modelCalls(e, root); n > cap+10+threads {
		t.Fatalf("%d model calls under a cap of %d", n, cap+10)
	}
	if tb, err := e.rt.TreeBudget(context.Background(), root); err != nil || tb.Budget.ModelCalls != cap+10 || tb.Spent == "" {
		t.Fatalf("TreeBudget after the raise = %+v, %v", tb, err)
	}

	kid := e.children(root)[0].ID
	if _, err := e.rt.RaiseBudget(context.Background(), kid, infinity.Budget{ModelCalls: 1}, ""); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("raising a child's budget: %v, want ErrInvalid", err)
	}
	if _, err := e.rt.RaiseBudget(context.Background(), root, infinity.Budget{}, ""); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("raising by nothing: %v, want ErrInvalid", err)
	}
	if _, err := e.rt.Start(context.Background(), actors.StartOptions{Text: "go", Budget: &infinity.Budget{Tokens: -1}}); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("a negative budget: %v, want ErrInvalid", err)
	}
	noErrors(t, e)
}

// max_threads bounds the threads of the tree that are not closed:
// spawn_thread beyond it answers with an error.
func TestTreeBudgetMaxThreads(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("spawn_thread", `{"instructions":"a","child_of":"$STACK"}`),
			call("spawn_thread", `{"instructions":"b","child_of":"$STACK"}`),
			call("spawn_thread", `{"instructions":"c","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Text: "done"}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep", `{"seconds":86400}`)}}},
	}
	e := newEnv(t, rules)
	root, err := e.rt.Start(context.Background(), actors.StartOptions{Text: "go", Budget: &infinity.Budget{MaxThreads: 3}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the root to answer", func() bool { return e.last(root) == "done" })
	e.settle()
	if n := len(e.children(root)); n != 2 {
		t.Fatalf("%d children under max_threads 3 (the root counts)", n)
	}
	if tr := transcript(e.own(root)); !strings.Contains(tr, "allows 3 threads that are not closed") {
		t.Fatalf("the third spawn was not refused:\n%s", tr)
	}
}

// A tree deleted and started again under the same id is a new tree: it
// does not inherit the old one's budget or spend.
func TestTreeBudgetOfAReusedRootID(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "answered"}}})
	ctx := context.Background()
	if _, err := e.rt.Start(ctx, actors.StartOptions{ID: "reuse", Text: "one", Budget: &infinity.Budget{ModelCalls: 1}}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the answer", func() bool { return e.last("reuse") == "answered" })
	if tb, err := e.rt.TreeBudget(ctx, "reuse"); err != nil || tb.Spent == "" {
		t.Fatalf("TreeBudget = %+v, %v", tb, err)
	}
	if _, err := e.rt.CloseThread(ctx, "reuse"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the close", func() bool { return e.info("reuse").Closed })
	e.settle()
	ids, err := e.conv.(infinity.TreeDeleter).DeleteTree(ctx, "reuse")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.state.(infinity.StateDeleter).DeleteThreads(ctx, ids); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second) // the new tree is created later
	if _, err := e.rt.Start(ctx, actors.StartOptions{ID: "reuse", Text: "two"}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the new tree's answer", func() bool { own := e.own("reuse"); return len(own) == 2 && own[1].Text == "answered" })
	if tb, err := e.rt.TreeBudget(ctx, "reuse"); err != nil || !tb.Budget.IsZero() {
		t.Fatalf("the new tree's budget: %+v, %v", tb, err)
	}
}

// A retried Start with the same id must ask for the same budget: another
// one is refused (a raise is the way to change it).
func TestStartRetryWithAnotherBudget(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "answered"}}})
	ctx := context.Background()
	b := &infinity.Budget{Tokens: 1000}
	if _, err := e.rt.Start(ctx, actors.StartOptions{ID: "same", Text: "one", Budget: b}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the answer", func() bool { return e.last("same") == "answered" })
	if _, err := e.rt.Start(ctx, actors.StartOptions{ID: "same", Text: "one", Budget: &infinity.Budget{Tokens: 1000}}); err != nil {
		t.Errorf("the same start again: %v", err)
	}
	if _, err := e.rt.Start(ctx, actors.StartOptions{ID: "same", Text: "one", Budget: &infinity.Budget{Tokens: 5}}); !errors.Is(err, infinity.ErrExists) {
		t.Errorf("a retry with another budget: %v, want ErrExists", err)
	}
}
