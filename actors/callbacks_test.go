package actors_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// notes records what the engine tells tool servers.
type notes struct {
	mu        sync.Mutex
	closed    []infinity.ThreadID
	cancelled []string
}

func (n *notes) ThreadClosed(_ context.Context, id infinity.ThreadID) {
	n.mu.Lock()
	n.closed = append(n.closed, id)
	n.mu.Unlock()
}

func (n *notes) CallCancelled(_ context.Context, _ infinity.ThreadID, call string) {
	n.mu.Lock()
	n.cancelled = append(n.cancelled, call)
	n.mu.Unlock()
}

func (n *notes) cancels() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.cancelled...)
}

func (e *env) deliver(msg infinity.InputMessage) {
	e.t.Helper()
	if err := e.rt.SendMessage(context.Background(), msg); err != nil {
		e.t.Fatal(err)
	}
}

// subscribe starts a root thread with text, waits for its call of tool and
// answers it as a subscription with ack; learn, when set, gets the call's
// id first (scripts that cancel it need it).
func (e *env) subscribe(tool asyncTool, text, ack string, learn func(string)) (infinity.ThreadID, infinity.ToolCall) {
	e.t.Helper()
	root := e.start(text)
	c := <-tool.started
	if learn != nil {
		learn(c.ID)
	}
	e.settle()
	e.deliver(infinity.InputMessage{ID: "sub-ok", GroupID: root, Content: infinity.ResultContent(c.ID, ack), Subscription: true})
	return root, c
}

// learner returns a guarded string and its setter.
func learner() (get func() string, set func(string)) {
	var mu sync.Mutex
	v := ""
	return func() string { mu.Lock(); defer mu.Unlock(); return v }, func(s string) { mu.Lock(); v = s; mu.Unlock() }
}

func event(id string, to infinity.ThreadID, sub, text string, associative, final bool) infinity.InputMessage {
	return infinity.InputMessage{ID: infinity.MessageID(id), GroupID: to, Content: infinity.ResultContent(sub, text),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: sub, Associative: associative, Final: final}}
}

