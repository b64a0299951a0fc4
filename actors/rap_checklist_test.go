package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// Tests for lines of RAP §12 that no other engine test checks; the
// checklist table is in tools/rap/checklist_test.go.

// 46 47 48: a tool_result is applied only when group_id and id name a call
// of that thread that waits for it; anything else changes no history.
func TestRAPResultMatching(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 4)}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "fetch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{LastTool: "fetch"}, Reply: scripted.Reply{Text: "fetched"}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "ok"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root := e.start("fetch it")
	c := <-tool.started
	other := e.start("hello")
	e.waitFor("other answered", func() bool { return e.last(other) == "ok" })
	e.settle()
	n, m := len(e.own(root)), len(e.own(other))
	e.deliver(infinity.InputMessage{ID: "r-unknown", GroupID: root, Content: infinity.ResultContent("call-unknown", "x")})
	e.deliver(infinity.InputMessage{ID: "r-elsewhere", GroupID: other, Content: infinity.ResultContent(c.ID, "for another thread")})
	e.settle()
	if len(e.own(root)) != n || len(e.own(other)) != m {
		t.Fatalf("an unmatched result reached a thread:\n%s---\n%s", transcript(e.own(root)), transcript(e.own(other)))
	}
	e.deliver(infinity.InputMessage{ID: "r-ok", GroupID: root, Content: infinity.ResultContent(c.ID, "body")})
	e.waitFor("result", func() bool { return e.last(root) == "fetched" })
	e.settle()
	n = len(e.own(root))
	e.deliver(infinity.InputMessage{ID: "r-again", GroupID: root, Content: infinity.ResultContent(c.ID, "body again")})
	e.settle()
	if len(e.own(root)) != n {
		t.Fatalf("a second result for an answered call reached the thread:\n%s", transcript(e.own(root)[n:]))
	}
	noErrors(t, e)
}

