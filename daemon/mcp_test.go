//go:build unix

package daemon_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

// TestMain lets the test binary run as a local MCP server (mcptest's stdio
// server) when a test's agent file starts it so.
func TestMain(m *testing.M) {
	mcptest.ServeStdioIfAsked()
	os.Exit(m.Run())
}

// mcpScript calls the MCP tools named by the first message.
const mcpScript = `{"rules": [
  {"when": {"depth": 0, "last": "user", "last_text": "add"}, "reply": {"calls": [{"name": "add", "args": {"a": 2, "b": 3}}]}},
  {"when": {"depth": 0, "last_tool": "add"}, "reply": {"text": "sum done"}},
  {"when": {"depth": 0, "last": "user", "last_text": "slow"}, "reply": {"calls": [{"name": "slow", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "slow"}, "reply": {"text": "slow done"}}
]}`

// secretsNowhere fails if secret is in the log or in any file of home.
func secretsNowhere(t *testing.T, secret, logs, home string) {
	t.Helper()
	if strings.Contains(logs, secret) {
		t.Errorf("the secret is in the daemon's log:\n%s", logs)
	}
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a lock or socket
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the secret is in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A remote MCP server that wants a bearer token, which the agent file
// takes from the environment: calls work; the token is nowhere in the
// log, the history or the daemon's files; without the variable the
// registration fails naming the file, the header and the variable; with
// a wrong token it fails saying the server refused the credentials.
func TestMCPHeaderFromEnv(t *testing.T) {
	const token = "s3cret-mcp-token-42"
	srv := mcptest.Start(mcptest.Options{Headers: map[string]string{"Authorization": "Bearer " + token}})
	t.Cleanup(srv.Close)
	home := t.TempDir()
	var logs syncBuffer
	_, c := startDaemonWith(t, daemon.Options{Home: home, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	yaml := func(name string) string {
		return fmt.Sprintf(`name: %s
model: {provider: scripted, script: s.json}
tools:
  mcp:
    - url: %s
      name: vault
      headers:
        Authorization: {env: INFINITY_TEST_MCP_TOKEN, prefix: "Bearer "}
`, name, srv.URL)
	}

	t.Setenv("INFINITY_TEST_MCP_TOKEN", token)
	_, start := agentStarter(t, c, "vault.yaml", yaml("vaulted"), mcpScript)
	root := start("add two numbers")
	h := waitItems(t, c, root, "the sum", has("add {", "5", "sum done"))
	if strings.Contains(h, token) {
		t.Errorf("the token is in the history:\n%s", h)
	}

	os.Unsetenv("INFINITY_TEST_MCP_TOKEN")
	_, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "vault.yaml", AgentSource: daemon.AgentSource{YAML: yaml("unset"), Script: mcpScript}})
	wantCode(t, err, 400, daemon.CodeBadRequest)
	msg := err.Error()
	for _, want := range []string{"agent.yaml:8:9: tools.mcp[0].headers.Authorization: environment variable INFINITY_TEST_MCP_TOKEN is not set", "takes these values when it loads the agent"} {
		if !strings.Contains(msg, want) {
			t.Errorf("registration without the variable: %q lacks %q", msg, want)
		}
	}

	t.Setenv("INFINITY_TEST_MCP_TOKEN", "wrong-token")
	_, err = c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "vault.yaml", AgentSource: daemon.AgentSource{YAML: yaml("wrong"), Script: mcpScript}})
	wantCode(t, err, 502, daemon.CodeToolUnreachable)
	if msg := err.Error(); !strings.Contains(msg, "tools.mcp[0]: connect to MCP server "+srv.URL+": it answered HTTP 401 Unauthorized") || strings.Contains(msg, "wrong-token") {
		t.Errorf("registration with a wrong token: %q", msg)
	}
	secretsNowhere(t, token, logs.String(), home)
}

// A remote MCP server's call timeout from the agent file: a slower tool is
// an error result that names it.
func TestMCPCallTimeout(t *testing.T) {
	srv := mcptest.Start(mcptest.Options{Slow: 10 * time.Second})
	t.Cleanup(srv.Close)
	_, c := startDaemon(t, t.TempDir())
	_, start := agentStarter(t, c, "slow.yaml", fmt.Sprintf(`name: slowpoke
model: {provider: scripted, script: s.json}
tools:
  mcp:
    - {url: %q, name: sloth, timeout: {call: 1s}}
`, srv.URL), mcpScript)
	begun := time.Now()
	root := start("slow please")
	waitItems(t, c, root, "the timeout", has("did not answer within 1s (the call timeout of MCP server sloth (", "slow done"))
	if d := time.Since(begun); d > 8*time.Second {
		t.Errorf("took %v", d)
	}
}