// A subscription: the tool's first result starts it; an associative event
// is injected inline; other events each get an event thread that inherits
// the history and reports back; a final event ends it; events for an
// ended or unknown subscription are discarded.
func TestSubscriptionEvents(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{"watch":"alerts"}`)}}},
		// The event thread: report the event and close.
		{When: scripted.Match{MinDepth: ip(1), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"handled an event"}`)}}},
		{When: scripted.Match{MinDepth: ip(1), LastTool: "close_thread"}, Reply: scripted.Reply{Text: "event thread done"}},
		{When: scripted.Match{Depth: ip(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "noted the event"}},
		{When: scripted.Match{Depth: ip(0), LastTool: "fetch"}, Reply: scripted.Reply{Text: "subscribed"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root, c := e.subscribe(tool, "watch the alerts", "subscribed to alerts", nil)
	e.waitFor("subscribed", func() bool { return e.last(root) == "subscribed" })

	// Associative: inline, with the original call's name and arguments.
	e.deliver(event("ev-1", root, c.ID, `{"level":"amber"}`, true, false))
	e.waitFor("inline event", func() bool { return e.last(root) == "noted the event" })
	got := transcript(e.own(root))
	if !strings.Contains(got, `"original_tool_name":"fetch"`) || !strings.Contains(got, `"original_args":{"watch":"alerts"}`) || !strings.Contains(got, `tool_result: {"level":"amber"}`) {
		t.Fatalf("inline event:\n%s", got)
	}

	// Not associative: an event thread, which reports back.
	before := len(e.children(root))
	e.deliver(event("ev-2", root, c.ID, `{"level":"red"}`, false, false))
	e.waitFor("event thread", func() bool { return len(e.children(root)) == before+1 })
	kid := e.children(root)[before]
	if kid.Kind != infinity.ThreadEvent || kid.SpawnCallID != c.ID {
		t.Fatalf("event thread info: %+v", kid)
	}
	e.waitFor("event thread closed", func() bool { return e.info(kid.ID).Closed })
	e.waitFor("report reached the subscriber", func() bool {
		return strings.Contains(transcript(e.own(root)), "handled an event")
	})
	kidItems := transcript(e.history(kid.ID).Items)
	if !strings.Contains(kidItems, "subscribed to alerts") || !strings.Contains(kidItems, `{"level":"red"}`) {
		t.Fatalf("the event thread should inherit the subscriber's history and see the event:\n%s", kidItems)
	}

	// Final (threaded): the subscriber is told, and later events are
	// discarded.
	e.deliver(event("ev-3", root, c.ID, `{"level":"green"}`, false, true))
	e.waitFor("final noted", func() bool { return strings.Contains(transcript(e.own(root)), "no more events will come") })
	e.settle()
	n, kids := len(e.own(root)), len(e.children(root))
	e.deliver(event("ev-4", root, c.ID, `{"level":"late"}`, true, false))
	e.deliver(event("ev-5", root, "call-unknown", `{"x":1}`, true, false))
	e.settle()
	if len(e.own(root)) != n || len(e.children(root)) != kids {
		t.Fatalf("events after the final one, or for no subscription, reached the thread:\n%s", transcript(e.own(root)[n:]))
	}
	noErrors(t, e)
}

// cancel_subscription: an error for an unknown id; for an active one the
// servers are told, and the subscription's later events are discarded.
func TestCancelSubscription(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	n := &notes{}
	sub, setSub := learner()
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "watch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{Last: "user", LastText: "wrong"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("cancel_subscription", `{"tool_call_id":"nope"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "stop"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("cancel_subscription", `{"tool_call_id":"SUB"}`)}}},
		{When: scripted.Match{Last: "user", LastText: "again"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("cancel_subscription", `{"tool_call_id":"SUB"}`)}}},
		{When: scripted.Match{}, Reply: scripted.Reply{Text: "ok"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}}
		c.Notifier = n
		c.Model = rewriteModel(c.Model, "SUB", sub)
	})
	root, c := e.subscribe(tool, "watch", "subscribed", setSub)
	e.settle()
	e.send(root, "wrong one")
	e.waitFor("error for an unknown id", func() bool {
		return strings.Contains(transcript(e.own(root)), `no active subscription for tool call "nope"`)
	})
	e.send(root, "stop it")
	e.waitFor("cancelled", func() bool { return strings.Contains(transcript(e.own(root)), "cancelled.") })
	e.waitFor("servers told", func() bool { return len(n.cancels()) == 1 && n.cancels()[0] == c.ID })
	e.settle()
	count := len(e.own(root))
	e.deliver(event("ev-after", root, c.ID, "late event", true, false))
	e.settle()
	if len(e.own(root)) != count {
		t.Fatalf("an event of a cancelled subscription reached the thread:\n%s", transcript(e.own(root)[count:]))
	}
	// Cancelled stays cancelled after the thread is reloaded from history.
	e.send(root, "again please")
	e.waitFor("second cancel refused", func() bool {
		return strings.Count(transcript(e.own(root)), "no active subscription for tool call") == 2
	})
	noErrors(t, e)
}

