package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
)

var trials = flag.Int("e2e.trials", 1, "kill-and-restart trials of TestCrashRestart (20 or more for the long run)")

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the infinity command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "infinity-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "infinity")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a daemon running as a child process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

func startDaemonProc(t *testing.T, home string) (*proc, *daemon.Client) {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(binary(t), "daemon", "--home", home, "--addr", "127.0.0.1:0", "--idle", "200ms", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: &log}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("the daemon exited:\n%s", log.String())
		default:
		}
		if c, info, err := daemon.Dial(home); err == nil && info.PID == cmd.Process.Pid {
			if _, err := c.Status(context.Background()); err == nil {
				return p, c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon was not ready after 30 s:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// cli runs the infinity command against home.
func cli(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), append(args, "--home", home)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// "daemon start" through the real binary: a daemon that fails while it
// starts gives its own exit status (3 for a missing --prices file) and
// only this start's lines of the log; one that starts is detached, answers,
// and "daemon stop" ends it.
func TestDaemonStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, daemon.LogFile), []byte("a line of an earlier run\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, home, "daemon", "start", "--prices", filepath.Join(home, "nothing.json"))
	if code := exitOf(err); code != exitNotFound || !strings.Contains(out, "nothing.json: no such file") || strings.Contains(out, "earlier run") {
		t.Fatalf("daemon start with a missing --prices file: exit %d:\n%s", code, out)
	}
	if out, err := cli(t, home, "daemon", "start", "--addr", "127.0.0.1:0"); err != nil || !strings.Contains(out, "infinity daemon started on http://127.0.0.1:") {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	if out, err := cli(t, home, "daemon", "stop"); err != nil {
		t.Fatalf("daemon stop: %v\n%s", err, out)
	}
	if _, err := cli(t, home, "daemon", "status"); exitOf(err) != exitNoDaemon {
		t.Fatalf("daemon status after stop: %v", err)
	}
}

// exitOf is a finished command's exit status.
func exitOf(err error) int {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCrashRestart is the daemon's crash test, through the real binary and
// CLI: demo trees are started, user input is sent while children sleep and
// slices run, the daemon is killed with SIGKILL at random points (twice per
// trial) and restarted, and every tree must then finish with each
// acknowledged input applied exactly once and no history entry twice.
// -e2e.trials=N sets how many trials run (one by default).
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for trial := range *trials {
		t.Run(fmt.Sprint("trial", trial), func(t *testing.T) { crashTrial(t, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(trial)))) })
	}
}

func crashTrial(t *testing.T, rng *rand.Rand) {
	home := t.TempDir()
	p, _ := startDaemonProc(t, home)
	var roots []infinity.ThreadID
	for range 2 {
		out, err := cli(t, home, "run", "demo", "--json")
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		var s daemon.Started
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("run --json printed %q: %v", out, err)
		}
		roots = append(roots, s.Thread)
	}
	acked := map[string]infinity.ThreadID{}   // message id → thread: must appear once
	unacked := map[string]infinity.ThreadID{} // may appear at most once
	send := func(i int) {
		root := roots[i%len(roots)]
		id := fmt.Sprintf("m-%d", i)
		if out, err := cli(t, home, "send", "--id", id, string(root), "are you there?"); err == nil {
			acked[id] = root
		} else {
			unacked[id] = root
			t.Logf("send %s not acknowledged: %v %s", id, err, strings.TrimSpace(out))
		}
	}
	msg := 0
	for kill := range 2 {
		// Kill somewhere between "slices running" and "children asleep".
		wait := time.Duration(rng.Float64() * float64(2500*time.Millisecond))
		sendAt := time.Duration(rng.Float64() * float64(wait))
		time.Sleep(sendAt)
		send(msg)
		msg++
		time.Sleep(wait - sendAt)
		t.Logf("kill %d after %s", kill, wait.Round(time.Millisecond))
		p.kill()
		p, _ = startDaemonProc(t, home)
	}
	send(msg)
	c := waitFinished(t, home, roots, acked)
	checkTrees(t, c, roots, acked, unacked)
	_ = p
}

