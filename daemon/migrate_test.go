package daemon_test

import (
	"encoding/json"
	"fmt"
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
}

func newMoverRAP(t *testing.T) *moverRAP {
	m := &moverRAP{status: http.StatusOK, got: make(chan struct{}, 10)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/rap-toolset", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":"mover","endpoint":%q,"needsMigration":true,"tools":[{"name":"mover_noop","description":"Nothing","inputSchema":{"type":"object"}}]}`, m.URL+"/invoke")
	})
	mux.HandleFunc("POST /invoke", func(http.ResponseWriter, *http.Request) {})
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
		close(gate)
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