// OAuth and user choices keep the call pending; the model is told; the URL
// goes to the observer only; the choice is listed until the tool's result.
func TestOAuthAndUserChoice(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	var mu sync.Mutex
	var urls []string
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{LastTool: "receive_event__injected", LastText: "authorize"}, Reply: scripted.Reply{Text: "please authorize"}},
		{When: scripted.Match{LastTool: "receive_event__injected", LastText: "asked the user"}, Reply: scripted.Reply{Text: "please choose"}},
		{When: scripted.Match{LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "got the result"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}}
		obs := c.Observer
		c.Observer = func(ev actors.Event) {
			obs(ev)
			if ev.Kind == actors.EventOAuth {
				mu.Lock()
				urls = append(urls, ev.URL)
				mu.Unlock()
			}
		}
	})
	root := e.start("fetch my mail")
	c := <-tool.started
	e.settle()

	e.deliver(infinity.InputMessage{ID: "oa-1", GroupID: root, Content: infinity.Content{Type: infinity.ContentOAuth, ID: c.ID, AuthURL: "https://auth.example/secret-state"}})
	e.waitFor("oauth noted", func() bool { return e.last(root) == "please authorize" })
	mu.Lock()
	gotURLs := append([]string(nil), urls...)
	mu.Unlock()
	if len(gotURLs) != 1 || gotURLs[0] != "https://auth.example/secret-state" {
		t.Fatalf("observer saw %q", gotURLs)
	}
	for _, it := range e.own(root) {
		if strings.Contains(transcript([]infinity.Item{it}), "secret-state") || (it.Call != nil && strings.Contains(string(it.Call.Args), "secret-state")) {
			t.Fatalf("the auth URL was stored: %+v", it)
		}
	}

	e.deliver(infinity.InputMessage{ID: "uc-1", GroupID: root, Content: infinity.Content{Type: infinity.ContentUserChoice, ID: c.ID,
		Prompt: "Which folder?", Choices: []string{"inbox", "archive"}, Default: 0, ResponseURL: "http://tool.local/answer/1"}})
	e.waitFor("choice noted", func() bool { return e.last(root) == "please choose" })
	choices := actors.PendingChoices(e.history(root).Items)
	if len(choices) != 1 || choices[0].Prompt != "Which folder?" || choices[0].ResponseURL != "http://tool.local/answer/1" || choices[0].ID != c.ID {
		t.Fatalf("pending choices: %+v", choices)
	}

	// A callback about a call that is not pending is discarded.
	n := len(e.own(root))
	e.deliver(infinity.InputMessage{ID: "uc-x", GroupID: root, Content: infinity.Content{Type: infinity.ContentUserChoice, ID: "call-unknown",
		Prompt: "?", Choices: []string{"a"}, ResponseURL: "http://x"}})
	e.settle()
	if len(e.own(root)) != n {
		t.Fatalf("a choice for an unknown call reached the thread")
	}

	// The tool's result ends the choice.
	e.deliver(infinity.InputMessage{ID: "res-1", GroupID: root, Content: infinity.ResultContent(c.ID, "moved to archive")})
	e.waitFor("result", func() bool { return e.last(root) == "got the result" })
	if choices := actors.PendingChoices(e.history(root).Items); len(choices) != 0 {
		t.Fatalf("choices still pending after the result: %+v", choices)
	}
	noErrors(t, e)
}

// toolSource hands out tools per session, counting how often it is asked.
type toolSource struct {
	mu    sync.Mutex
	roots map[infinity.ThreadID]int
	tools []infinity.Tool
	err   error
}

func (s *toolSource) Tools(_ context.Context, root infinity.ThreadID) ([]infinity.Tool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roots[root]++
	return s.tools, s.err
}

// Session tools (RAP toolsets) are offered to the model and dispatched like
// the agent's own; a source that fails is reported and the thread goes on
// without them.
func TestSessionTools(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	src := &toolSource{roots: map[infinity.ThreadID]int{}, tools: []infinity.Tool{tool}}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "fetch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{LastTool: "fetch"}, Reply: scripted.Reply{Text: "fetched"}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "no tools needed"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Toolsets: src}} })
	root := e.start("fetch it")
	c := <-tool.started
	e.deliver(infinity.InputMessage{ID: "r1", GroupID: root, Content: infinity.ResultContent(c.ID, "body")})
	e.waitFor("result", func() bool { return e.last(root) == "fetched" })
	noErrors(t, e)

	src.mu.Lock()
	src.err = errFetch
	src.mu.Unlock()
	other := e.start("hello")
	e.waitFor("answer without tools", func() bool { return e.last(other) == "no tools needed" })
	if errs := e.sliceErrors(); len(errs) == 0 || !strings.Contains(errs[0].Error(), "runs without them") {
		t.Fatalf("the failing source was not reported: %v", errs)
	}
}

var errFetch = errors.New("toolset server unreachable")

// imageModel reports that its model takes images.
type imageModel struct{ infinity.ModelProvider }

func (m imageModel) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	ms, err := m.ModelProvider.Models(ctx)
	for i := range ms {
		ms[i].Images = true
	}
	return ms, err
}

