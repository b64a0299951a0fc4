//go:build unix

package rap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/syncbuf"
)

// childEnv makes the test binary a local tool server (childServe); its
// value is the mode.
const childEnv = "RAP_TEST_LOCAL_SERVER"

func init() {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childServe(mode))
	}
}

// childServe runs a small RAP tool server with one tool, whoami, whose
// result (sent by callback) is "pid N". Modes: announce (a free port,
// printed as {"port":N} after a line of chatter), port (INFINITY_PORT,
// which its one argument must name too), mute (never ready), exit (exits
// with status 3). It writes "child PID ready" and every notification to
// standard error.
func childServe(mode string) int {
	var ln net.Listener
	var err error
	switch mode {
	case "announce":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "port":
		port := os.Getenv(PortEnv)
		if len(os.Args) != 2 || os.Args[1] != "-addr=127.0.0.1:"+port {
			fmt.Fprintf(os.Stderr, "want -addr=127.0.0.1:%s, got %q\n", port, os.Args[1:])
			return 2
		}
		ln, err = net.Listen("tcp", "127.0.0.1:"+port)
	case "mute":
		time.Sleep(time.Minute)
		return 0
	default:
		return 3
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+WellKnownPath, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"name":"kid","endpoint":"http://%s/invoke","tools":[{"name":"whoami","description":"Its pid","inputSchema":{"type":"object"}}]}`, r.Host)
	})
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		var inv Invocation
		if err := json.NewDecoder(r.Body).Decode(&inv); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		go func() {
			b, _ := json.Marshal(map[string]any{"type": "tool_result", "group_id": inv.GroupID, "id": inv.ID, "text": fmt.Sprintf("pid %d", os.Getpid())})
			if resp, err := http.Post(inv.CallbackURL, "application/json", bytes.NewReader(b)); err == nil {
				resp.Body.Close()
			}
		}()
	})
	mux.HandleFunc("POST /close_thread", func(w http.ResponseWriter, r *http.Request) {
		var n CloseThread
		_ = json.NewDecoder(r.Body).Decode(&n)
		fmt.Fprintf(os.Stderr, "closed %s\n", n.ThreadID)
	})
	fmt.Fprintf(os.Stderr, "child %d ready\n", os.Getpid())
	if mode == "announce" {
		fmt.Println("starting up")
		fmt.Printf("{\"port\":%d}\n", ln.Addr().(*net.TCPAddr).Port)
	}
	_ = http.Serve(ln, mux)
	return 0
}

// childCommand is a Command that runs the test binary as a local server.
func childCommand(t *testing.T, mode string) *Command {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A test binary built with -race waits a second at exit by default.
	return &Command{Path: exe, Env: []string{childEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, MinBackoff: 10 * time.Millisecond}
}

// whoami invokes the tool and returns the pid its result names.
func whoami(t *testing.T, rt *runtime, tool *Tool, call string) int {
	t.Helper()
	if _, err := tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: call}); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var pid int
	eventually(t, "the result of "+call, func() bool {
		for _, m := range rt.sender.sent() {
			if m.Content.ID == call {
				pid, _ = strconv.Atoi(strings.TrimPrefix(infinity.PartsText(m.Content.Parts), "pid "))
				return true
			}
		}
		return false
	})
	return pid
}

// A local server is started when first needed, announces its port, serves
// its manifest and invocations (the result comes back by callback), logs
// with its name, is started again after it died (on another port: the
// cached tool follows it), gets notifications, and stops with Close.
func TestLocalServer(t *testing.T) {
	var logs syncbuf.Buffer
	rt := newRuntime(t)
	rt.cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
	rt.cfg.Entries = []Server{{Name: "kid", Command: childCommand(t, "announce"), ConnectTimeout: 20 * time.Second}}
	l := NewLoader(rt.cfg)
	t.Cleanup(func() { _ = l.Close() })
	local := l.servers[0].local
	if local.pid() != 0 || l.Servers()[0] != "kid" {
		t.Fatalf("started before it was needed (pid %d), or keyed %q", local.pid(), l.Servers()[0])
	}

	set, err := l.Load(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	tool, ok := set.Tool("whoami")
	first := local.pid()
	if !ok || first == 0 {
		t.Fatalf("tools %v, pid %d", names(set), first)
	}
	if _, ok := set.Manifest("kid"); !ok {
		t.Fatal("no manifest under the server's name")
	}
	if tool.CallTimeout() <= 20*time.Second {
		t.Errorf("CallTimeout %v leaves no room for a start", tool.CallTimeout())
	}
	if pid := whoami(t, rt, tool, "c1"); pid != first {
		t.Fatalf("answered by %d, want %d", pid, first)
	}
	eventually(t, "the ready line in the log", func() bool {
		return strings.Contains(logs.String(), fmt.Sprintf(`rap_server=kid pid=%d line="child %d ready"`, first, first))
	})

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the death noticed", func() bool { return local.pid() == 0 })
	second := whoami(t, rt, tool, "c2")
	if second == 0 || second == first || local.pid() != second {
		t.Fatalf("after the kill: answered by %d (first %d, running %d)", second, first, local.pid())
	}

	n := &Notifier{Loader: l, Log: quiet}
	n.ThreadClosed(context.Background(), "th_gone")
	n.Wait()
	eventually(t, "the notification", func() bool {
		return strings.Contains(logs.String(), `rap_server=kid pid=`+strconv.Itoa(second)+` line="closed th_gone"`)
	})

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(second, 0) == nil {
		t.Fatalf("the server %d outlived Close", second)
	}
	if _, err := tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c3"}); err == nil ||
		!strings.Contains(err.Error(), "RAP server kid could not be started") {
		t.Fatalf("after Close: %v", err)
	}
}

// A local server given a port gets it in its environment and in place of
// {port} in its arguments, and is ready once the port accepts connections.
func TestLocalServerPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	rt := newRuntime(t)
	c := childCommand(t, "port")
	c.Port, c.Args = port, []string{"-addr=127.0.0.1:{port}"}
	rt.cfg.Entries = []Server{{Name: "fixed", Command: c, ConnectTimeout: 20 * time.Second}}
	l := NewLoader(rt.cfg)
	t.Cleanup(func() { _ = l.Close() })
	set, err := l.Load(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	tool, ok := set.Tool("whoami")
	if !ok || tool.Endpoint() != fmt.Sprintf("http://127.0.0.1:%d/invoke", port) {
		t.Fatalf("tools %v", names(set))
	}
	if pid := whoami(t, rt, tool, "c1"); pid != l.servers[0].local.pid() {
		t.Fatalf("answered by %d", pid)
	}
}

// A local server that is never ready, or exits first, fails the load
// saying why; the timeout is named.
func TestLocalServerStartFails(t *testing.T) {
	rt := newRuntime(t)
	rt.cfg.Entries = []Server{
		{Name: "mute", Command: childCommand(t, "mute"), ConnectTimeout: 300 * time.Millisecond},
		{Name: "quitter", Command: childCommand(t, "exit"), ConnectTimeout: 20 * time.Second},
	}
	l := NewLoader(rt.cfg)
	t.Cleanup(func() { _ = l.Close() })
	_, err := l.Load(context.Background(), "root")
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrDiscovery) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		`rap toolset mute: start mute: it did not announce its port ({"port":N} on its standard output) within 300ms (the connect timeout of RAP server mute)`,
		`rap toolset quitter: start quitter: it exited (exit status 3) before announcing its port`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err lacks %q:\n%v", want, err)
		}
	}
	for _, s := range l.servers {
		if s.local.pid() != 0 {
			t.Errorf("%s runs after failing to start", s.name)
		}
	}
}

// Two local servers of one name are told apart.
func TestLocalServerNames(t *testing.T) {
	rt := newRuntime(t)
	rt.cfg.Entries = []Server{{Command: &Command{Path: "srv"}}, {Command: &Command{Path: "sub/srv"}}, {Name: "srv-2", Command: &Command{Path: "x"}}}
	l := NewLoader(rt.cfg)
	if got := strings.Join(l.Servers(), " "); got != "srv srv-2 srv-2-2" {
		t.Fatalf("servers %s", got)
	}
}
