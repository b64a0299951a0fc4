package toolbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap"
	"github.com/infinity-runtime/infinity/tools/toolbox"
)

// The toolbox is driven here by the runtime's own RAP client: the loader
// discovers it, rap.Tool invokes it, rap.Handler verifies and converts its
// callbacks, rap.Notifier cancels calls and closes threads.

type inbox struct {
	mu    sync.Mutex
	msgs  []infinity.InputMessage
	views []string
}

func (b *inbox) Send(_ context.Context, m infinity.InputMessage, _ time.Time) error {
	if err := m.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
	return nil
}

func (b *inbox) View(_ context.Context, g infinity.ThreadID, typ string, c json.RawMessage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.views = append(b.views, string(g)+" "+typ+" "+string(c))
	return nil
}

func (b *inbox) sent() []infinity.InputMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

func (b *inbox) viewed() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.views)
}

type harness struct {
	box      *toolbox.Box
	url      string
	in       *inbox
	loader   *rap.Loader
	notifier *rap.Notifier
	tools    map[string]infinity.Tool
}

var quiet = slog.New(slog.DiscardHandler)

func newHarness(t *testing.T, now func() time.Time) *harness {
	t.Helper()
	h := &harness{box: toolbox.New(now), in: &inbox{}, tools: map[string]infinity.Tool{}}
	h.box.Log = quiet
	srv := httptest.NewServer(h.box)
	t.Cleanup(srv.Close)
	t.Cleanup(h.box.Close)
	h.url = srv.URL
	tokens := rap.Tokens{Key: []byte("toolbox-test-key-0123456789")}
	cb := httptest.NewServer(&rap.Handler{Tokens: tokens, Sender: h.in, Views: h.in, Log: quiet})
	t.Cleanup(cb.Close)
	h.loader = rap.NewLoader(rap.Config{Servers: []string{srv.URL}, CallbackBase: cb.URL, Tokens: tokens, Log: quiet,
		Retry: rap.Retry{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}})
	h.notifier = &rap.Notifier{Loader: h.loader, Synchronous: true, Log: quiet}
	tools, err := h.loader.Tools(t.Context(), "root")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		h.tools[tool.Spec().Name] = tool
	}
	return h
}

func (h *harness) invoke(t *testing.T, tool, id, args string) {
	t.Helper()
	tl, ok := h.tools[tool]
	if !ok {
		t.Fatalf("no tool %s; have %v", tool, h.tools)
	}
	env := infinity.ToolEnv{Thread: "root", Stack: []infinity.ThreadID{"root"}}
	if _, err := tl.Invoke(t.Context(), env, infinity.ToolCall{ID: id, Name: tool, Args: json.RawMessage(args)}); err != nil {
		t.Fatalf("invoke %s: %v", tool, err)
	}
}

// wait returns the messages once there are n.
func (h *harness) wait(t *testing.T, n int) []infinity.InputMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := h.in.sent(); len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d messages, have %+v", n, h.in.sent())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func text(m infinity.InputMessage) string { return infinity.PartsText(m.Content.Parts) }

