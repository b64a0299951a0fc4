//go:build unix

package procsup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/internal/procsup"
	"github.com/infinity-runtime/infinity/internal/syncbuf"
)

// pipeConn is the simplest Conn: the process's standard input, closed to
// stop it.
type pipeConn struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
	err   error
	done  chan struct{}
}

func startPipe(_ context.Context, cmd *exec.Cmd) (*pipeConn, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &pipeConn{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *pipeConn) Wait() error { <-c.done; return c.err }

func (c *pipeConn) Close() error {
	c.once.Do(func() { c.stdin.Close() })
	return c.Wait()
}

// sh supervises a shell script; logs go to the returned buffer.
func sh(t *testing.T, script string, tweak func(*procsup.Config[*pipeConn])) (*procsup.Supervisor[*pipeConn], *syncbuf.Buffer) {
	t.Helper()
	var logs syncbuf.Buffer
	cfg := procsup.Config[*pipeConn]{
		Name: "tester", Path: "/bin/sh", Args: []string{"-c", script}, Start: startPipe,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), LogKey: "test_server",
		StopGrace: 2 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := procsup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, &logs
}

// alive reports whether pid is a running process (not gone, not a zombie).
func alive(pid int) bool {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// pid (comm) S ...: the state follows the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
	} else if !errors.Is(err, os.ErrNotExist) || isProcFS() {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

func isProcFS() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func acquire(t *testing.T, s *procsup.Supervisor[*pipeConn]) *procsup.Lease[*pipeConn] {
	t.Helper()
	l, err := s.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Nothing runs until the first Acquire; its standard error is logged line
// by line with its name, credentials redacted; Close stops it.
func TestStartOnFirstUseAndStderr(t *testing.T) {
	s, logs := sh(t, `echo "hello from $$ with s3cr3t-token" >&2; echo second line >&2; exec cat`, func(c *procsup.Config[*pipeConn]) {
		c.Redact = []string{"s3cr3t-token"}
	})
	if pid := s.Pid(); pid != 0 {
		t.Fatalf("a process runs before the first Acquire: %d", pid)
	}
	l := acquire(t, s)
	pid := s.Pid()
	if pid == 0 || !alive(pid) {
		t.Fatalf("pid %d after Acquire", pid)
	}
	l.Release()
	waitFor(t, "two stderr lines in the log", func() bool { return strings.Count(logs.String(), "process stderr") == 2 })
	out := logs.String()
	want := fmt.Sprintf(`level=INFO msg="process stderr" test_server=tester pid=%d line="hello from %d with [redacted]"`, pid, pid)
	if !strings.Contains(out, want) || !strings.Contains(out, `line="second line"`) {
		t.Fatalf("log:\n%s\nwant a line %s", out, want)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Fatalf("the credential was logged:\n%s", out)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) || s.Pid() != 0 {
		t.Fatalf("process %d alive after Close", pid)
	}
	if _, err := s.Acquire(t.Context()); !errors.Is(err, procsup.ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
}

// A killed process is noticed and started again by the next Acquire.
func TestRestartAfterKill(t *testing.T) {
	s, logs := sh(t, `exec cat`, nil)
	l := acquire(t, s)
	first := s.Pid()
	l.Release()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the death noticed", func() bool { return s.Pid() == 0 })
	l = acquire(t, s)
	defer l.Release()
	second := s.Pid()
	if second == 0 || second == first || !alive(second) {
		t.Fatalf("after the kill: pid %d (was %d)", second, first)
	}
	if !strings.Contains(logs.String(), `msg="process exited" test_server=tester pid=`+strconv.Itoa(first)) ||
		!strings.Contains(logs.String(), "signal: killed") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// A process that keeps dying is started again at once the first time,
// then only after the backoff; a lease released in between (a call it
// served) ends the run of failures.
func TestBackoffAfterRepeatedDeaths(t *testing.T) {
	s, _ := sh(t, `exit 3`, func(c *procsup.Config[*pipeConn]) { c.MinBackoff = time.Hour })
	for i := range 2 {
		l, err := s.Acquire(t.Context())
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		waitFor(t, "the exit noticed", func() bool { return s.Pid() == 0 })
		l.Release() // after the death: no call was served
	}
	_, err := s.Acquire(t.Context())
	if !errors.Is(err, procsup.ErrBackoff) || !strings.Contains(err.Error(), "tester failed 2 times in a row") {
		t.Fatalf("third Acquire: %v, want ErrBackoff", err)
	}

	healthy, _ := sh(t, `exec cat`, func(c *procsup.Config[*pipeConn]) { c.MinBackoff = time.Hour })
	for i := range 3 {
		l, err := healthy.Acquire(t.Context())
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		l.Release()
		pid := healthy.Pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the death noticed", func() bool { return healthy.Pid() == 0 })
	}
}

// A start that fails counts too; waiting callers get its error.
func TestStartFailure(t *testing.T) {
	s, _ := sh(t, "", func(c *procsup.Config[*pipeConn]) {
		c.Path = "/nonexistent/server"
		c.MinBackoff = time.Hour
	})
	for i := range 2 {
		if _, err := s.Acquire(t.Context()); err == nil || errors.Is(err, procsup.ErrBackoff) || !strings.Contains(err.Error(), "start tester") {
			t.Fatalf("Acquire %d: %v", i+1, err)
		}
	}
	if _, err := s.Acquire(t.Context()); !errors.Is(err, procsup.ErrBackoff) {
		t.Fatalf("third Acquire: %v, want ErrBackoff", err)
	}
}

// An idle process is stopped, and started again when needed; a lease held
// keeps it.
func TestIdleStop(t *testing.T) {
	s, logs := sh(t, `exec cat`, func(c *procsup.Config[*pipeConn]) { c.Idle = 150 * time.Millisecond })
	l := acquire(t, s)
	pid := s.Pid()
	time.Sleep(300 * time.Millisecond)
	if s.Pid() != pid {
		t.Fatal("stopped while leased")
	}
	l.Release()
	waitFor(t, "the idle stop", func() bool { return s.Pid() == 0 && !alive(pid) })
	// The line is written once the process is gone, not before.
	waitFor(t, "the idle stop's log line:\n"+logs.String(), func() bool {
		return strings.Contains(logs.String(), `msg="process stopped" test_server=tester pid=`+strconv.Itoa(pid)+` why="idle for 150ms"`)
	})
	l = acquire(t, s)
	defer l.Release()
	if again := s.Pid(); again == 0 || again == pid {
		t.Fatalf("not started again: %d", again)
	}
}

// Fail stops the process; the next Acquire starts a new one.
func TestFail(t *testing.T) {
	s, _ := sh(t, `exec cat`, nil)
	l := acquire(t, s)
	pid := s.Pid()
	l.Fail(errors.New("broken pipe"))
	waitFor(t, "the stop", func() bool { return !alive(pid) })
	l = acquire(t, s)
	defer l.Release()
	if again := s.Pid(); again == 0 || again == pid {
		t.Fatalf("not started again: %d", again)
	}
}

var childRE = regexp.MustCompile(`child ([0-9]+)`)

// The process's own children die with it.
func TestCloseKillsTheGroup(t *testing.T) {
	s, logs := sh(t, `sleep 60 & echo "child $!" >&2; exec cat`, nil)
	l := acquire(t, s)
	l.Release()
	waitFor(t, "the child's pid", func() bool { return childRE.MatchString(logs.String()) })
	child, _ := strconv.Atoi(childRE.FindStringSubmatch(logs.String())[1])
	if !alive(child) {
		t.Fatalf("child %d not running", child)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child's death", func() bool { return !alive(child) })
}

// A process that ignores its closed input is killed after StopGrace.
func TestStubbornProcess(t *testing.T) {
	s, _ := sh(t, `trap "" TERM; while :; do sleep 0.05; done`, func(c *procsup.Config[*pipeConn]) { c.StopGrace = 200 * time.Millisecond })
	l := acquire(t, s)
	pid := s.Pid()
	l.Release()
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if alive(pid) {
		t.Fatalf("process %d alive after Close", pid)
	}
}

// Concurrent callers share one start.
func TestConcurrentAcquire(t *testing.T) {
	var starts sync.Map
	s, _ := sh(t, `sleep 0.2; exec cat`, func(c *procsup.Config[*pipeConn]) {
		c.Start = func(ctx context.Context, cmd *exec.Cmd) (*pipeConn, error) {
			c, err := startPipe(ctx, cmd)
			if err == nil {
				starts.Store(cmd.Process.Pid, true)
			}
			return c, err
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			l, err := s.Acquire(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			l.Release()
		})
	}
	wg.Wait()
	n := 0
	starts.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d processes started for concurrent callers, want 1", n)
	}
}

func TestInheritedEnv(t *testing.T) {
	t.Setenv("INFINITY_TEST_SECRET_KEY", "x")
	t.Setenv("PATH", "/bin")
	env := procsup.InheritedEnv()
	joined := strings.Join(env, "\n")
	if !strings.Contains(joined, "PATH=/bin") || strings.Contains(joined, "INFINITY_TEST_SECRET_KEY") {
		t.Fatalf("env = %v", env)
	}
}