// A model without image input never receives image data: images in tool
// results reach it as a text placeholder (RAP §12 lines 51, 52); a
// model that takes images gets them.
func TestImagesOnlyForModelsThatTakeThem(t *testing.T) {
	seen := func(req infinity.CompletionRequest) string {
		for _, it := range req.Items {
			if it.Result == nil {
				continue
			}
			for _, p := range it.Result.Parts {
				if p.Type == "image" {
					return "image"
				}
				if strings.Contains(p.Text, "does not take images") {
					return "placeholder"
				}
			}
		}
		return "none"
	}
	for _, takes := range []bool{false, true} {
		t.Run(fmt.Sprintf("images=%v", takes), func(t *testing.T) {
			tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
			var mu sync.Mutex
			got := ""
			rules := []scripted.Rule{
				{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
				{When: scripted.Match{LastTool: "fetch"}, If: func(req infinity.CompletionRequest) bool {
					mu.Lock()
					got = seen(req)
					mu.Unlock()
					return true
				}, Reply: scripted.Reply{Text: "looked"}},
			}
			e := newEnv(t, rules, func(c *actors.Config) {
				c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}}
				if takes {
					c.Model = imageModel{c.Model}
				}
			})
			root := e.start("fetch a picture")
			call := <-tool.started
			e.deliver(infinity.InputMessage{ID: "img", GroupID: root, Content: infinity.Content{Type: infinity.ContentToolResult, ID: call.ID,
				Parts: []infinity.Part{{Type: "text", Text: "a chart"}, {Type: "image", Data: "iVBORw0KGgo=", MediaType: "image/png"}}}})
			e.waitFor("looked", func() bool { return e.last(root) == "looked" })
			mu.Lock()
			defer mu.Unlock()
			want := map[bool]string{false: "placeholder", true: "image"}[takes]
			if got != want {
				t.Fatalf("the model saw %q, want %q", got, want)
			}
			// The history keeps the image either way.
			kept := false
			for _, it := range e.own(root) {
				if it.Result != nil && slices.ContainsFunc(it.Result.Parts, func(p infinity.Part) bool { return p.Data == "iVBORw0KGgo=" }) {
					kept = true
				}
			}
			if !kept {
				t.Fatal("the stored result lost its image")
			}
		})
	}
}

// A subscription whose first result arrives after other input cut the call
// short ("still running") is still a subscription: the flag rides on the
// injected late result, and events are accepted, also after a reload.
func TestLateSubscriptionResult(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 1)}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "watch"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{}`)}}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "meanwhile"}},
		{When: scripted.Match{LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "seen"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) { c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}}} })
	root := e.start("watch")
	c := <-tool.started
	e.settle()
	e.send(root, "how is it going?")
	e.waitFor("interrupted", func() bool { return e.last(root) == "meanwhile" })
	e.deliver(infinity.InputMessage{ID: "sub-late", GroupID: root, Content: infinity.ResultContent(c.ID, "subscribed"), Subscription: true})
	e.settle()
	n := len(e.own(root))
	e.deliver(event("ev-1", root, c.ID, "tick", true, false))
	e.waitFor("event applied", func() bool {
		return len(e.own(root)) > n && strings.Contains(transcript(e.own(root)[n:]), "tool_result: tick")
	})
	noErrors(t, e)
}

// Past the agent's cap a subscription is not started: the result is kept
// as a plain one with a note, and the servers are asked to cancel it.
func TestSubscriptionCap(t *testing.T) {
	tool := asyncTool{started: make(chan infinity.ToolCall, 2)}
	n := &notes{}
	rules := []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("fetch", `{"n":1}`), call("fetch", `{"n":2}`)}}},
		{Reply: scripted.Reply{Text: "ok"}},
	}
	e := newEnv(t, rules, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Tools: []infinity.Tool{tool}, MaxSubscriptions: 1}}
		c.Notifier = n
	})
	root := e.start("watch two")
	c1, c2 := <-tool.started, <-tool.started
	e.settle()
	e.deliver(infinity.InputMessage{ID: "s1", GroupID: root, Content: infinity.ResultContent(c1.ID, "one"), Subscription: true})
	e.deliver(infinity.InputMessage{ID: "s2", GroupID: root, Content: infinity.ResultContent(c2.ID, "two"), Subscription: true})
	e.waitFor("the second refused", func() bool { return strings.Contains(transcript(e.own(root)), "Not subscribed") })
	e.waitFor("servers told", func() bool { return slices.Contains(n.cancels(), c2.ID) })
	e.settle()
	before := len(e.own(root))
	e.deliver(event("ev-2", root, c2.ID, "tick", true, false))
	e.deliver(event("ev-1", root, c1.ID, "tock", true, false))
	e.waitFor("the first's event", func() bool { return strings.Contains(transcript(e.own(root)[before:]), "tock") })
	if strings.Contains(transcript(e.own(root)[before:]), "tick") {
		t.Fatalf("an event of the refused subscription was applied:\n%s", transcript(e.own(root)[before:]))
	}
}
