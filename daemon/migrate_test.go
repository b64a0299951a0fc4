package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/rap"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// moverRAP is a tool server whose manifest asks for migration; its
// /migrate records the body and answers status, after gate (when set)
// is closed.
type moverRAP struct {
	URL    string
	mu     sync.Mutex
	bodies []rap.MigrateRequest
	status int
	gate   chan struct{}
	got    chan struct{} // a /migrate arrived (buffered)
	// invocations are the calls of mover_noop, which it never answers
	// by itself: the test posts their callbacks.
	invocations []raptest.Invocation
}

func (m *moverRAP) invoked() []raptest.Invocation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]raptest.Invocation(nil), m.invocations...)
}

func newMoverRAP(t *testing.T) *moverRAP {
	m := &moverRAP{status: http.StatusOK, got: make(chan struct{}, 10)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/rap-toolset", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":"mover","endpoint":%q,"needsMigration":true,"tools":[{"name":"mover_noop","description":"Nothing","inputSchema":{"type":"object"}}]}`, m.URL+"/invoke")
	})
	mux.HandleFunc("POST /invoke", func(_ http.ResponseWriter, r *http.Request) {
		var inv raptest.Invocation
		_ = json.NewDecoder(r.Body).Decode(&inv)
		m.mu.Lock()
		m.invocations = append(m.invocations, inv)
		m.mu.Unlock()
	})
	mux.HandleFunc("POST /close_thread", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /migrate", func(w http.ResponseWriter, r *http.Request) {
		var b rap.MigrateRequest
		_ = json.NewDecoder(r.Body).Decode(&b)
		m.mu.Lock()
		m.bodies = append(m.bodies, b)
		gate, status := m.gate, m.status
		m.mu.Unlock()
		m.got <- struct{}{}
		if gate != nil {
			<-gate
		}
		w.WriteHeader(status)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

func (m *moverRAP) migrations() []rap.MigrateRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rap.MigrateRequest(nil), m.bodies...)
}

func (m *moverRAP) set(status int, gate chan struct{}) {
	m.mu.Lock()
	m.status, m.gate = status, gate
	m.mu.Unlock()
}

// A root that spawns a child and waits; the child sleeps 3 s, then
// reports and closes; the root answers "the child woke up".
const migrateScript = `{"rules":[
  {"when":{"depth":0,"last_tool":"receive_event__injected"},"reply":{"text":"the child woke up"}},
  {"when":{"depth":0,"last":"tool_result"},"reply":{"calls":[{"name":"sleep_until_event_or_input"}]}},
  {"when":{"depth":0,"last":"user"},"reply":{"calls":[{"name":"spawn_thread","args":{"instructions":"nap","child_of":"$STACK"}}]}},
  {"when":{"depth":1,"last_tool":"sleep"},"reply":{"calls":[{"name":"close_thread","args":{"thread_id":"$THREAD","report_to_parent":"woke"}}]}},
  {"when":{"depth":1},"reply":{"calls":[{"name":"sleep","args":{"seconds":3}}]}}
]}`

// sleepingTree starts a root and waits until its child sleeps; it returns
// the root, the child and when the child wakes.
func sleepingTree(t *testing.T, c *daemon.Client, start func(string) infinity.ThreadID) (root, kid infinity.ThreadID, until time.Time) {
	t.Helper()
	root = start("start")
	deadline := time.Now().Add(20 * time.Second)
	for {
		tr, err := c.Tree(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Threads) == 1 && tr.Threads[0].Status == daemon.StatusSleeping && tr.Threads[0].Until != nil &&
			tr.Status == daemon.StatusWaiting {
			return root, tr.Threads[0].ID, *tr.Threads[0].Until
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never slept: %+v", tr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// infinity migrate between two daemons (RAP §8, checklist rules
// 103-109): a tree with a sleeping child and RAP servers that need
// migration moves and wakes at the destination on time; failures call
// the move off and leave the session running at the source.
func TestMigrate(t *testing.T) {
	mover := newMoverRAP(t)
	keeper := raptest.New(t, raptest.WithNeedsMigration(), raptest.WithName("keeper"), raptest.WithPrefix("k_"))
	plain := raptest.New(t, raptest.WithName("plain"), raptest.WithPrefix("p_"))
	yaml := fmt.Sprintf("name: mover\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [%q, %q, %q]\n", mover.URL, keeper.URL, plain.URL)
	srcHome, dstHome := t.TempDir(), t.TempDir()
	_, src := startDaemon(t, srcHome)
	dstd, dst := startDaemon(t, dstHome)
	_, start := agentStarter(t, src, "mover.yaml", yaml, migrateScript)
	tok, err := daemon.ReadToken(dstHome)
	if err != nil {
		t.Fatal(err)
	}
	to := daemon.MigrateRequest{To: "http://" + dstd.Addr(), Token: tok}
	ctx := t.Context()

	t.Run("103 104 105 106 107 a sleeping tree moves, input waits, and it wakes there on time", func(t *testing.T) {
		root, kid, until := sleepingTree(t, src, start)
		gate := make(chan struct{})
		mover.set(http.StatusOK, gate)
		release := sync.OnceFunc(func() { close(gate) })
		t.Cleanup(release) // a failure before close must not leave /migrate hanging
		type result struct {
			m   daemon.Migrated
			err error
		}
		done := make(chan result, 1)
		go func() {
			m, err := src.Migrate(ctx, root, to)
			done <- result{m, err}
		}()
		<-mover.got
		// While the servers move: input is refused, retryably, at the
		// source, and the destination has nothing yet.
		_, err := src.Send(ctx, root, daemon.MessageRequest{Text: "are you there?"})
		wantCode(t, err, http.StatusServiceUnavailable, daemon.CodeMigrating)
		_, err = src.Send(ctx, kid, daemon.MessageRequest{Text: "and you?"})
		wantCode(t, err, http.StatusServiceUnavailable, daemon.CodeMigrating)
		if _, err := dst.Thread(ctx, root); err == nil {
			t.Fatal("the destination has the session before every /migrate answered")
		}
		release()
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		m := res.m
		if m.Root != root || len(m.Threads) != 2 || m.Threads[1] != kid || m.Pending != 1 || !m.Started || len(m.Servers) != 2 {
			t.Fatalf("migrated %+v", m)
		}
		// 103 104 105: both servers that need it got /migrate, each with
		// its own instance at the destination; the other got none.
		if b := mover.migrations(); len(b) != 1 || b[0].SessionID != string(root) || b[0].DestinationURL != mover.URL {
			t.Fatalf("mover's /migrate: %+v", b)
		}
		if b := keeper.Migrations(); len(b) != 1 || b[0].SessionID != string(root) || b[0].DestinationURL != keeper.URL {
			t.Fatalf("keeper's /migrate: %+v", b)
		}
		if len(plain.Migrations()) != 0 {
			t.Fatal("/migrate to a server without needsMigration")
		}
		// Gone here, timers and all.
		_, err = src.Thread(ctx, root)
		wantCode(t, err, http.StatusNotFound, daemon.CodeNotFound)
		_, err = src.Thread(ctx, kid)
		wantCode(t, err, http.StatusNotFound, daemon.CodeNotFound)
		if st, err := src.Status(ctx); err != nil || st.Waiting != 0 {
			t.Fatalf("source status %+v, %v: want nothing waiting", st, err)
		}
		// There: the child still sleeps and wakes when it was due.
		if v, err := dst.Thread(ctx, kid); err != nil || v.Status != daemon.StatusSleeping || v.Until == nil || !v.Until.Equal(until) {
			t.Fatalf("the child at the destination: %+v, %v; want it asleep until %s", v, err, until)
		}
		waitItems(t, dst, root, "the child's wake-up", has("the child woke up"))
		if now := time.Now(); now.Before(until) {
			t.Fatalf("woke at %s, before %s", now, until)
		}
		if _, err := dst.Send(ctx, root, daemon.MessageRequest{Text: "thanks"}); err != nil {
			t.Fatalf("input at the destination: %v", err)
		}
	})

	t.Run("108 109 a failed /migrate calls the move off; the session stays and runs here", func(t *testing.T) {
		root, _, _ := sleepingTree(t, src, start)
		mover.set(http.StatusInternalServerError, nil)
		defer mover.set(http.StatusOK, nil)
		keeperBefore := len(keeper.Migrations())
		_, err := src.Migrate(ctx, root, to)
		wantCode(t, err, http.StatusBadGateway, daemon.CodeMigrationFailed)
		if msg := err.Error(); !strings.Contains(msg, "HTTP 500") || !strings.Contains(msg, keeper.URL) || !strings.Contains(msg, "moved the session's state") {
			t.Fatalf("the error does not say what failed and which servers moved: %s", msg)
		}
		if len(keeper.Migrations()) != keeperBefore+1 {
			t.Fatal("keeper was not asked to migrate")
		}
		if _, err := dst.Thread(ctx, root); err == nil {
			t.Fatal("the destination holds the session of a move called off")
		}
		waitItems(t, src, root, "the child's wake-up here", has("the child woke up"))
		if _, err := src.Send(ctx, root, daemon.MessageRequest{Text: "still here?"}); err != nil {
			t.Fatalf("input after the move was called off: %v", err)
		}
	})

	t.Run("109 an unreachable destination calls the move off cleanly", func(t *testing.T) {
		root, _, _ := sleepingTree(t, src, start)
		before := len(mover.migrations())
		_, err := src.Migrate(ctx, root, daemon.MigrateRequest{To: deadAddr(t), Token: tok})
		wantCode(t, err, http.StatusBadGateway, daemon.CodeMigrationFailed)
		if !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("error %v", err)
		}
		if len(mover.migrations()) != before {
			t.Fatal("/migrate sent for an unreachable destination")
		}
		waitItems(t, src, root, "the child's wake-up here", has("the child woke up"))
	})

	t.Run("a destination without migration, or with another token, is refused before anything moves", func(t *testing.T) {
		old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/status" {
				fmt.Fprint(w, `{"version":"v0.9.0"}`)
				return
			}
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no route"}}`)
		}))
		defer old.Close()
		root, _, _ := sleepingTree(t, src, start)
		before := len(mover.migrations())
		_, err := src.Migrate(ctx, root, daemon.MigrateRequest{To: old.URL, Token: tok})
		wantCode(t, err, http.StatusBadGateway, daemon.CodeMigrationFailed)
		if !strings.Contains(err.Error(), `version "v0.9.0"`) || !strings.Contains(err.Error(), "cannot take a migration") {
			t.Fatalf("error %v", err)
		}
		_, err = src.Migrate(ctx, root, daemon.MigrateRequest{To: to.To, Token: strings.Repeat("x", 64)})
		wantCode(t, err, http.StatusBadGateway, daemon.CodeMigrationFailed)
		if !strings.Contains(err.Error(), "refused the token") {
			t.Fatalf("error %v", err)
		}
		if len(mover.migrations()) != before {
			t.Fatal("/migrate sent")
		}
		waitItems(t, src, root, "the child's wake-up here", has("the child woke up"))
	})

	t.Run("bad requests", func(t *testing.T) {
		_, err := src.Migrate(ctx, "nosuch", to)
		wantCode(t, err, http.StatusNotFound, daemon.CodeNotFound)
		root, kid, _ := sleepingTree(t, src, start)
		_, err = src.Migrate(ctx, kid, to)
		wantCode(t, err, http.StatusBadRequest, daemon.CodeBadRequest)
		_, err = src.Migrate(ctx, root, daemon.MigrateRequest{To: "ftp://x", Token: tok})
		wantCode(t, err, http.StatusBadRequest, daemon.CodeBadRequest)
		_, err = src.Migrate(ctx, root, daemon.MigrateRequest{To: to.To})
		wantCode(t, err, http.StatusBadRequest, daemon.CodeBadRequest)
		waitItems(t, src, root, "the child's wake-up here", has("the child woke up"))
	})
}