// waitFinished waits until every tree is done: its children closed, the
// final summary written and every acknowledged message applied.
func waitFinished(t *testing.T, home string, roots []infinity.ThreadID, acked map[string]infinity.ThreadID) *daemon.Client {
	t.Helper()
	c, _, err := daemon.Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for _, r := range roots {
			tr, err := c.Tree(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Status != daemon.StatusWaiting || tr.Detail != daemon.WaitingForInput || len(tr.Threads) < 3 {
				done = false
			}
			for _, k := range tr.Threads {
				if k.Status != daemon.StatusClosed {
					done = false
				}
			}
		}
		if done {
			items := map[infinity.ThreadID][]infinity.Item{}
			for _, r := range roots {
				items[r] = ownItems(t, c, r)
			}
			for id, r := range acked {
				if count(items[r], func(it infinity.Item) bool { return it.ID == id }) == 0 {
					done = false
				}
			}
		}
		if done {
			return c
		}
		if time.Now().After(deadline) {
			for _, r := range roots {
				var b strings.Builder
				printTree(&b, style{}, mustTree(t, c, r), "", "")
				t.Log(b.String())
			}
			t.Fatal("the trees did not finish within 60 s of the last restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustTree(t *testing.T, c *daemon.Client, id infinity.ThreadID) daemon.Tree {
	tr, err := c.Tree(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func ownItems(t *testing.T, c *daemon.Client, id infinity.ThreadID) []infinity.Item {
	t.Helper()
	var out []infinity.Item
	if err := c.Items(context.Background(), id, 0, false, func(l daemon.ItemLine) error {
		if l.Item != nil {
			out = append(out, *l.Item)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(items []infinity.Item, pred func(infinity.Item) bool) int {
	n := 0
	for _, it := range items {
		if pred(it) {
			n++
		}
	}
	return n
}

func checkTrees(t *testing.T, c *daemon.Client, roots []infinity.ThreadID, acked, unacked map[string]infinity.ThreadID) {
	t.Helper()
	for _, r := range roots {
		tr := mustTree(t, c, r)
		if len(tr.Threads) != 3 {
			t.Errorf("root %s has %d children, want 3", r, len(tr.Threads))
		}
		items := ownItems(t, c, r)
		call := func(name string) func(infinity.Item) bool {
			return func(it infinity.Item) bool { return it.Kind == infinity.KindToolCall && it.Call.Name == name }
		}
		if n := count(items, call("spawn_thread")); n != 3 {
			t.Errorf("root %s spawned %d times, want 3", r, n)
		}
		if n := count(items, call("receive_event__injected")); n != 3 {
			t.Errorf("root %s received %d reports, want 3", r, n)
		}
		if n := count(items, func(it infinity.Item) bool { return strings.HasPrefix(it.Text, "All three children reported back") }); n != 1 {
			t.Errorf("root %s wrote the summary %d times, want once", r, n)
		}
		for id, to := range acked {
			if to == r {
				if n := count(items, func(it infinity.Item) bool { return it.ID == id }); n != 1 {
					t.Errorf("acknowledged message %s appears %d times in %s, want once", id, n, r)
				}
			}
		}
		for id, to := range unacked {
			if to == r {
				if n := count(items, func(it infinity.Item) bool { return it.ID == id }); n > 1 {
					t.Errorf("message %s appears %d times in %s", id, n, r)
				}
			}
		}
		threads := append([]daemon.Tree{tr}, tr.Threads...)
		for _, th := range threads {
			its := ownItems(t, c, th.ID)
			seen := map[string]bool{}
			for _, it := range its {
				if seen[it.ID] {
					t.Errorf("thread %s holds item %s twice", th.ID, it.ID)
				}
				seen[it.ID] = true
			}
			if th.ID != r && count(its, call("close_thread")) != 1 {
				t.Errorf("child %s closed itself %d times, want once", th.ID, count(its, call("close_thread")))
			}
		}
	}
}

// A tree's budget holds across kill -9: the spend and the cap are read
// from the stored histories, so the restarted daemon makes no model call
// for the stopped tree, and a raise afterwards lets it finish.
func TestBudgetSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	agent := cappedAgent(t)
	home := t.TempDir()
	p, c := startDaemonProc(t, home)
	out, err := cli(t, home, "run", agent, "Start.", "--budget", "1calls", "--json")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var st daemon.Started
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	spent := func(c *daemon.Client) actors.TreeBudget {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			tb, err := c.Budget(t.Context(), st.Thread)
			if err == nil && tb.Spent != "" {
				if v, err := c.Thread(t.Context(), st.Thread); err == nil && v.Status == daemon.StatusOverBudget {
					return tb
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tree never showed over_budget: %+v, %v", tb, err)
			}
		}
	}
	before := spent(c)
	p.kill()
	_, c2 := startDaemonProc(t, home)
	after := spent(c2)
	time.Sleep(500 * time.Millisecond) // the restart delivers what waited: no model call may come of it
	if tb, err := c2.Budget(t.Context(), st.Thread); err != nil || tb.Spend.ModelCalls != before.Spend.ModelCalls || after.Budget.ModelCalls != 1 || tb.Spend.ModelCalls != 1 {
		t.Fatalf("budget before the kill %+v, after %+v (%v)", before, tb, err)
	}
	if out, err := cli(t, home, "budget", string(st.Thread), "--add", "100calls"); err != nil {
		t.Fatalf("budget --add: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := cli(t, home, "logs", string(st.Thread))
		if strings.Contains(out, "Both children reported back.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tree did not finish after the raise:\n%s", out)
		}
	}
}