func TestManifest(t *testing.T) {
	h := newHarness(t, nil)
	var names []string
	for n, tool := range h.tools {
		names = append(names, n)
		if !tool.Spec().Async {
			t.Errorf("%s is not asynchronous", n)
		}
	}
	slices.Sort(names)
	want := []string{"current_time", "request_approval", "run_task", "timer_events", "watch_webhook"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	resp, err := http.Get(h.url + "/.well-known/rap-toolset")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if _, err := rap.DecodeManifest(body); err != nil {
		t.Fatalf("the manifest does not pass the runtime's decoder: %v\n%s", err, body)
	}
}

func TestCurrentTime(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	h := newHarness(t, func() time.Time { return at })
	h.invoke(t, "current_time", "c1", `{"zone":"Europe/Paris"}`)
	h.invoke(t, "current_time", "c2", `{"zone":"Mars/Olympus"}`)
	h.invoke(t, "current_time", "c3", `{"zone":1}`)
	msgs := h.wait(t, 3)
	got := map[string]string{}
	for _, m := range msgs {
		if m.Content.Type != infinity.ContentToolResult {
			t.Fatalf("not a result: %+v", m)
		}
		got[m.Content.ID] = text(m)
	}
	if got["c1"] != "Sunday 6 December 2026, 10:30:00 CET in Europe/Paris (2026-12-06T10:30:00+01:00)" {
		t.Errorf("c1: %q", got["c1"])
	}
	if !strings.HasPrefix(got["c2"], `Error: unknown time zone "Mars/Olympus"`) {
		t.Errorf("c2: %q", got["c2"])
	}
	if !strings.HasPrefix(got["c3"], "Error: arguments of current_time") {
		t.Errorf("c3: %q", got["c3"])
	}
}

func TestWebhookSubscription(t *testing.T) {
	h := newHarness(t, nil)
	h.invoke(t, "watch_webhook", "w1", `{"name":"alerts"}`)
	first := h.wait(t, 1)[0]
	if !first.Subscription || first.Content.ID != "w1" || !strings.Contains(text(first), "/hooks/alerts") {
		t.Fatalf("confirmation %+v", first)
	}
	post := func(name, body string) int {
		resp, err := http.Post(h.url+"/hooks/"+name, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("alerts", "disk 91% full"); s != 200 {
		t.Fatalf("hook: %d", s)
	}
	if s := post("other", "x"); s != 404 {
		t.Fatalf("a hook nobody watches: %d, want 404", s)
	}
	ev := h.wait(t, 2)[1]
	if ev.Synthetic == nil || ev.Synthetic.Type != infinity.SyntheticSubscriptionEvent || ev.Synthetic.ToolCallID != "w1" || text(ev) != "disk 91% full" {
		t.Fatalf("event %+v", ev)
	}
	// The runtime cancels the subscription (cancel_subscription): the
	// hook has no watcher left.
	h.notifier.CallCancelled(t.Context(), "root", "w1")
	deadline := time.Now().Add(5 * time.Second)
	for post("alerts", "late") != 404 {
		if time.Now().After(deadline) {
			t.Fatal("the webhook still delivers after the cancel")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Closing the thread ends its subscriptions too.
	h.invoke(t, "watch_webhook", "w2", `{"name":"alerts"}`)
	h.wait(t, 3)
	h.notifier.ThreadClosed(t.Context(), "root")
	for post("alerts", "later") != 404 {
		if time.Now().After(deadline) {
			t.Fatal("the webhook still delivers after the thread closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTimerEvents(t *testing.T) {
	h := newHarness(t, nil)
	h.invoke(t, "timer_events", "t1", `{"every_seconds":0.01,"count":3}`)
	msgs := h.wait(t, 4)
	if !msgs[0].Subscription {
		t.Fatalf("confirmation %+v", msgs[0])
	}
	for i, m := range msgs[1:] {
		if m.Synthetic == nil || m.Synthetic.Final != (i == 2) || !strings.HasPrefix(text(m), "tick ") {
			t.Fatalf("event %d: %+v", i, m)
		}
	}
	h.invoke(t, "timer_events", "t2", `{"every_seconds":0,"count":3}`)
	if m := h.wait(t, 5)[4]; !strings.HasPrefix(text(m), "Error: every_seconds must be") {
		t.Fatalf("bad arguments: %q", text(m))
	}
}

func TestApproval(t *testing.T) {
	h := newHarness(t, nil)
	h.invoke(t, "request_approval", "a1", `{"question":"Deploy to production?","choices":["deploy","wait"]}`)
	q := h.wait(t, 1)[0]
	if q.Content.Type != infinity.ContentUserChoice || q.Content.Prompt != "Deploy to production?" || len(q.Content.Choices) != 2 {
		t.Fatalf("question %+v", q)
	}
	answer := func(id string, n int) int {
		b, _ := json.Marshal(rap.UserChoiceAnswer{ID: id, Selected: n})
		resp, err := http.Post(q.Content.ResponseURL, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := answer("someone-else", 0); s != 400 {
		t.Fatalf("an answer naming another choice: %d", s)
	}
	if s := answer(q.Content.ID, 7); s != 400 {
		t.Fatalf("an answer out of range: %d, want 400", s)
	}
	if s := answer(q.Content.ID, 1); s != 200 {
		t.Fatalf("answer: %d", s)
	}
	if s := answer(q.Content.ID, 1); s != 404 {
		t.Fatalf("a second answer: %d, want 404", s)
	}
	r := h.wait(t, 2)[1]
	if r.Content.Type != infinity.ContentToolResult || r.Content.ID != "a1" || text(r) != `The user chose "wait".` {
		t.Fatalf("result %+v", r)
	}
}

func TestRunTaskShowsProgress(t *testing.T) {
	h := newHarness(t, nil)
	h.invoke(t, "run_task", "r1", `{"title":"build","steps":3,"step_ms":1}`)
	r := h.wait(t, 1)[0]
	if !strings.HasPrefix(text(r), `Task "build" finished: 3 steps`) || len(r.DisplayAs) != 1 || r.DisplayAs[0].Type != "text" {
		t.Fatalf("result %+v", r)
	}
	v := h.in.viewed()
	if len(v) != 3 || v[2] != `root progress {"done":3,"title":"build","total":3}` {
		t.Fatalf("views %q", v)
	}
}

// An invocation the server cannot take is refused with 400, which the
// runtime's client reports at once instead of retrying.
func TestBadInvocations(t *testing.T) {
	h := newHarness(t, nil)
	for _, body := range []string{`not json`, `{"operation":"current_time"}`,
		`{"operation":"nope","id":"x","group_id":"g","callback_url":"http://127.0.0.1:1/cb"}`} {
		resp, err := http.Post(h.url+"/invoke", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !json.Valid(b) {
			t.Errorf("%s: %d %s", body, resp.StatusCode, b)
		}
	}
	// Through the runtime's client: a 400 is a failed invocation.
	tl := h.tools["current_time"]
	_, err := tl.Invoke(context.Background(), infinity.ToolEnv{Thread: "root", Stack: []infinity.ThreadID{"root"}},
		infinity.ToolCall{ID: "", Name: "current_time"})
	if err == nil {
		t.Fatal("an invocation without an id was accepted")
	}
}
