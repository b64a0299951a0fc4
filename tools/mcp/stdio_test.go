//go:build unix

package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/syncbuf"
	"github.com/infinity-runtime/infinity/tools/mcp"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

// TestMain lets the test binary run as a local MCP server (mcptest's stdio
// server) when a test starts it so.
func TestMain(m *testing.M) {
	mcptest.ServeStdioIfAsked()
	os.Exit(m.Run())
}

// stdioCommand is the test binary as a local MCP server.
func stdioCommand(t *testing.T, o mcptest.StdioOptions) mcp.Command {
	t.Helper()
	path, args, env, err := mcptest.StdioCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	return mcp.Command{Path: path, Args: args, Env: env}
}

// connectStdio starts a local server named "local"; its log goes to the
// returned buffer.
func connectStdio(t *testing.T, c mcp.Command, opts ...mcp.Option) (*mcp.Server, *syncbuf.Buffer) {
	t.Helper()
	var logs syncbuf.Buffer
	opts = append([]mcp.Option{mcp.WithName("local"), mcp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		mcp.WithConnectTimeout(20 * time.Second)}, opts...)
	s, err := mcp.ConnectCommand(context.Background(), c, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, &logs
}

func invoke(t *testing.T, s *mcp.Server, name, args string) *infinity.ToolResult {
	t.Helper()
	res, err := find(t, s, name).Invoke(context.Background(), infinity.ToolEnv{}, infinity.ToolCall{ID: "c", Name: name, Args: json.RawMessage(args)})
	if err != nil || res == nil {
		t.Fatalf("%s: %v, %v", name, res, err)
	}
	return res
}

func alive(pid int) bool {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A local server: its tools, its environment (only what it was given and
// a few inherited variables), its standard error in the log with its name
// and credentials redacted; Close stops it.
func TestStdioServer(t *testing.T) {
	t.Setenv("INFINITY_TEST_DAEMON_SECRET", "not for children")
	c := stdioCommand(t, mcptest.StdioOptions{Say: "token is tok-123456"})
	c.Env = append(c.Env, "FOO=bar")
	c.Redact = []string{"tok-123456"}
	s, logs := connectStdio(t, c)
	if got, want := names(s.Tools()), []string{"add", "crash", "fail", "getenv", "image", "pid", "say", "slow"}; !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}
	if !strings.Contains(s.Name(), "local (") {
		t.Errorf("name = %q", s.Name())
	}
	if res := invoke(t, s, "add", `{"a":2,"b":3}`); res.IsError || res.Text() != "5" {
		t.Fatalf("add = %+v", res)
	}
	for name, want := range map[string]string{"FOO": "bar", "INFINITY_TEST_DAEMON_SECRET": "(unset)", "PATH": os.Getenv("PATH")} {
		if res := invoke(t, s, "getenv", `{"name":"`+name+`"}`); res.Text() != want {
			t.Errorf("getenv %s = %q, want %q", name, res.Text(), want)
		}
	}
	pid := mcp.Pid(s)
	invoke(t, s, "say", `{"text":"hello from the tool"}`)
	eventually(t, "stderr lines in the log", func() bool { return strings.Contains(logs.String(), "hello from the tool") })
	out := logs.String()
	for _, want := range []string{
		fmt.Sprintf(`msg="process stderr" mcp_server=local pid=%d line="mcptest stdio server %d ready"`, pid, pid),
		`mcp_server=local pid=` + strconv.Itoa(pid) + ` line="token is [redacted]"`,
		`line="hello from the tool"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tok-123456") {
		t.Errorf("a credential was logged:\n%s", out)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("server %d alive after Close", pid)
	}
	if res := invoke(t, s, "add", `{"a":1,"b":1}`); !res.IsError {
		t.Fatalf("call after Close = %+v", res)
	}
}

// An idle local server is stopped; the next call starts it again.
func TestStdioIdleStop(t *testing.T) {
	s, logs := connectStdio(t, stdioCommand(t, mcptest.StdioOptions{}), mcp.WithIdle(300*time.Millisecond))
	pid := mcp.Pid(s)
	if pid == 0 {
		t.Fatal("not running after connect")
	}
	stopped := `msg="process stopped" mcp_server=local pid=` + strconv.Itoa(pid) + ` why="idle for 300ms"`
	eventually(t, "the idle stop", func() bool { return strings.Contains(logs.String(), stopped) })
	if mcp.Pid(s) != 0 || alive(pid) {
		t.Fatalf("server %d alive after its idle stop", pid)
	}
	if res := invoke(t, s, "add", `{"a":2,"b":2}`); res.IsError || res.Text() != "4" {
		t.Fatalf("add after the idle stop = %+v", res)
	}
	if again := mcp.Pid(s); again == 0 || again == pid {
		t.Fatalf("pid after the restart = %d (was %d)", again, pid)
	}
}

// A local server that was killed is started again by the next call; one
// that dies during a call fails that call, and the next works (a call
// answered in between ends the run of failures: no backoff).
func TestStdioRestart(t *testing.T) {
	s, logs := connectStdio(t, stdioCommand(t, mcptest.StdioOptions{}))
	first := mcp.Pid(s)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the death noticed", func() bool { return mcp.Pid(s) == 0 })
	res := invoke(t, s, "pid", `{}`)
	if res.IsError || res.Text() == strconv.Itoa(first) {
		t.Fatalf("pid after the kill = %+v (was %d)", res, first)
	}
	if !strings.Contains(logs.String(), `msg="process exited" mcp_server=local pid=`+strconv.Itoa(first)) {
		t.Errorf("log:\n%s", logs.String())
	}

	res = invoke(t, s, "crash", `{}`)
	if !res.IsError || !strings.Contains(res.Text(), "the next call reconnects") {
		t.Fatalf("crash = %+v", res)
	}
	if res := invoke(t, s, "add", `{"a":1,"b":2}`); res.IsError || res.Text() != "3" {
		t.Fatalf("add after the crash = %+v", res)
	}
}

// A local server that keeps dying backs off: the call after its second
// death in a row is refused with an error that says so.
func TestStdioBackoff(t *testing.T) {
	s, _ := connectStdio(t, stdioCommand(t, mcptest.StdioOptions{}), mcp.WithBackoff(time.Hour, time.Hour))
	for range 2 {
		if res := invoke(t, s, "crash", `{}`); !res.IsError {
			t.Fatalf("crash = %+v", res)
		}
		eventually(t, "the death noticed", func() bool { return mcp.Pid(s) == 0 })
	}
	res := invoke(t, s, "add", `{"a":1,"b":2}`)
	if !res.IsError || !strings.Contains(res.Text(), "failed 2 times in a row and is started again in") {
		t.Fatalf("add while backing off = %+v", res)
	}
}

// A call that takes longer than the server's call timeout is an error
// result naming the timeout; a shorter deadline of the caller's is named
// as the runtime's.
func TestCallTimeout(t *testing.T) {
	s, _ := connectStdio(t, stdioCommand(t, mcptest.StdioOptions{Slow: 5 * time.Second}), mcp.WithTimeout(300*time.Millisecond))
	start := time.Now()
	res := invoke(t, s, "slow", `{}`)
	if !res.IsError || !strings.Contains(res.Text(), "did not answer within 300ms (the call timeout of MCP server local (") {
		t.Fatalf("slow = %+v", res)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, _ = find(t, s, "slow").Invoke(ctx, infinity.ToolEnv{}, infinity.ToolCall{ID: "c", Name: "slow", Args: json.RawMessage(`{}`)})
	if !res.IsError || !strings.Contains(res.Text(), "did not answer within 200ms (the runtime's limit on one tool call)") {
		t.Fatalf("slow under a shorter deadline = %+v", res)
	}
	// The server is still usable.
	if res := invoke(t, s, "add", `{"a":1,"b":1}`); res.IsError {
		t.Fatalf("add after the timeouts = %+v", res)
	}
}

func TestStdioCommandNotFound(t *testing.T) {
	_, err := mcp.ConnectCommand(context.Background(), mcp.Command{Path: "/nonexistent/server"})
	if err == nil || !strings.Contains(err.Error(), "connect to MCP server /nonexistent/server") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

// A server that wants credentials: without them, the connect error says
// they were refused; with them, calls work.
func TestHeaders(t *testing.T) {
	srv := mcptest.Start(mcptest.Options{Headers: map[string]string{"Authorization": "Bearer sesame"}})
	defer srv.Close()
	_, err := mcp.Connect(context.Background(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: the credentials it wants (request headers) are missing or wrong") {
		t.Fatalf("without the header: %v", err)
	}
	_, err = mcp.Connect(context.Background(), srv.URL, mcp.WithHeaders(map[string]string{"Authorization": "Bearer wrong"}))
	if err == nil || strings.Contains(err.Error(), "wrong\"") || strings.Contains(err.Error(), "Bearer") {
		t.Fatalf("with a wrong header: %v", err)
	}
	s := connect(t, srv.URL, mcp.WithHeaders(map[string]string{"Authorization": "Bearer sesame"}), mcp.WithName("vault"))
	if s.Name() != "vault ("+srv.URL+")" {
		t.Errorf("name = %q", s.Name())
	}
	if res := invoke(t, s, "add", `{"a":1,"b":2}`); res.IsError || res.Text() != "3" {
		t.Fatalf("add = %+v", res)
	}
}

// A source starts a local server when its tools are first asked for, and
// refuses tools that collide with servers connected beside it.
func TestSourceStartsLocalServerLazily(t *testing.T) {
	c := stdioCommand(t, mcptest.StdioOptions{})
	var logs syncbuf.Buffer
	src := mcp.NewEndpointSource([]mcp.Endpoint{{Command: &c, Options: []mcp.Option{mcp.WithName("lazy")}}},
		mcp.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer src.Close()
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(logs.String(), "process started") {
		t.Fatal("started before its tools were asked for")
	}
	tools, err := src.Tools(context.Background(), "t1")
	if err != nil || len(tools) != 8 || !strings.Contains(logs.String(), `msg="process started" mcp_server=lazy`) {
		t.Fatalf("Tools = %v, %v; log:\n%s", names(tools), err, logs.String())
	}

	url, stop := mcptest.New()
	defer stop()
	remote := connect(t, url)
	src2 := mcp.NewEndpointSource([]mcp.Endpoint{{Command: &c}}, mcp.WithLogger(slog.New(slog.DiscardHandler))).Beside(remote)
	defer src2.Close()
	if tools, err := src2.Tools(context.Background(), "t1"); !errors.Is(err, mcp.ErrCollision) || tools != nil {
		t.Fatalf("Tools beside a colliding server = %v, %v", names(tools), err)
	}
}
