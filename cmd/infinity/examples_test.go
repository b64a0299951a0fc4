package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/toolbox"
)

// The examples under examples/, run as their READMEs say: through the CLI
// and a daemon, with the example tool server over real HTTP. Each test
// fails if the example's outcome changes.

// toolboxURL is the URL the examples' agent files name for the tool server
// (`infinity tools serve`'s default port).
const toolboxURL = "http://127.0.0.1:9300"

// startToolbox serves the example tool server on a free port.
func startToolbox(t *testing.T) (string, *toolbox.Box) {
	t.Helper()
	box := toolbox.New(nil)
	box.Log = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(box)
	t.Cleanup(srv.Close)
	t.Cleanup(box.Close)
	return srv.URL, box
}

// example copies examples/NAME into a temporary directory with the
// replacements made (old, new, ...: the tool server's URL, say; each must
// occur) and returns its agent file's path.
func example(t *testing.T, name string, replace ...string) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", name)
	dst := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	found := make([]bool, len(replace)/2)
	for _, f := range []string{"agent.yaml", "script.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for i := range found {
			found[i] = found[i] || strings.Contains(s, replace[2*i])
			s = strings.ReplaceAll(s, replace[2*i], replace[2*i+1])
		}
		if err := os.WriteFile(filepath.Join(dst, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, ok := range found {
		if !ok {
			t.Fatalf("examples/%s no longer contains %q", name, replace[2*i])
		}
	}
	return filepath.Join(dst, "agent.yaml")
}

// startExample runs `infinity run --json AGENT TEXT` and returns the root.
func startExample(t *testing.T, agent, text string) infinity.ThreadID {
	t.Helper()
	var started daemon.Started
	if err := json.Unmarshal([]byte(cmdOut(t, "run", "--json", agent, text)), &started); err != nil {
		t.Fatal(err)
	}
	return started.Thread
}

// waitLogs waits until `infinity logs THREAD` shows want, and returns it.
func waitLogs(t *testing.T, thread infinity.ThreadID, want string) string {
	t.Helper()
	return waitFor(t, want, "logs", string(thread))
}

// tree returns the thread tree below root.
func tree(t *testing.T, root infinity.ThreadID) daemon.Tree {
	t.Helper()
	var tr daemon.Tree
	if err := json.Unmarshal([]byte(cmdOut(t, "tree", "--json", string(root))), &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// closedChildren counts the closed threads below a tree's root.
func closedChildren(tr daemon.Tree) int {
	n := 0
	for _, th := range tr.Threads {
		if th.Status == "closed" {
			n++
		}
		n += closedChildren(th)
	}
	return n
}

func TestExampleResearch(t *testing.T) {
	serveDaemon(t, t.TempDir())
	root := startExample(t, example(t, "research"), "Should we move the office?")
	waitLogs(t, root, "Answer: all three parts are in.")
	tr := tree(t, root)
	if len(tr.Threads) != 3 || closedChildren(tr) != 3 {
		t.Fatalf("want the root and three closed children, have %+v", tr.Threads)
	}
}

func TestExampleApproval(t *testing.T) {
	url, _ := startToolbox(t)
	serveDaemon(t, t.TempDir())
	root := startExample(t, example(t, "approval", toolboxURL, url), "Ship v2")
	waitFor(t, "waiting for your choice: Deploy v2 to production?", "ls")
	if out := cmdOut(t, "answer", string(root), "deploy"); !strings.Contains(out, `"deploy"`) {
		t.Fatalf("answer: %s", out)
	}
	out := waitLogs(t, root, "Approved: deploying v2 to production now.")
	if !strings.Contains(out, `The user chose "deploy".`) {
		t.Fatalf("the tool's result is not in the transcript:\n%s", out)
	}
}

func TestExampleProgress(t *testing.T) {
	url, _ := startToolbox(t)
	home := t.TempDir()
	serveDaemon(t, home)
	root := startExample(t, example(t, "progress", toolboxURL, url), "Build it")
	out := waitLogs(t, root, "The build finished")
	if !strings.Contains(out, "shown: build: 5 of 5 steps done") {
		t.Fatalf("the result's display segment is not shown:\n%s", out)
	}
	c, _, err := daemon.Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	views, err := c.Views(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Done, Total int }
	if err := json.Unmarshal(views["progress"], &got); err != nil || got.Done != 5 || got.Total != 5 {
		t.Fatalf("progress view %s: %v", views["progress"], err)
	}
}

func TestExampleWatcher(t *testing.T) {
	url, _ := startToolbox(t)
	serveDaemon(t, t.TempDir())
	root := startExample(t, example(t, "watcher", toolboxURL, url), "Watch the alerts")
	waitLogs(t, root, "call sleep_until_event_or_input")
	hook := func(body string) int {
		resp, err := http.Post(url+"/hooks/alerts", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := hook("cpu at 40%"); s != 200 {
		t.Fatalf("hook: %d", s)
	}
	waitLogs(t, root, "has closed.")
	if s := hook("disk 97% full"); s != 200 {
		t.Fatalf("hook: %d", s)
	}
	out := waitLogs(t, root, "I stopped watching the webhook.")
	if strings.Count(out, "Final report: URGENT") != 1 || !strings.Contains(out, "call cancel_subscription") {
		t.Fatalf("transcript:\n%s", out)
	}
	if tr := tree(t, root); len(tr.Threads) != 2 || closedChildren(tr) != 2 {
		t.Fatalf("want two closed event threads, have %+v", tr.Threads)
	}
	// cancel_subscription reached the tool server: nobody watches now.
	deadline := time.Now().Add(10 * time.Second)
	for hook("after") != 404 {
		if time.Now().After(deadline) {
			t.Fatal("the webhook still has a watcher after cancel_subscription")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The reminder survives the daemon stopping and starting again while it
// sleeps.
func TestExampleReminder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("INFINITY_HOME", home)
	open := func() *daemon.Daemon {
		d, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0",
			Logger: slog.New(slog.DiscardHandler), Idle: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		go d.Serve(context.Background())
		return d
	}
	d := open()
	root := startExample(t, example(t, "reminder", "+8s", "+3s"), "Remind me to stretch")
	waitLogs(t, root, "call sleep_until")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = open()
	t.Cleanup(func() { d.Close() })
	out := waitLogs(t, root, "Reminder: time to stretch!")
	if !strings.Contains(out, "Woke at the target time") || !strings.Contains(out, "(Europe/Paris)") {
		t.Fatalf("transcript:\n%s", out)
	}
}

// The conversation outgrows its context window, compacts and carries on;
// the transcript keeps every item.
func TestExampleLongChat(t *testing.T) {
	serveDaemon(t, t.TempDir())
	root := startExample(t, example(t, "longchat"), "note 1: water the roses every morning before nine")
	for i := 2; i <= 12; i++ {
		waitLogs(t, root, fmt.Sprintf("note %d:", i-1))
		cmdOut(t, "send", string(root), fmt.Sprintf("note %d: the tomatoes need stakes and the hedge needs trimming soon", i))
		if strings.Contains(cmdOut(t, "logs", string(root)), "carrying on from the summary") {
			break
		}
	}
	out := waitLogs(t, root, "Noted, carrying on from the summary of our earlier conversation.")
	if !strings.Contains(out, "user> note 1: water the roses") {
		t.Fatalf("the transcript lost its first items:\n%s", out)
	}
	var roots []daemon.ThreadView
	if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--json")), &roots); err != nil || len(roots) != 1 || !roots[0].Compacted {
		t.Fatalf("ls --json: %v %+v", err, roots)
	}
}

// The agent calls the toolbox's MCP server's two tools, synchronously.
func TestExampleMCP(t *testing.T) {
	url, _ := startToolbox(t)
	serveDaemon(t, t.TempDir())
	root := startExample(t, example(t, "mcp", toolboxURL, url), "Count and convert")
	out := waitLogs(t, root, "The sentence has 9 words, and 21 °C is 69.8 °F.")
	for _, want := range []string{"result word_count: 9 words, 1 lines, 43 characters", "result convert_temperature: 21 °C is 69.8 °F"} {
		if !strings.Contains(out, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, out)
		}
	}
}

// `infinity tools serve --port 0` prints {"port":N} once it listens, serves
// the manifest and MCP there, and stops cleanly when interrupted.
func TestToolsServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"tools", "serve", "--port", "0"}, pw, io.Discard) }()
	var ready struct{ Port int }
	if err := json.NewDecoder(pr).Decode(&ready); err != nil || ready.Port == 0 {
		t.Fatalf("ready line: %v %+v", err, ready)
	}
	go io.Copy(io.Discard, pr)
	base := fmt.Sprintf("http://127.0.0.1:%d", ready.Port)
	resp, err := http.Get(base + "/.well-known/rap-toolset")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Endpoint string }
	err = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if err != nil || m.Endpoint != base+"/invoke" {
		t.Fatalf("manifest endpoint %q: %v", m.Endpoint, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tools serve after an interrupt: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tools serve did not stop")
	}
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"tools", "serve", "--port", "70000"}, &out, &errOut); err == nil {
		t.Fatal("--port 70000 was accepted")
	}
	if err := run(t.Context(), []string{"tools", "serve", "--base-url", "ftp://x"}, &out, &errOut); err == nil {
		t.Fatal("--base-url ftp://x was accepted")
	}
	if err := run(t.Context(), []string{"tools", "nope"}, &out, &errOut); err == nil {
		t.Fatal("an unknown subcommand was accepted")
	}
}

