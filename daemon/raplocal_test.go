//go:build unix

package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/rapserver"
)

// rapChildEnv, set to 1, makes the test binary a local RAP tool server
// (serveRAPChild) instead of running the tests.
const rapChildEnv = "INFINITY_TEST_RAP_CHILD"

// daemonOnlyEnv is set in the daemon's environment and must not reach a
// local server.
const daemonOnlyEnv = "INFINITY_TEST_DAEMON_ONLY"

func init() {
	if os.Getenv(rapChildEnv) == "1" {
		os.Exit(serveRAPChild())
	}
}

// serveRAPChild serves, as `infinity tools serve --port 0` does, a RAP
// tool server on a free port it announces with {"port":N} on its standard
// output. Its one tool, whoami, answers by callback with its process id,
// the value of daemonOnlyEnv and of TOOL_GREETING.
func serveRAPChild() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &rapserver.Server{Name: "kid", Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Tools: []rapserver.Tool{{
		Name:        "whoami",
		Description: "Says which process answers.",
		Run: func(ctx context.Context, c *rapserver.Call) error {
			leak, ok := os.LookupEnv(daemonOnlyEnv)
			if !ok {
				leak = "(unset)"
			}
			return c.Result(ctx, fmt.Sprintf("pid %d leak %s greeting %s", os.Getpid(), leak, os.Getenv("TOOL_GREETING")))
		},
	}}}
	fmt.Fprintf(os.Stderr, "rap child %d ready\n", os.Getpid())
	fmt.Printf("{\"port\":%d}\n", ln.Addr().(*net.TCPAddr).Port)
	_ = http.Serve(ln, srv)
	return 0
}

const whoamiScript = `{"rules": [
  {"when": {"depth": 0, "last": "user", "last_text": "who"}, "reply": {"calls": [{"name": "whoami", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "whoami"}, "reply": {"text": "asked"}}
]}`

var answerRE = regexp.MustCompile(`pid ([0-9]+) leak (\S+) greeting (\S*)`)

// A local RAP server in the daemon: not started when the agent is
// registered; started by the session's discovery with only a few of the
// daemon's variables plus env; its asynchronous tool's result comes back
// by callback; its standard error is in the daemon's log with its name;
// killed, it is started again by the next call of the same session (on a
// new port); the daemon's Close stops it.
func TestLocalRAPServer(t *testing.T) {
	t.Setenv(daemonOnlyEnv, "daemon-secret")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	home := t.TempDir()
	d, c := startDaemonWith(t, daemon.Options{Home: home, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, start := agentStarter(t, c, "localrap.yaml", fmt.Sprintf(`name: localrap
model: {provider: scripted, script: s.json}
tools:
  rap:
    - command: %q
      name: kid
      env:
        %s: "1"
        GORACE: atexit_sleep_ms=0
        TOOL_GREETING: hello
      timeout: {connect: 20s}
`, exe, rapChildEnv), whoamiScript)
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(logs.String(), "process started") {
		t.Fatalf("the local server started before it was needed:\n%s", logs.String())
	}

	root := start("who answers?")
	h := waitItems(t, c, root, "the answer", has("pid ", "asked"))
	m := answerRE.FindStringSubmatch(h)
	if m == nil || m[2] != "(unset)" || m[3] != "hello" {
		t.Fatalf("answer %q in\n%s", m, h)
	}
	first, _ := strconv.Atoi(m[1])
	eventually(t, "the server's ready line in the log", func() bool {
		return strings.Contains(logs.String(), fmt.Sprintf(`rap_server=kid pid=%d line="rap child %d ready"`, first, first))
	})
	if out := logs.String(); !strings.Contains(out, `msg="process started" rap_server=kid pid=`+m[1]) {
		t.Errorf("log:\n%s", out)
	}

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the death in the log", func() bool {
		return strings.Contains(logs.String(), `msg="process exited" rap_server=kid pid=`+m[1])
	})
	if _, err := c.Send(t.Context(), root, daemon.MessageRequest{Text: "who answers now?"}); err != nil {
		t.Fatal(err)
	}
	h = waitItems(t, c, root, "the second answer", func(h string) bool { return strings.Count(h, "asked") == 2 })
	all := answerRE.FindAllStringSubmatch(h, -1)
	if len(all) != 2 || all[1][1] == m[1] {
		t.Fatalf("want an answer from a second process:\n%s", h)
	}
	second, _ := strconv.Atoi(all[1][1])
	if !processAlive(second) {
		t.Fatalf("the second server %d is not running", second)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if processAlive(second) {
		t.Fatalf("the local server %d outlived the daemon", second)
	}
	secretsNowhere(t, "daemon-secret", logs.String(), home)
}

// A RAP server's call timeout from the agent file bounds each try of an
// invocation: a server that never acknowledges gets the call an error
// result naming the timeout and the server.
func TestRAPCallTimeout(t *testing.T) {
	mux := http.NewServeMux()
	var base string
	mux.HandleFunc("GET /.well-known/rap-toolset", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"name":"slow","endpoint":%q,"tools":[{"name":"whoami","description":"Never acknowledged","inputSchema":{"type":"object"}}]}`, base+"/invoke")
	})
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then a request given up on ends the handler
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL
	_, c := startDaemon(t, t.TempDir())
	_, start := agentStarter(t, c, "sloth.yaml", fmt.Sprintf(`name: sloth
model: {provider: scripted, script: s.json}
tools:
  rap:
    - {url: %q, name: sloth, timeout: {call: 1s}}
`, srv.URL), whoamiScript)
	begun := time.Now()
	root := start("who answers?")
	waitItems(t, c, root, "the timeout", has("could not be started", "no answer within 1s (the call timeout of RAP server sloth)", "asked"))
	if d := time.Since(begun); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
}

// A local RAP server whose program is not there fails the registration
// naming the entry.
func TestLocalRAPServerErrors(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	_, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "local.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: nowhere\nmodel: {provider: scripted, script: s.json}\ntools:\n  rap:\n    - command: infinity-no-such-server\n", Script: whoamiScript}})
	wantCode(t, err, 400, daemon.CodeBadRequest)
	if !strings.Contains(err.Error(), "agent.yaml:5:16: tools.rap[0].command: infinity-no-such-server is not found in the daemon's PATH") {
		t.Errorf("missing program: %v", err)
	}
}
