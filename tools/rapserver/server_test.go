package rapserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/tools/rap"
	"github.com/infinity-runtime/infinity/tools/rapserver"
)

// callbacks records the callbacks it receives, answering with statuses in
// turn (then 200).
type callbacks struct {
	mu       sync.Mutex
	statuses []int
	got      []string // "status type"
	*httptest.Server
}

func newCallbacks(t *testing.T, statuses ...int) *callbacks {
	cb := &callbacks{statuses: statuses}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Type string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		cb.mu.Lock()
		status := 200
		if len(cb.statuses) > 0 {
			status, cb.statuses = cb.statuses[0], cb.statuses[1:]
		}
		cb.got = append(cb.got, http.StatusText(status)+" "+body.Type)
		cb.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(cb.Close)
	return cb
}

func (cb *callbacks) all() []string {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return append([]string(nil), cb.got...)
}

func invoke(t *testing.T, srv http.Handler, group, id, op, callback string) int {
	t.Helper()
	body, _ := json.Marshal(rap.Invocation{Operation: op, ID: id, GroupID: group, CallbackURL: callback, Arguments: json.RawMessage(`{}`)})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("POST", "/invoke", strings.NewReader(string(body))))
	return rec.Code
}

func post(srv http.Handler, path, body string) int {
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
	return rec.Code
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var quiet = slog.New(slog.DiscardHandler)

// A callback refused with 5xx is retried; one refused with 4xx is not.
func TestCallbackRetries(t *testing.T) {
	srv := &rapserver.Server{Name: "t", Log: quiet, Tools: []rapserver.Tool{{Name: "echo",
		Run: func(ctx context.Context, c *rapserver.Call) error { return c.Result(ctx, "hi") }}}}
	defer srv.Close()
	cb := newCallbacks(t, 503, 200, 400)
	if code := invoke(t, srv, "g", "c1", "echo", cb.URL); code != 200 {
		t.Fatalf("invoke: %d", code)
	}
	waitFor(t, "the retried result", func() bool { return len(cb.all()) == 2 })
	if code := invoke(t, srv, "g", "c2", "echo", cb.URL); code != 200 {
		t.Fatalf("invoke: %d", code)
	}
	waitFor(t, "the refused result", func() bool { return len(cb.all()) == 3 })
	time.Sleep(300 * time.Millisecond) // a retry would come by now
	want := []string{"Service Unavailable tool_result", "OK tool_result", "Bad Request tool_result"}
	if got := cb.all(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("callbacks %q, want %q", got, want)
	}
}

// A repeated invocation runs once; a cancel naming another thread cancels
// nothing; the right one ends the call's context; Event after Run returned
// fails; Close waits for running calls.
func TestCallLifecycle(t *testing.T) {
	var runs atomic.Int32
	ended := make(chan *rapserver.Call, 4)
	srv := &rapserver.Server{Name: "t", Log: quiet, Tools: []rapserver.Tool{{Name: "wait",
		Run: func(ctx context.Context, c *rapserver.Call) error {
			runs.Add(1)
			<-ctx.Done()
			ended <- c
			return ctx.Err()
		}}}}
	cb := newCallbacks(t)
	for range 2 {
		if code := invoke(t, srv, "g", "c1", "wait", cb.URL); code != 200 {
			t.Fatalf("invoke: %d", code)
		}
	}
	waitFor(t, "the run", func() bool { return runs.Load() == 1 })
	if post(srv, "/cancel_tool_call", `{"thread_id":"other","tool_call_id":"c1"}`) != 200 {
		t.Fatal("cancel")
	}
	select {
	case <-ended:
		t.Fatal("a cancel naming another thread ended the call")
	case <-time.After(50 * time.Millisecond):
	}
	post(srv, "/cancel_tool_call", `{"thread_id":"g","tool_call_id":"c1"}`)
	c := <-ended
	// Probe with a cancelled context: until Run has returned, Event would
	// really send (the call is still running), and this one sends nothing.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	waitFor(t, "the call to be forgotten", func() bool {
		return errors.Is(c.Event(gone, "late", false), rapserver.ErrCallEnded)
	})
	if got := cb.all(); len(got) != 0 {
		t.Fatalf("a cancelled call sent %q", got)
	}
	// Close ends the running calls and waits for them.
	invoke(t, srv, "g", "c2", "wait", cb.URL)
	waitFor(t, "the second run", func() bool { return runs.Load() == 2 })
	srv.Close()
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before the call's Run")
	}
	if code := invoke(t, srv, "g", "c3", "wait", cb.URL); code != http.StatusServiceUnavailable {
		t.Fatalf("invoke after Close: %d", code)
	}
}

// The manifest names the endpoint under the URL the runtime used, https
// behind a proxy that says so; a tool without a schema takes any object.
func TestManifest(t *testing.T) {
	srv := &rapserver.Server{Name: "t", Tools: []rapserver.Tool{{Name: "x", Description: "d"}}}
	defer srv.Close()
	req := httptest.NewRequest("GET", "http://tools.example/.well-known/rap-toolset", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	m, err := rap.DecodeManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Endpoint != "https://tools.example/invoke" || string(m.Tools[0].InputSchema) != `{"type":"object"}` {
		t.Fatalf("manifest %+v", m)
	}
}
