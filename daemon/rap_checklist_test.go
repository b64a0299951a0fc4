package daemon_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/internal/syncbuf"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/rap"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// manualRAP is a RAP tool server whose one tool, login, only acknowledges
// its invocations: the test posts the callbacks itself.
type manualRAP struct {
	URL    string
	mu     sync.Mutex
	invs   []raptest.Invocation
	closes []string
}

func newManualRAP(t *testing.T) *manualRAP {
	m := &manualRAP{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/rap-toolset", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":"manual","endpoint":%q,"tools":[{"name":"login","description":"Log the user in","inputSchema":{"type":"object"}}]}`, m.URL+"/invoke")
	})
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		var inv raptest.Invocation
		_ = json.NewDecoder(r.Body).Decode(&inv)
		m.mu.Lock()
		m.invs = append(m.invs, inv)
		m.mu.Unlock()
	})
	mux.HandleFunc("POST /close_thread", func(w http.ResponseWriter, r *http.Request) {
		var n raptest.Notification
		_ = json.NewDecoder(r.Body).Decode(&n)
		m.mu.Lock()
		m.closes = append(m.closes, n.ThreadID)
		m.mu.Unlock()
	})
	mux.HandleFunc("POST /cancel_tool_call", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

func (m *manualRAP) invocations(group infinity.ThreadID) []raptest.Invocation {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []raptest.Invocation
	for _, inv := range m.invs {
		if inv.GroupID == string(group) {
			out = append(out, inv)
		}
	}
	return out
}

func (m *manualRAP) closed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.closes)
}

// waitInvocation waits for the first invocation made for group.
func (m *manualRAP) waitInvocation(t *testing.T, group infinity.ThreadID) raptest.Invocation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if invs := m.invocations(group); len(invs) > 0 {
			return invs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: login never invoked", group)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// callback posts a callback body to url as a tool server would.
func callback(t *testing.T, url string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const checklistScript = `{"rules": [
  {"when": {"depth": 0, "last": "user", "last_text": "login"}, "reply": {"calls": [{"name": "login", "args": {}}]}},
  {"when": {"depth": 0, "last": "user", "last_text": "ask"}, "reply": {"calls": [{"name": "ask_user", "args": {"prompt": "Ship it?", "choices": ["yes", "no"]}}]}},
  {"when": {"depth": 0, "last": "user", "last_text": "watch"}, "reply": {"calls": [{"name": "subscribe_ticks", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "subscribe_ticks"}, "reply": {"text": "watching"}},
  {"when": {"depth": 1, "last_tool": "receive_event__injected"}, "reply": {"calls": [{"name": "close_thread", "args": {"thread_id": "$THREAD", "report_to_parent": "tick handled"}}]}},
  {"when": {"depth": 1, "last_tool": "close_thread"}, "reply": {"text": "event done"}},
  {"when": {"depth": 0, "last_tool": "receive_event__injected", "last_text": "authorize"}, "reply": {"text": "please authorize"}},
  {"when": {"depth": 0, "last_tool": "receive_event__injected"}, "reply": {"text": "noted"}},
  {"when": {"depth": 0, "last_tool": "login"}, "reply": {"text": "logged in"}}
]}`

// RAP §12 lines checked through the daemon: OAuth (74-78), a dismissed
// user choice (82-84), view updates (85-88) and closure notifications to
// every server (90).
func TestRAPChecklistDaemon(t *testing.T) {
	srv := raptest.New(t, raptest.WithTicks(1))
	man := newManualRAP(t)
	home := t.TempDir()
	d, c := startDaemon(t, home)
	_, start := agentStarter(t, c, "checklist.yaml",
		fmt.Sprintf("name: checklist\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [%q, %q]\n", srv.URL, man.URL), checklistScript)

	t.Run("74 75 76 77 78 oauth: URL shown, call pending, no re-invocation, URL not in the history", func(t *testing.T) {
		root := start("login please")
		inv := man.waitInvocation(t, root)
		const url = "https://auth.example/authorize?state=s3cr3t-state"
		if st := callback(t, inv.CallbackURL, map[string]any{"type": "oauth", "group_id": inv.GroupID, "id": inv.ID, "auth_url": url}); st != 200 {
			t.Fatalf("oauth callback: HTTP %d", st)
		}
		v := waitStatus(t, c, root, daemon.StatusWaiting, "authorization of login: open "+url)
		if v.Authorize == nil || v.Authorize.URL != url || v.Authorize.Tool != "login" {
			t.Fatalf("authorize: %+v", v.Authorize)
		}
		// 76: the model is told; 75: the call is still pending (no final result).
		h := waitItems(t, c, root, "the model told", has("needs the user to authorize", "please authorize"))
		if strings.Contains(h, "s3cr3t-state") {
			t.Fatalf("the auth URL reached the history:\n%s", h)
		}
		if st := callback(t, inv.CallbackURL, map[string]any{"type": "tool_result", "group_id": inv.GroupID, "id": inv.ID, "text": "logged in as ann"}); st != 200 {
			t.Fatalf("tool_result callback: HTTP %d", st)
		}
		waitItems(t, c, root, "the result", has("logged in as ann", "noted"))
		if v, err := c.Thread(t.Context(), root); err != nil || v.Authorize != nil {
			t.Fatalf("the URL is still shown after the result: %+v, %v", v.Authorize, err)
		}
		if n := len(man.invocations(root)); n != 1 {
			t.Fatalf("login invoked %d times", n)
		}
	})

	// RAP §12 line 78 forbids keeping auth_url beyond showing it: the
	// callback's message goes through the durable inbox without it.
	t.Run("78 the store's files do not keep the auth URL", func(t *testing.T) {
		var found []string
		err := filepath.WalkDir(home, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte("s3cr3t-state")) {
				found = append(found, filepath.Base(p))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) > 0 {
			t.Fatalf("the auth URL is persisted in %v", found)
		}
	})

	t.Run("82 83 84 a dismissed choice posts the default, once", func(t *testing.T) {
		root := start("ask the user")
		waitStatus(t, c, root, daemon.StatusWaiting, "your choice: Ship it? (infinity answer)")
		// raptest answers 400 unless the body is {"id": <its call id>, "selected": <int>}.
		a, err := c.Answer(t.Context(), root, daemon.AnswerRequest{Dismiss: true})
		if err != nil || a.Selected != 0 || a.Label != "yes" {
			t.Fatalf("dismiss: %+v, %v", a, err)
		}
		waitItems(t, c, root, "the tool's result", has("selected: yes", "noted"))
		_, err = c.Answer(t.Context(), root, daemon.AnswerRequest{Dismiss: true})
		wantCode(t, err, 409, daemon.CodeNoChoice)
		n := 0
		for _, inv := range srv.Invocations() {
			if inv.GroupID == string(root) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("ask_user invoked %d times", n)
		}
	})

	t.Run("85 86 88 views: known threads only, newest per type, all replayed", func(t *testing.T) {
		root := start("login for views")
		inv := man.waitInvocation(t, root)
		for _, v := range []struct{ typ, content string }{{"diff", `{"v":1}`}, {"log", `{"lines":["a"]}`}, {"diff", `{"v":2}`}} {
			if st := callback(t, inv.CallbackURL, map[string]any{"type": "view_update", "group_id": inv.GroupID,
				"view_type": v.typ, "content": json.RawMessage(v.content)}); st != 200 {
				t.Fatalf("view_update: HTTP %d", st)
			}
		}
		views, err := c.Views(t.Context(), root)
		if err != nil || len(views) != 2 || compact(views["diff"]) != `{"v":2}` || compact(views["log"]) != `{"lines":["a"]}` {
			t.Fatalf("views %s, %v", views, err)
		}
		// A view for a thread the daemon does not know, with a valid token.
		key, err := os.ReadFile(filepath.Join(home, "rap.key"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := hex.DecodeString(strings.TrimSpace(string(key)))
		if err != nil {
			t.Fatal(err)
		}
		url := rap.Tokens{Key: k}.CallbackURL("http://"+d.Addr(), "no-such-thread", "c1")
		if st := callback(t, url, map[string]any{"type": "view_update", "group_id": "no-such-thread", "view_type": "diff", "content": map[string]int{"v": 3}}); st != 404 {
			t.Fatalf("a view for an unknown thread: HTTP %d, want 404", st)
		}
		if views, err := c.Views(t.Context(), "no-such-thread"); err == nil && len(views) > 0 {
			t.Fatalf("a view for an unknown thread was stored: %s", views)
		}
	})

	t.Run("90 closure notifications reach every server", func(t *testing.T) {
		root := start("watch the ticks")
		waitItems(t, c, root, "the report", has("tick handled"))
		tree, err := c.Tree(t.Context(), root)
		if err != nil || len(tree.Threads) != 1 {
			t.Fatalf("tree %+v, %v", tree, err)
		}
		kid := string(tree.Threads[0].ID)
		deadline := time.Now().Add(10 * time.Second)
		for {
			fromRaptest := slices.ContainsFunc(srv.Closes(), func(n raptest.Notification) bool { return n.ThreadID == kid })
			if fromRaptest && slices.Contains(man.closed(), kid) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("close of %s: raptest %v, manual %v", kid, srv.Closes(), man.closed())
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// A tool server behind a tunnel or reverse proxy keeps its own Host
// header: its callback is authenticated by the per-call token alone.
// Refused callbacks are logged at most once per interval.
func TestCallbackThroughProxy(t *testing.T) {
	home := t.TempDir()
	var logs syncBuffer
	d, c := startDaemonWith(t, daemon.Options{Home: home, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	st, err := c.Start(t.Context(), daemon.StartRequest{Agent: "demo", Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(home, "rap.key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	url := rap.Tokens{Key: k}.CallbackURL("http://"+d.Addr(), st.Thread, "c1")
	post := func(url, body string) (int, string) {
		return raw(t, d, "POST", strings.TrimPrefix(url, "http://"+d.Addr()), body, map[string]string{"Host": "tools.tunnel.example:443", "Content-Type": "application/json"})
	}
	body := fmt.Sprintf(`{"type":"tool_result","group_id":%q,"id":"c1","text":"late"}`, st.Thread)
	if code, out := post(url, body); code != http.StatusOK {
		t.Fatalf("a callback with a foreign Host and a good token: %d %s", code, out)
	}
	bad := rap.Tokens{Key: []byte("not the daemon's key, not at all")}.CallbackURL("http://"+d.Addr(), st.Thread, "c1")
	for range 50 {
		if code, out := post(bad, body); code != http.StatusUnauthorized {
			t.Fatalf("a forged token: %d %s", code, out)
		}
	}
	if n := strings.Count(logs.String(), "bad token"); n != 1 {
		t.Errorf("%d log lines for 50 forged callbacks, want 1 (rate-limited)", n)
	}
	// The rest of the API keeps its Host check.
	if code, _ := raw(t, d, "GET", "/v1/status", "", map[string]string{"Host": "tools.tunnel.example:443", "Authorization": "Bearer " + token(t, home)}); code != http.StatusForbidden {
		t.Errorf("the API with a foreign Host: %d", code)
	}
}

// syncBuffer collects output written from many goroutines.
type syncBuffer = syncbuf.Buffer

// With Options.CallbackURL (--callback-url) a tool server is given
// callback URLs under that base, here a reverse proxy in front of the
// daemon that keeps its own Host header, and its result gets through.
func TestCallbackURLThroughAProxy(t *testing.T) {
	man := newManualRAP(t)
	var target atomic.Pointer[url.URL]
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target.Load()) // the outgoing Host stays the proxy's
		r.Out.Host = r.In.Host
	}})
	defer proxy.Close()
	d, c := startDaemonWith(t, daemon.Options{Home: t.TempDir(), CallbackURL: proxy.URL + "/"})
	u, _ := url.Parse("http://" + d.Addr())
	target.Store(u)
	_, start := agentStarter(t, c, "proxied.yaml",
		fmt.Sprintf("name: proxied\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [%q]\n", man.URL), checklistScript)
	root := start("login please")
	inv := man.waitInvocation(t, root)
	if !strings.HasPrefix(inv.CallbackURL, proxy.URL+"/rap/callback/") {
		t.Fatalf("callback URL %s, want one under %s", inv.CallbackURL, proxy.URL)
	}
	if st := callback(t, inv.CallbackURL, map[string]any{"type": "tool_result", "group_id": inv.GroupID, "id": inv.ID, "text": "logged in as bob"}); st != 200 {
		t.Fatalf("callback through the proxy: HTTP %d", st)
	}
	waitItems(t, c, root, "the result", has("logged in as bob", "logged in"))
}
