package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/daemon"
)

// failingAgent writes an agent file whose scripted model fails every
// request: its threads end failed.
func failingAgent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(`{"rules":[{"when":{},"reply":{"error":"the model is down"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(agent, []byte("name: failing\nmodel: {provider: scripted, script: s.json}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return agent
}

// startDemo runs the bundled demo until its tree settles (its children
// closed, the root waiting for input) and returns the root.
func startDemo(t *testing.T) string {
	t.Helper()
	out := cmdOut(t, "run", "--follow", "demo")
	if !strings.HasPrefix(out, "started thread ") || !strings.HasSuffix(out, " is waiting for input\n") {
		t.Fatalf("run --follow demo:\n%s", out)
	}
	return strings.Fields(out)[2]
}

// Every command's failures end with the exit status of the table
// (exitCodes): usage 2, not found 3, no daemon 4; help and version 0.
func TestExitCodes(t *testing.T) {
	serveDaemon(t, t.TempDir())
	root := startDemo(t)
	empty := t.TempDir() // a home no daemon runs for
	sessions := filepath.Join(t.TempDir(), "sessions.json")
	cmdOut(t, "export", "-o", sessions)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string // what stderr holds
	}{
		{[]string{"help"}, exitOK, ""},
		{[]string{"--help"}, exitOK, ""},
		{[]string{"help", "cloud", "dlq", "redrive"}, exitOK, ""},
		{[]string{"version"}, exitOK, ""},
		{[]string{"--version"}, exitOK, ""},
		{[]string{"logs", root}, exitOK, ""},

		{nil, exitUsage, "infinity: name a command"},
		{[]string{"frobnicate"}, exitUsage, `infinity: unknown command "frobnicate" for "infinity"` + "\nRun 'infinity --help' for usage.\n"},
		{[]string{"lss"}, exitUsage, "infinity: unknown command \"lss\" for \"infinity\"\n\nDid you mean this?\n\tls\n\tlogs\n\nRun 'infinity --help' for usage.\n"},
		{[]string{"help", "lss"}, exitUsage, "Did you mean this?\n\tls"},
		{[]string{"daemon", "strat"}, exitUsage, "Did you mean this?\n\tstart\n\nRun 'infinity daemon --help' for usage."},
		{[]string{"cloud", "lss"}, exitUsage, "Did you mean this?\n\tlogs\n\tls\n"},
		{[]string{"lgs", "--help"}, exitUsage, "Did you mean this?\n\tls\n\tlogs\n"},
		{[]string{"__complete", "logs", "-h", ""}, exitOK, "Completion ended with directive"},
		{[]string{"send", "--", "nosuch", "-h"}, exitNotFound, "thread nosuch: not found"},
		{[]string{"--home", empty, "daemon", "strat", "-h"}, exitUsage, `unknown command "strat" for "infinity daemon"`},
		{[]string{"cloud"}, exitUsage, "cloud: name a command"},
		{[]string{"tools"}, exitUsage, "tools: name a command"},
		{[]string{"tools", "srve"}, exitUsage, "Did you mean this?\n\tserve"},
		{[]string{"completion"}, exitUsage, "completion: name a command"},
		{[]string{"completion", "tcsh"}, exitUsage, `unknown command "tcsh"`},
		{[]string{"ls", "--nope"}, exitUsage, "infinity: ls: unknown flag: --nope\nRun 'infinity ls --help' for usage.\n"},
		{[]string{"--nope", "ls"}, exitUsage, "unknown flag: --nope"},
		{[]string{"logs", "-x", root}, exitUsage, "logs: unknown shorthand flag: 'x' in -x"},
		{[]string{"logs", "--from", "x", root}, exitUsage, `invalid argument "x" for "--from" flag`},
		{[]string{"logs", "--from", "-1", root}, exitUsage, "--from -1"},
		{[]string{"daemon", "--idle", "soon"}, exitUsage, `invalid argument "soon" for "--idle" flag`},
		{[]string{"daemon", "start", "--log-format", "xml"}, exitUsage, "--log-format"},
		{[]string{"daemon", "start", "--callback-url", "tools.example.com"}, exitUsage, "--callback-url"},
		{[]string{"run", "--budget", "5dollars", "demo", "hi"}, exitUsage, "--budget"}, // before any daemon is dialed
		{[]string{"daemon", "--callback-url", "https://u:p@tools.example.com"}, exitUsage, "--callback-url"},
		{[]string{"cloud", "dlq", "--limit", "0"}, exitUsage, "--limit 0"},
		{[]string{"tools", "serve", "--port", "70000"}, exitUsage, "--port 70000"},
		{[]string{"run"}, exitUsage, "run: missing AGENT\nRun 'infinity run --help' for usage."},
		{[]string{"run", "--list", "demo"}, exitUsage, "--list takes no arguments"},
		{[]string{"run", "--model", "gpt", "demo"}, exitUsage, "provider/model"},
		{[]string{"run", "demo", "hi", "there"}, exitUsage, `unexpected argument "there"`},
		{[]string{"send", root}, exitUsage, "send: missing MESSAGE"},
		{[]string{"send"}, exitUsage, "send: missing THREAD and MESSAGE"},
		{[]string{"ls", "extra"}, exitUsage, `ls: unexpected argument "extra"`},
		{[]string{"tree", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"logs"}, exitUsage, "logs: missing THREAD"},
		{[]string{"close"}, exitUsage, "close: missing THREAD"},
		{[]string{"rm", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"compact"}, exitUsage, "compact: missing THREAD"},
		{[]string{"answer", root}, exitUsage, "give a CHOICE"},
		{[]string{"answer", root, "0", "--dismiss"}, exitUsage, "not both"},
		{[]string{"export", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"import"}, exitUsage, "import: missing FILE"},
		{[]string{"ui", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"daemon", "status", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"daemon", "stop", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"version", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"demo", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"replay"}, exitUsage, "replay: missing FILE"},
		{[]string{"budget"}, exitUsage, "budget: missing THREAD"},
		{[]string{"budget", root, "--add", "5bananas"}, exitUsage, `budget: --add: "5bananas"`},
		{[]string{"run", "demo", "--budget", "0usd"}, exitUsage, "run: --budget"},
		{[]string{"replay", "a", "b"}, exitUsage, "unexpected argument"},
		{[]string{"cloud-local", "a", "b"}, exitUsage, "unexpected argument"},
		{[]string{"cloud", "send", "t1"}, exitUsage, "missing MESSAGE"},

		{[]string{"logs", "nosuch"}, exitNotFound, `(list threads with "infinity ls --all")`},
		{[]string{"logs", "-f", "nosuch"}, exitNotFound, "nosuch"},
		{[]string{"tree", "nosuch"}, exitNotFound, "nosuch"},
		{[]string{"send", "nosuch", "hi"}, exitNotFound, "nosuch"},
		{[]string{"close", "nosuch"}, exitNotFound, "nosuch"},
		{[]string{"rm", "nosuch"}, exitNotFound, "nosuch"},
		{[]string{"compact", "nosuch"}, exitNotFound, "nosuch"},
		{[]string{"answer", "nosuch", "0"}, exitNotFound, "nosuch"},
		{[]string{"budget", "nosuch"}, exitNotFound, "nosuch"},
		{[]string{"run", "no-such-agent", "hi"}, exitNotFound, "neither an agent file nor a bundled example"},
		{[]string{"run", t.TempDir(), "hi"}, exitNotFound, "without an agent.yaml"},
		{[]string{"import", filepath.Join(empty, "nothing.json")}, exitNotFound, "no such file"},
		{[]string{"demo", "--script", filepath.Join(empty, "nothing.json")}, exitNotFound, "no such file"},
		{[]string{"replay", filepath.Join(empty, "nothing.jsonl")}, exitNotFound, "no such file"},
		{[]string{"demo", "--record", filepath.Join(empty, "no", "dir", "r.jsonl")}, exitNotFound, "no such file"},

		{[]string{"--home", empty, "ls"}, exitNoDaemon, "no daemon is running"},
		{[]string{"ls", "--home", empty, "--all"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "tree"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "logs", root}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "logs", "-f", root}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "send", root, "hi"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "close", root}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "rm", root}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "compact", root}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "answer", root, "0"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "budget", root}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "export"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "import", sessions}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "ui", "--print"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "run", "demo"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "run", "--follow", "demo"}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "daemon", "status"}, exitNoDaemon, "infinity daemon start"},
		{[]string{"--home", empty, "daemon", "stop"}, exitNoDaemon, "no daemon is running"},
	} {
		if !cloudBuilt && namesCloud(tc.args) {
			continue // TestCloudNotBuilt
		}
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := cmdCode(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.stderr == "" && errOut != "" || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr %q, want %q in it", errOut, tc.stderr)
			}
			if tc.code == exitUsage && (strings.Contains(errOut, "Available Commands") || strings.Contains(errOut, "Flags:")) && len(tc.args) > 1 {
				t.Errorf("a usage error printed the whole help:\n%s", errOut)
			}
		})
	}
}

// run --follow and logs -f end with 5 when the thread fails.
func TestFailedThreadExitCode(t *testing.T) {
	serveDaemon(t, t.TempDir())
	agent := failingAgent(t)
	out, errOut, code := cmdCode(t, "run", "--follow", agent, "hello")
	if code != exitFailed || !strings.Contains(out, " is failed: ") || !strings.Contains(errOut, "the model is down") {
		t.Fatalf("run --follow of a failing agent: exit %d\n%s%s", code, out, errOut)
	}
	var threads []daemon.ThreadView
	if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--json")), &threads); err != nil || len(threads) != 1 {
		t.Fatalf("ls --json: %v %+v", err, threads)
	}
	root := string(threads[0].ID)
	out, errOut, code = cmdCode(t, "logs", "-f", root)
	if code != exitFailed || !strings.Contains(out, "user> hello") || !strings.Contains(out, "-- failed: ") ||
		!strings.HasPrefix(errOut, "infinity: logs: thread "+root+" failed: ") {
		t.Fatalf("logs -f of a failed thread: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = cmdCode(t, "logs", "-f", "--json", root)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitFailed || lines[len(lines)-1] != `{"index":1,"end":"failed"}` {
		t.Fatalf("logs -f --json of a failed thread: exit %d\n%s", code, out)
	}
	if _, _, code := cmdCode(t, "logs", root); code != exitOK {
		t.Errorf("logs (not followed) of a failed thread: exit %d", code)
	}
	// A second thread fails while logs -f follows it.
	var started daemon.Started
	if err := json.Unmarshal([]byte(cmdOut(t, "run", "--json", "--id", "later", agent, "hi again")), &started); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cmdCode(t, "logs", "--follow", "later"); code != exitFailed {
		t.Errorf("logs --follow of a failing thread: exit %d\n%s", code, errOut)
	}
}

// A context cancelled the way Ctrl-C cancels main's ends a command with
// 130; the commands that run until interrupted end with 0.
func TestInterruptedExitCode(t *testing.T) {
	serveDaemon(t, t.TempDir())
	root := startDemo(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	r := goRun(ctx, "logs", "-f", root)
	r.waitOut(t, "user> Run the offline demo")
	cancel(errInterrupted)
	if code := r.wait(t); code != exitInterrupted || r.errOut.String() != "infinity: interrupted\n" {
		t.Errorf("logs -f interrupted: exit %d\n%s%s", code, r.out.String(), r.errOut.String())
	}
	// Interrupted before it ends, any command is 130.
	for _, args := range [][]string{{"ls"}, {"run", "--follow", "demo"}, {"tree"}} {
		if _, errOut, code := cmdCodeCtx(ctx, args...); code != exitInterrupted {
			t.Errorf("%v interrupted: exit %d\n%s", args, code, errOut)
		}
	}
	// A server stops cleanly.
	if out, errOut, code := cmdCodeCtx(ctx, "tools", "serve", "--port", "0"); code != exitOK || !strings.Contains(out, `{"port":`) {
		t.Errorf("tools serve interrupted: exit %d\n%s%s", code, out, errOut)
	}
	// A context cancelled otherwise (not by a signal) is no interrupt.
	plain, cancelPlain := context.WithCancel(t.Context())
	cancelPlain()
	if _, _, code := cmdCodeCtx(plain, "logs", "-f", root); code == exitInterrupted {
		t.Errorf("logs -f with a plainly cancelled context: exit %d", code)
	}
}

// A daemon that goes away while logs -f or run --follow follows a thread
// ends them with 4 and says so.
func TestDaemonWentAway(t *testing.T) {
	home := t.TempDir()
	t.Setenv("INFINITY_HOME", home)
	open := func() *daemon.Daemon {
		d, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Idle: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		go d.Serve(context.Background())
		return d
	}
	for _, tc := range []struct {
		args  []string
		shows string // what it prints once it follows
	}{{[]string{"logs", "-f", ""}, "user> Run the offline demo"}, {[]string{"run", "--follow", "demo"}, "started thread"}} {
		d := open()
		if tc.args[0] == "logs" {
			tc.args[2] = startDemo(t)
		}
		r := goRun(t.Context(), tc.args...)
		r.waitOut(t, tc.shows)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if code := r.wait(t); code != exitNoDaemon || !strings.Contains(r.errOut.String(), "daemon went away") {
			t.Errorf("%v when the daemon stops: exit %d\n%s%s", tc.args, code, r.out.String(), r.errOut.String())
		}
	}
}

// running is a command run in the background.
type running struct {
	out, errOut syncBuffer
	done        chan int
}

// goRun starts a command in the background, as main would run it.
func goRun(ctx context.Context, args ...string) *running {
	r := &running{done: make(chan int, 1)}
	go func() { r.done <- report(run(ctx, args, &r.out, &r.errOut), &r.errOut) }()
	return r
}

// waitOut waits until the command's output shows want.
func (r *running) waitOut(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(r.out.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the command never showed %q:\n%s%s", want, r.out.String(), r.errOut.String())
		}
	}
}

// wait waits for the command's exit status.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("the command did not end:\n%s%s", r.out.String(), r.errOut.String())
		return 0
	}
}

// The completion scripts of the four shells, and the dynamic completion
// of commands, thread ids and bundled examples.
func TestCompletion(t *testing.T) {
	home := t.TempDir()
	serveDaemon(t, home)
	root := startDemo(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, errOut, code := cmdCode(t, "completion", shell)
		if code != exitOK || errOut != "" || len(out) < 1000 || !strings.Contains(out, "infinity") || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", shell, code, len(out), errOut)
		}
	}
	complete := func(args ...string) []string {
		t.Helper()
		out, errOut, code := cmdCode(t, append([]string{"__complete"}, args...)...)
		if code != exitOK || strings.Contains(errOut, "infinity:") {
			t.Fatalf("__complete %v: exit %d\n%s", args, code, errOut)
		}
		var words []string
		for l := range strings.Lines(out) {
			if w, _, _ := strings.Cut(strings.TrimSpace(l), "\t"); w != "" && !strings.HasPrefix(w, ":") {
				words = append(words, w)
			}
		}
		return words
	}
	has := func(words []string, want ...string) bool {
		for _, w := range want {
			if !strings.Contains(" "+strings.Join(words, " ")+" ", " "+w+" ") {
				return false
			}
		}
		return true
	}
	if w := complete(""); !has(w, "daemon", "run", "send", "ls", "tree", "logs", "close", "rm", "compact", "answer", "budget",
		"export", "import", "ui", "cloud", "cloud-local", "demo", "replay", "tools", "version", "help", "completion") {
		t.Errorf("commands: %v", w)
	}
	if w := complete("daemon", ""); !has(w, "start", "stop", "status") {
		t.Errorf("daemon's commands: %v", w)
	}
	if w := complete("logs", ""); !has(w, root) || len(w) != 4 {
		t.Errorf("logs THREAD: %v", w)
	}
	if w := complete("send", root[:3]); !has(w, root) {
		t.Errorf("send THREAD: %v", w)
	}
	if w := complete("close", ""); !has(w, root) || len(w) != 1 {
		t.Errorf("close THREAD (the open ones): %v", w)
	}
	if w := complete("rm", ""); len(w) != 0 {
		t.Errorf("rm THREAD (closed roots): %v", w)
	}
	if w := complete("logs", root, ""); len(w) != 0 {
		t.Errorf("logs THREAD, second argument: %v", w)
	}
	if w := complete("run", ""); !has(w, "demo", "research", "approval") {
		t.Errorf("run AGENT: %v", w)
	}
	if w := complete("run", "resea"); !has(w, "research", "researcher") || len(w) != 2 {
		t.Errorf("run res: %v", w)
	}
	if w := complete("daemon", "--log-level", ""); !has(w, "debug", "info", "warn", "error") {
		t.Errorf("daemon --log-level: %v", w)
	}
	if w := complete("--home", t.TempDir(), "logs", ""); len(w) != 0 {
		t.Errorf("logs THREAD with no daemon: %v", w)
	}
}

// --home goes before the command or after it.
func TestHomeFlagAnywhere(t *testing.T) {
	home := t.TempDir()
	serveDaemon(t, home)
	root := startDemo(t)
	t.Setenv("INFINITY_HOME", t.TempDir()) // only --home leads to the daemon
	before := cmdOut(t, "--home", home, "ls")
	if !strings.Contains(before, root) {
		t.Fatalf("infinity --home HOME ls:\n%s", before)
	}
	for _, args := range [][]string{{"ls", "--home", home}, {"ls", "--home=" + home}, {"--home=" + home, "ls"}} {
		if out := cmdOut(t, args...); out != before {
			t.Errorf("%v printed\n%s\nnot\n%s", args, out, before)
		}
	}
	if _, _, code := cmdCode(t, "ls"); code != exitNoDaemon {
		t.Errorf("ls without --home: exit %d", code)
	}
	// Flags go anywhere among the arguments.
	a := cmdOut(t, "logs", "--home", home, root, "--from", "1", "--json")
	b := cmdOut(t, "--home", home, "logs", "--json", root, "--from=1")
	if a != b || !strings.HasPrefix(a, `{"index":1,`) {
		t.Errorf("logs with its flags moved:\n%s\n%s", a, b)
	}
}

// version reads the build information; -ldflags sets the release.
func TestVersion(t *testing.T) {
	out := cmdOut(t, "version")
	if !strings.HasPrefix(out, "infinity ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: %q", out)
	}
	if v := cmdOut(t, "--version"); v != out {
		t.Errorf("--version: %q, version: %q", v, out)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(cmdOut(t, "version", "--json")), &v); err != nil || v.Version == "" || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --json: %v %+v", err, v)
	}
	defer func(old string) { version = old }(version)
	version = "v1.2.3"
	if out := cmdOut(t, "version"); !strings.HasPrefix(out, "infinity v1.2.3 (") {
		t.Errorf("version with -ldflags: %q", out)
	}
	v = versionInfo{Version: "v1.2.3", Revision: "0123456789ab", Dirty: true, Go: "go1.26.0", Platform: "linux/amd64"}
	if got := v.String(); got != "v1.2.3 (commit 0123456789ab, dirty; go1.26.0 linux/amd64)" {
		t.Errorf("String: %q", got)
	}
}