// 59 60 61 58 71: events reach only the subscribing thread and never a
// closed one; the subscription call keeps its one result; cancel_subscription
// answers at once; a result for the cancelled call is ignored.
func TestRAPSubscriptionRules(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 4)}
	var mu sync.Mutex
	sub := ""
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "watch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "stop"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("cancel_subscription", `{"tool_call_id":"SUB"}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "cancel_subscription"}, Reply: scripted.Reply{Text: "cancel seen"}},
		{When: scripted.Match{MinDepth: ip(1), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"handled"}`)}}},
		{When: scripted.Match{MinDepth: ip(1), LastTool: "close_thread"}, Reply: scripted.Reply{Text: "event thread done"}},
		{When: scripted.Match{Depth: ip(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "noted"}},
		{When: scripted.Match{Depth: ip(0), LastTool: "fetch"}, Reply: scripted.Reply{Text: "subscribed"}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "ok"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}}
		c.Model = rewriteModel(c.Model, "SUB", func() string { mu.Lock(); defer mu.Unlock(); return sub })
	})
	root, c := e.subscribe(tool, "watch it", "subscribed", func(id string) { mu.Lock(); sub = id; mu.Unlock() })
	e.waitFor("subscribed", func() bool { return e.last(root) == "subscribed" })
	results := func() int {
		return count(e.own(root), func(it infinity.Item) bool { return it.Kind == infinity.KindToolResult && it.Result.CallID == c.ID })
	}

	// 59: the subscription is root's, not other's.
	other := e.start("hello")
	e.waitFor("other answered", func() bool { return e.last(other) == "ok" })
	e.settle()
	m := len(e.own(other))
	e.deliver(event("ev-other", other, c.ID, "not yours", true, false))
	e.settle()
	if len(e.own(other)) != m || len(e.children(other)) != 0 {
		t.Fatalf("an event reached a thread that did not subscribe:\n%s", transcript(e.own(other)))
	}

	// 60: an event thread, once closed, takes no more events.
	e.deliver(event("ev-1", root, c.ID, "tick", false, false))
	e.waitFor("event thread", func() bool { return len(e.children(root)) == 1 })
	kid := e.children(root)[0].ID
	e.waitFor("event thread closed", func() bool { return e.info(kid).Closed })
	e.waitFor("report", func() bool { return e.last(root) == "noted" })
	e.settle()
	k := len(e.own(kid))
	// Refused at the door (ErrClosed) or dropped by the slice: either way
	// nothing reaches the closed thread.
	if err := e.rt.SendMessage(context.Background(), event("ev-closed", kid, c.ID, "orphan", true, false)); err != nil && !errors.Is(err, infinity.ErrClosed) {
		t.Fatal(err)
	}
	e.settle()
	if len(e.own(kid)) != k {
		t.Fatalf("an event reached a closed thread:\n%s", transcript(e.own(kid)[k:]))
	}

	// 61: events and a repeated confirmation add no second result.
	n := len(e.own(root))
	e.deliver(infinity.InputMessage{ID: "sub-again", GroupID: root, Content: infinity.ResultContent(c.ID, "subscribed again"), Subscription: true})
	e.settle()
	if results() != 1 || len(e.own(root)) != n {
		t.Fatalf("the subscription call got %d results:\n%s", results(), transcript(e.own(root)))
	}

	// 71: cancel_subscription's result follows its call at once.
	e.send(root, "stop it")
	e.waitFor("cancel seen", func() bool { return e.last(root) == "cancel seen" })
	own := e.own(root)
	for i, it := range own {
		if it.Kind == infinity.KindToolCall && it.Call.Name == "cancel_subscription" {
			next := own[i+1]
			if next.Kind != infinity.KindToolResult || next.Result.CallID != it.Call.ID || next.Result.State == infinity.ResultPending ||
				!strings.Contains(next.Result.Text(), "cancelled") {
				t.Fatalf("cancel_subscription not answered in the same turn:\n%s", transcript(own))
			}
		}
	}

	// 58: a result for the cancelled call is taken without failing, and ignored.
	e.settle()
	n = len(e.own(root))
	e.deliver(infinity.InputMessage{ID: "res-late", GroupID: root, Content: infinity.ResultContent(c.ID, "late")})
	e.deliver(event("ev-late", root, c.ID, "late", true, false))
	e.settle()
	if len(e.own(root)) != n {
		t.Fatalf("a result or event for the cancelled subscription reached the thread:\n%s", transcript(e.own(root)[n:]))
	}
	noErrors(t, e)
}

// stuckNotifier never returns until released: tool servers that hang.
type stuckNotifier struct {
	release chan struct{}
	calls   atomic.Int32
}

func (s *stuckNotifier) ThreadClosed(ctx context.Context, _ infinity.ThreadID) {
	s.calls.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
	}
}

func (s *stuckNotifier) CallCancelled(ctx context.Context, _ infinity.ThreadID, _ string) {
	s.ThreadClosed(ctx, "")
}

// 92 95 98: closure and cancellation notifications that never return do
// not hold up the thread: it closes, its parent hears, and a cancelled
// subscription's thread goes on.
func TestRAPNotificationsDoNotBlock(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 4)}
	var mu sync.Mutex
	sub := ""
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "spawn"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("spawn_thread", `{"instructions":"work","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "child closed"}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"r"}`)}}},
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "watch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "fetch"}, Reply: scripted.Reply{Text: "subscribed"}},
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "stop"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("cancel_subscription", `{"tool_call_id":"SUB"}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "cancel_subscription"}, Reply: scripted.Reply{Text: "stopped"}},
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Text: "still here"}},
	}
	n := &stuckNotifier{release: make(chan struct{})}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}}
		c.Notifier = n
		c.Model = rewriteModel(c.Model, "SUB", func() string { mu.Lock(); defer mu.Unlock(); return sub })
	})
	var once sync.Once
	release := func() { once.Do(func() { close(n.release) }) }
	t.Cleanup(release) // runs before the runtime closes
	root := e.start("spawn a child")
	e.waitFor("parent heard", func() bool { return e.last(root) == "child closed" })
	if kids := e.children(root); len(kids) != 1 || !e.info(kids[0].ID).Closed {
		t.Fatalf("children %+v", kids)
	}
	e.waitFor("the notifier called", func() bool { return n.calls.Load() >= 1 })

	other, _ := e.subscribe(tool, "watch it", "ok", func(id string) { mu.Lock(); sub = id; mu.Unlock() })
	e.waitFor("subscribed", func() bool { return e.last(other) == "subscribed" })
	e.send(other, "stop it")
	e.waitFor("stopped", func() bool { return e.last(other) == "stopped" })
	e.waitFor("the notifier called again", func() bool { return n.calls.Load() >= 2 })
	e.send(other, "are you there?")
	e.waitFor("still going", func() bool { return e.last(other) == "still here" })
	noErrors(t, e)

	// WaitNotifications (what the Lambda handler calls before returning)
	// waits for them, within its context.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := e.rt.WaitNotifications(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitNotifications with a notifier stuck: %v", err)
	}
	release()
	if err := e.rt.WaitNotifications(t.Context()); err != nil {
		t.Fatalf("WaitNotifications after the notifier returned: %v", err)
	}
}

// lineageFails fails every Lineage read (how a slice loads its history)
// while armed.
type lineageFails struct {
	infinity.ConversationStore
	armed atomic.Bool
}

var errLoad = errors.New("injected load failure")

func (l *lineageFails) Lineage(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	if l.armed.Load() {
		return nil, errLoad
	}
	return l.ConversationStore.Lineage(ctx, id)
}

// 110: when the thread's state cannot be loaded, the slice does not go on
// (no completion, nothing committed), the error is signalled, and the
// input is handled once loading works again.
func TestRAPLoadFailureStopsTheSlice(t *testing.T) {
	var completions atomic.Int32
	rules := []scripted.Rule{{When: scripted.Match{Last: "user"},
		If:    func(infinity.CompletionRequest) bool { completions.Add(1); return true },
		Reply: scripted.Reply{Text: "answered"}}}
	ls := &lineageFails{}
	e := newEnv(t, rules, func(c *actors.Config) {
		ls.ConversationStore = c.Conversations
		c.Conversations = ls
	})
	root := e.start("hello")
	e.waitFor("first answer", func() bool { return e.last(root) == "answered" })
	e.settle()
	ls.armed.Store(true)
	before := completions.Load()
	e.send(root, "again")
	e.waitFor("the load error", func() bool {
		for _, err := range e.sliceErrors() {
			if errors.Is(err, errLoad) {
				return true
			}
		}
		return false
	})
	if completions.Load() != before {
		t.Fatal("a completion ran although the history could not be loaded")
	}
	if got := transcript(e.own(root)); strings.Contains(got, "again") {
		t.Fatalf("the input was committed without its history:\n%s", got)
	}
	ls.armed.Store(false)
	e.waitFor("the input handled after recovery", func() bool {
		return count(e.own(root), func(it infinity.Item) bool { return it.Text == "answered" }) == 2
	})
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Text == "again" }); n != 1 {
		t.Fatalf("input applied %d times", n)
	}
}

// 15: the messages of one thread are processed one slice at a time, even
// when they arrive together.
func TestRAPOneSliceAtATimePerThread(t *testing.T) {
	var inflight, peak atomic.Int32
	rules := []scripted.Rule{{When: scripted.Match{Last: "user"},
		If: func(infinity.CompletionRequest) bool {
			n := inflight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			inflight.Add(-1)
			return true
		},
		Reply: scripted.Reply{Text: "ok"}}}
	e := newEnv(t, rules)
	root := e.start("hello")
	e.settle()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			_ = e.rt.SendMessage(context.Background(), infinity.InputMessage{ID: infinity.MessageID(fmt.Sprintf("m%d", i)), GroupID: root, Content: infinity.TextContent("more")})
		})
	}
	wg.Wait()
	e.settle()
	if p := peak.Load(); p != 1 {
		t.Fatalf("%d completions of one thread ran at once", p)
	}
	if n := count(e.own(root), func(it infinity.Item) bool { return it.Text == "more" }); n != 6 {
		t.Fatalf("%d of 6 inputs applied", n)
	}
}

// 46 (group_id part): a result addressed to a child thread for a call the
// child only inherited from its parent is not the child's to take.
// (Through RAP the callback token also binds (group_id, id) to the thread
// that made the call, so rap.Handler refuses such a callback with 401.)
func TestRAPInheritedCallResult(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 4)}
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("fetch", `{}`), call("spawn_thread", `{"instructions":"wait","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread"}, Reply: scripted.Reply{Text: "child waiting"}},
		{Reply: scripted.Reply{Text: "ok"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root := e.start("go")
	c := <-tool.started
	e.waitFor("child", func() bool { return len(e.children(root)) == 1 })
	kid := e.children(root)[0].ID
	e.waitFor("child waiting", func() bool { return e.last(kid) == "child waiting" })
	e.settle()
	n := len(e.own(kid))
	e.deliver(infinity.InputMessage{ID: "r-kid", GroupID: kid, Content: infinity.ResultContent(c.ID, "for the parent")})
	e.settle()
	if len(e.own(kid)) != n {
		t.Fatalf("the child took its parent's result:\n%s", transcript(e.own(kid)[n:]))
	}
}