// A daemon stopped part-way through a move picks it up at its next start
// (the marker HOME/migrations/out-ROOT.json says how far it got): before
// the destination took the session, the move is called off and the
// session runs here; after, the session is deleted here before anything
// of it runs again.
func TestMigrateRecovery(t *testing.T) {
	t.Run("109 cut short before the import: called off, runs here", func(t *testing.T) { cutShort(t, "moving", true) })
	t.Run("109 cut short after the import: finished, gone here", func(t *testing.T) { cutShort(t, "imported", false) })
}

// cutShort stops a daemon with a sleeping tree, leaves the marker of a
// move in phase, and starts it again.
func cutShort(t *testing.T, phase string, runsHere bool) {
	yaml := "name: napper\nmodel:\n  provider: scripted\n  script: s.json\n"
	home := t.TempDir()
	d, c := startDaemon(t, home)
	_, start := agentStarter(t, c, "napper.yaml", yaml, migrateScript)
	root, _, _ := sleepingTree(t, c, start)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf(`{"root":%q,"to":%q,"token":"x","phase":%q}`, root, deadAddr(t), phase)
	if err := os.MkdirAll(filepath.Join(home, "migrations"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "migrations", "out-"+string(root)+".json")
	if err := os.WriteFile(path, []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	_, c = startDaemon(t, home)
	if !runsHere {
		_, err := c.Thread(t.Context(), root)
		wantCode(t, err, http.StatusNotFound, daemon.CodeNotFound)
		if st, err := c.Status(t.Context()); err != nil || st.Waiting != 0 || st.Threads != 0 {
			t.Fatalf("status %+v, %v: want nothing of the moved session", st, err)
		}
		return
	}
	waitItems(t, c, root, "the child's wake-up here", has("the child woke up"))
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(path); err == nil; _, err = os.Stat(path) {
		if time.Now().After(deadline) {
			t.Fatal("the marker of the move called off stays")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A root that calls mover_noop, whose result the test posts (the server
// never answers by itself), and says so when it comes; "ping" is answered
// at once.
const forwardScript = `{"rules":[
  {"when":{"depth":0,"last":"user","last_text":"ping"},"reply":{"text":"pong"}},
  {"when":{"depth":0,"last":"user"},"reply":{"calls":[{"name":"mover_noop"}]}},
  {"when":{"depth":0,"last_tool":"mover_noop"},"reply":{"text":"the result came"}}
]}`

// postCallback posts a RAP callback body to url, as a tool server would.
func postCallback(t *testing.T, url, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// An async call in flight when its session moves: its callback, posted to
// the source's URL (the only one the tool knows), is refused retryably
// during the move, then forwarded to the destination and applied there
// once, however often it is posted; with the destination down the tool is
// asked to retry; the forwarding route takes no other credential.
func TestMigrateForwardsCallbacks(t *testing.T) {
	mover := newMoverRAP(t)
	yaml := fmt.Sprintf("name: forwarder\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [%q]\n", mover.URL)
	srcHome, dstHome := t.TempDir(), t.TempDir()
	srcd, src := startDaemon(t, srcHome)
	dstd, dst := startDaemon(t, dstHome)
	_, start := agentStarter(t, src, "forwarder.yaml", yaml, forwardScript)
	tok, err := daemon.ReadToken(dstHome)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	root := start("call the tool")
	deadline := time.Now().Add(20 * time.Second)
	for len(mover.invoked()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tool was never invoked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	inv := mover.invoked()[0]
	if inv.GroupID != string(root) || !strings.HasPrefix(inv.CallbackURL, "http://"+srcd.Addr()+"/rap/callback/") {
		t.Fatalf("invocation %+v", inv)
	}
	result := fmt.Sprintf(`{"type":"tool_result","group_id":%q,"id":%q,"text":"the held result"}`, root, inv.ID)

	gate := make(chan struct{})
	mover.set(http.StatusOK, gate)
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // a failure before close must not leave /migrate hanging
	done := make(chan error, 1)
	go func() {
		_, err := src.Migrate(ctx, root, daemon.MigrateRequest{To: "http://" + dstd.Addr(), Token: tok})
		done <- err
	}()
	<-mover.got
	// During the move: refused, retryably.
	status, hdr, body := postCallback(t, inv.CallbackURL, result)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, daemon.CodeMigrating) {
		t.Fatalf("callback during the move: %d %q %s; want 503 %s with Retry-After", status, hdr.Get("Retry-After"), body, daemon.CodeMigrating)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := src.Thread(ctx, root); err == nil {
		t.Fatal("the session is still at the source")
	}
	// The record, in the source's home, is the user's alone and holds
	// no bearer token of the destination.
	fi, err := os.Stat(filepath.Join(srcHome, "migrations", "forwards.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("forwarding record: %v, %v; want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(srcHome, "migrations", "forwards.json")); strings.Contains(string(b), tok) {
		t.Fatal("the forwarding record holds the destination's bearer token")
	}

	// After: the same URL reaches the destination, which applies it once.
	for i := range 2 {
		if status, _, body := postCallback(t, inv.CallbackURL, result); status != http.StatusOK {
			t.Fatalf("callback %d after the move: %d %s", i+1, status, body)
		}
	}
	waitItems(t, dst, root, "the forwarded result", has("the held result", "the result came"))
	if _, err := dst.Send(ctx, root, daemon.MessageRequest{Text: "ping"}); err != nil {
		t.Fatal(err)
	}
	// The duplicate came before the ping: by its answer it was dropped or applied.
	h := waitItems(t, dst, root, "the ping's answer", has("pong"))
	if n := strings.Count(h, "the held result"); n != 1 {
		t.Fatalf("the result is in the history %d times:\n%s", n, h)
	}

	// A forged token is refused at the source; the destination's route
	// wants the migration's credential.
	bad := inv.CallbackURL[:strings.LastIndex(inv.CallbackURL, "/")+1] + strings.Repeat("A", 43) + "?call=" + inv.ID
	if status, _, _ := postCallback(t, bad, result); status != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d, want 401", status)
	}
	fwd := fmt.Sprintf(`{"root":%q,"thread":%q,"call":%q,"callback":%s,"hops":0}`, root, root, inv.ID, result)
	for _, auth := range []string{"", "Bearer " + tok, "Bearer " + strings.Repeat("A", 43)} {
		if st, _ := raw(t, dstd, "POST", daemon.MigrationCallbacksPath, fwd, map[string]string{"Authorization": auth}); st != http.StatusUnauthorized {
			t.Fatalf("forwarded callback with %q: %d, want 401", auth, st)
		}
	}
	if st, _ := raw(t, dstd, "DELETE", "/v1/migrations/callbacks", "", nil); st != http.StatusUnauthorized {
		t.Fatalf("DELETE on the callbacks route without the bearer token: %d, want 401", st)
	}

	// The destination down: the tool is asked to retry.
	if err := dstd.Close(); err != nil {
		t.Fatal(err)
	}
	status, hdr, body = postCallback(t, inv.CallbackURL, result)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("callback with the destination down: %d %q %s; want 503 with Retry-After", status, hdr.Get("Retry-After"), body)
	}
}