// run --list describes the bundled examples; a bundled folder example runs
// by name (its script travels with it), and a folder path runs its
// agent.yaml.
func TestRunBundledAndFolders(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "") // the agents register without it
	out := cmdOut(t, "run", "--list")
	for _, want := range []string{"research    Splits a question three ways", "approval", "watcher", "longchat", "mcp", "demo"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --list lacks %q:\n%s", want, out)
		}
	}
	serveDaemon(t, t.TempDir())
	root := startExample(t, "research", "By name")
	waitLogs(t, root, "Answer: all three parts are in.")
	root = startExample(t, filepath.Dir(example(t, "research")), "By folder")
	waitLogs(t, root, "Answer: all three parts are in.")
	var o, e strings.Builder
	if err := run(t.Context(), []string{"run", t.TempDir(), "x"}, &o, &e); err == nil || !strings.Contains(err.Error(), "without an agent.yaml") {
		t.Errorf("a folder without an agent file: %v", err)
	}
	// A model the file lists but whose key the daemon lacks is refused
	// up front, saying where the key must be.
	if err := run(t.Context(), []string{"run", "--model", "anthropic/claude-sonnet-4-5", "research", "x"}, &o, &e); err == nil || !strings.Contains(err.Error(), "from its own environment") {
		t.Errorf("run --model without its key: %v", err)
	}
}