var readyRE = regexp.MustCompile(`mcp_server=adder pid=([0-9]+) line="mcptest stdio server [0-9]+ ready"`)

// A local MCP server in the daemon: not started when the agent is
// registered, started by the first call, its standard error in the daemon's
// log with its name (a credential passed to it redacted), started again
// after it was killed, stopped with the daemon.
func TestLocalMCPServer(t *testing.T) {
	const secret = "child-secret-0451"
	t.Setenv("INFINITY_TEST_CHILD_SECRET", secret)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil)) // the daemon hands it to local servers

	path, args, env, err := mcptest.StdioCommand(mcptest.StdioOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "name: local\nmodel: {provider: scripted, script: s.json}\ntools:\n  mcp:\n    - command: %q\n      name: adder\n      args: [%s]\n      env:\n", path, strings.Join(args, ", "))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&y, "        %s: %q\n", k, v)
	}
	y.WriteString("        MCPTEST_STDIO_SAY: {env: INFINITY_TEST_CHILD_SECRET, prefix: \"my secret is \"}\n")

	home := t.TempDir()
	d, c := startDaemonWith(t, daemon.Options{Home: home, Logger: logger})
	_, start := agentStarter(t, c, "local.yaml", y.String(), mcpScript)
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(logs.String(), "process started") {
		t.Fatalf("the local server started before it was needed:\n%s", logs.String())
	}

	root := start("add two numbers")
	waitItems(t, c, root, "the sum", has("add {", "5", "sum done"))
	eventually(t, "the server's ready line in the log", func() bool { return readyRE.MatchString(logs.String()) })
	out := logs.String()
	if !strings.Contains(out, `msg="process started" mcp_server=adder`) || !strings.Contains(out, `mcp_server=adder pid=`) ||
		!strings.Contains(out, `line="my secret is [redacted]"`) {
		t.Errorf("log:\n%s", out)
	}
	pid, _ := strconv.Atoi(readyRE.FindStringSubmatch(out)[1])

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the death in the log", func() bool {
		return strings.Contains(logs.String(), `msg="process exited" mcp_server=adder pid=`+strconv.Itoa(pid))
	})
	root = start("add again")
	waitItems(t, c, root, "the sum after the kill", has("add {", "5", "sum done"))
	matches := readyRE.FindAllStringSubmatch(logs.String(), -1)
	if len(matches) != 2 || matches[1][1] == matches[0][1] {
		t.Fatalf("want a second server process; log:\n%s", logs.String())
	}
	second, _ := strconv.Atoi(matches[1][1])

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if processAlive(second) {
		t.Fatalf("the local server %d outlived the daemon", second)
	}
	secretsNowhere(t, secret, logs.String(), home)
}

// A local server whose program is not there, or whose variable is not
// set, fails the registration naming the entry.
func TestLocalMCPServerErrors(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	register := func(yaml string) error {
		_, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "local.yaml", AgentSource: daemon.AgentSource{YAML: yaml, Script: mcpScript}})
		return err
	}
	err := register("name: nowhere\nmodel: {provider: scripted, script: s.json}\ntools:\n  mcp:\n    - command: infinity-no-such-server\n")
	wantCode(t, err, 400, daemon.CodeBadRequest)
	if !strings.Contains(err.Error(), "agent.yaml:5:16: tools.mcp[0].command: infinity-no-such-server is not found in the daemon's PATH") {
		t.Errorf("missing program: %v", err)
	}
	os.Unsetenv("INFINITY_TEST_UNSET")
	err = register("name: unset\nmodel: {provider: scripted, script: s.json}\ntools:\n  mcp:\n    - command: sh\n      env: {TOKEN: {env: INFINITY_TEST_UNSET}}\n")
	wantCode(t, err, 400, daemon.CodeBadRequest)
	if !strings.Contains(err.Error(), "tools.mcp[0].env.TOKEN: environment variable INFINITY_TEST_UNSET is not set") {
		t.Errorf("missing variable: %v", err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never came", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (is neither gone nor a zombie).
func processAlive(pid int) bool {
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
