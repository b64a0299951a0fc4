package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
)

// cmdOut runs one CLI command in-process and returns its output.
func cmdOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("infinity %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// cmdCode runs one CLI command in-process as main does and returns its
// output, with the error as main prints it, and its exit status.
func cmdCode(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cmdCodeCtx(t.Context(), args...)
}

// cmdCodeCtx is cmdCode with the context run gets (a test cancels it as
// Ctrl-C does).
func cmdCodeCtx(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	var out, errOut syncBuffer
	code = report(run(ctx, args, &out, &errOut), &errOut)
	return out.String(), errOut.String(), code
}

// serveDaemon runs an in-process daemon in home (INFINITY_HOME for the
// commands) until the test ends.
func serveDaemon(t *testing.T, home string) {
	t.Helper()
	t.Setenv("INFINITY_HOME", home)
	d, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Idle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go d.Serve(context.Background())
	t.Cleanup(func() { d.Close() })
}

// The client commands against an in-process daemon: run --follow, ls,
// tree, logs, compact, send, close, export and import, in text and JSON.
func TestClientCommands(t *testing.T) {
	home := t.TempDir()
	serveDaemon(t, home)

	out := cmdOut(t, "run", "--follow", "demo")
	for _, want := range []string{"started thread", "root  call spawn_thread", "root/1  call sleep", "All three children reported back", "is waiting for input"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --follow lacks %q:\n%s", want, out)
		}
	}
	var roots []daemon.ThreadView
	if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--json")), &roots); err != nil || len(roots) != 1 {
		t.Fatalf("ls --json: %v, %d roots", err, len(roots))
	}
	root := string(roots[0].ID)
	if out := cmdOut(t, "ls", "--all"); strings.Count(out, "closed") != 3 || !strings.Contains(out, "waiting for input") {
		t.Errorf("ls --all:\n%s", out)
	}
	if out := cmdOut(t, "tree"); !strings.Contains(out, "└── ") || !strings.Contains(out, root) {
		t.Errorf("tree:\n%s", out)
	}
	var tr daemon.Tree
	if err := json.Unmarshal([]byte(cmdOut(t, "tree", "--json", root)), &tr); err != nil || len(tr.Threads) != 3 {
		t.Fatalf("tree --json: %v, %+v", err, tr)
	}
	if out := cmdOut(t, "send", root, "thanks", "a", "lot"); !strings.Contains(out, "sent message") {
		t.Errorf("send: %s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(cmdOut(t, "logs", root), "already reported") {
		if time.Now().After(deadline) {
			t.Fatalf("the reply to the sent message never showed:\n%s", cmdOut(t, "logs", root))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := cmdOut(t, "logs", root, "--json", "--from", "1"); !strings.HasPrefix(out, `{"index":1,`) {
		t.Errorf("logs --json --from 1 starts with %.60q", out)
	}
	// compact: a compaction thread summarises the root, which then runs
	// from the summary; every item stays in its transcript.
	before := cmdOut(t, "logs", root)
	if out := cmdOut(t, "compact", root); !strings.Contains(out, "compacting "+root) {
		t.Errorf("compact: %s", out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var v []daemon.ThreadView
		if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--json")), &v); err == nil && len(v) == 1 && v[0].Compacted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the root never compacted: %s", cmdOut(t, "ls", "--all"))
		}
	}
	if err := json.Unmarshal([]byte(cmdOut(t, "tree", "--json", root)), &tr); err != nil || len(tr.Threads) != 4 || tr.Threads[3].Kind != "compaction" || tr.Threads[0].Kind != "" {
		t.Errorf("tree --json after compact: want the three children and a compaction thread: %v, %+v", err, tr)
	}
	if after := cmdOut(t, "logs", root); !strings.HasPrefix(after, before) {
		t.Errorf("logs after compaction do not start with the whole earlier transcript")
	}
	var rmOut, rmErr bytes.Buffer
	if err := run(context.Background(), []string{"rm", root}, &rmOut, &rmErr); err == nil || !strings.Contains(err.Error(), "close it first") {
		t.Errorf("rm of an open tree: %v", err)
	}
	cmdOut(t, "close", root)
	if out := cmdOut(t, "logs", "-f", root); !strings.HasSuffix(out, "-- closed\n") {
		t.Errorf("logs -f of a closed thread ends with %q", out[max(0, len(out)-40):])
	}
	cmdOut(t, "export")
	doc, err := os.ReadFile(filepath.Join(home, "sessions.json"))
	if err != nil || !strings.Contains(string(doc), root) {
		t.Fatalf("export wrote %d bytes, %v", len(doc), err)
	}
	if out := cmdOut(t, "import", filepath.Join(home, "sessions.json")); !strings.Contains(out, "skipped 1") {
		t.Errorf("import into the same daemon: %s", out)
	}
	if out := cmdOut(t, "daemon", "status"); !strings.Contains(out, "threads     5") || !strings.Contains(out, "model calls 0 in flight (at most 1024), 0 waiting for their turn") || !strings.Contains(out, "0 slices waiting for their model") {
		t.Errorf("daemon status:\n%s", out)
	}
	if out := cmdOut(t, "rm", root); !strings.Contains(out, "deleted "+root+" and 4 thread(s) below it") {
		t.Errorf("rm: %s", out)
	}
	if out := cmdOut(t, "daemon", "status"); !strings.Contains(out, "threads     0") {
		t.Errorf("daemon status after rm:\n%s", out)
	}
}

// The cloud tests share the suite's emulators (scripts/test names them in
// the environment); with INFINITY_REQUIRE_EMULATORS=1 and none named they
// start their own, stopped here, and with neither they skip.
func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// waitFor runs the command until its output contains want.
func waitFor(t *testing.T, want string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := cmdOut(t, args...)
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("infinity %s never showed %q:\n%s", strings.Join(args, " "), want, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
