package rap

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// A server's connect timeout bounds its manifest fetch; the error names
// the timeout and the server.
func TestConnectTimeout(t *testing.T) {
	hang := hangingServer(t)
	ok := raptest.New(t)
	rt := newRuntime(t)
	rt.cfg.Entries = []Server{{URL: hang, Name: "slowpoke", ConnectTimeout: 100 * time.Millisecond}, {URL: ok.URL}}
	begun := time.Now()
	set, err := NewLoader(rt.cfg).Load(context.Background(), "root")
	if d := time.Since(begun); d > 3*time.Second {
		t.Fatalf("the fetch took %v", d)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrDiscovery) ||
		!strings.Contains(err.Error(), "rap toolset slowpoke at "+hang+WellKnownPath+": no answer within 100ms (the connect timeout of RAP server slowpoke)") {
		t.Fatalf("err = %v", err)
	}
	if len(set.Tools()) != 4 {
		t.Fatalf("the other server's tools: %v", names(set))
	}

	// The caller's own deadline is not the server's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rt.cfg.Entries = []Server{{URL: hang, ConnectTimeout: time.Minute}}
	if _, err := NewLoader(rt.cfg).Load(ctx, "root"); errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: err = %v", err)
	}
}

// A server's call timeout bounds each try of an invocation, instead of
// Retry.Timeout; the error names the timeout and the server, and the tool
// tells the engine how long a whole dispatch may take.
func TestCallTimeout(t *testing.T) {
	hang := hangingServer(t)
	srv := raptest.New(t)
	rt := newRuntime(t)
	cc := &countingClient{next: http.DefaultClient}
	rt.cfg.Client = cc
	rt.cfg.Retry = Retry{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond, Timeout: time.Hour}
	rt.cfg.Entries = []Server{{URL: srv.URL, Name: "sloth", CallTimeout: 50 * time.Millisecond}}
	tool := loadTool(t, rt.cfg, "slow_echo")
	tool.endpoint = hang
	cc.n.Store(0)
	begun := time.Now()
	_, err := tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c1"})
	if d := time.Since(begun); d > 3*time.Second {
		t.Fatalf("the dispatch took %v", d)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, infinity.ErrRetryable) || cc.n.Load() != 3 ||
		!strings.Contains(err.Error(), "no answer within 50ms (the call timeout of RAP server sloth)") {
		t.Fatalf("err = %v, %d tries", err, cc.n.Load())
	}
	if got, want := tool.CallTimeout(), 3*50*time.Millisecond+time.Millisecond+2*time.Millisecond; got != want {
		t.Errorf("CallTimeout = %v, want %v", got, want)
	}

	// Without a call timeout of its own, Retry.Timeout bounds a try, and
	// the engine's own bound applies to the dispatch.
	rt.cfg.Retry.Timeout = 30 * time.Millisecond
	rt.cfg.Entries = []Server{{URL: srv.URL, Name: "plain"}}
	tool = loadTool(t, rt.cfg, "slow_echo")
	tool.endpoint = hang
	_, err = tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c2"})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "no answer within 30ms (the call timeout of RAP server plain)") {
		t.Fatalf("default try timeout: err = %v", err)
	}
	if tool.CallTimeout() != 0 {
		t.Errorf("CallTimeout without a server timeout = %v", tool.CallTimeout())
	}
}
