package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/mcp"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

// flaky fronts an MCP server and answers 503 while down, counting requests.
type flaky struct {
	URL      string
	down     atomic.Bool
	requests atomic.Int64
}

func newFlaky(t *testing.T, backend string) *flaky {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.URL = hs.URL
	return f
}

// A Source connects on first use, serves what it reached, reports what it
// did not, and tries a failed server again only after RetryAfter.
func TestSourceConnectsLazily(t *testing.T) {
	a := mcptest.Start(mcptest.Options{Prefix: "a_"})
	defer a.Close()
	b := mcptest.Start(mcptest.Options{Prefix: "b_"})
	defer b.Close()
	fb := newFlaky(t, b.URL)
	fb.down.Store(true)

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	src := mcp.NewSource([]string{a.URL, fb.URL}, mcp.WithTimeout(5*time.Second))
	mcp.SetNow(src, func() time.Time { return now })
	defer src.Close()
	if n := fb.requests.Load(); n != 0 {
		t.Fatalf("NewSource made %d requests; it must connect on first use only", n)
	}

	ctx := context.Background()
	tools, err := src.Tools(ctx, "t1")
	if err == nil || !strings.Contains(err.Error(), fb.URL) {
		t.Fatalf("Tools with b down: error %v, want one naming %s", err, fb.URL)
	}
	if got := names(tools); !slices.Equal(got, []string{"a_add", "a_fail", "a_image", "a_slow"}) {
		t.Fatalf("tools with b down = %v", got)
	}
	tried := fb.requests.Load()

	// Within RetryAfter the failed server is not tried again.
	fb.down.Store(false)
	if _, err := src.Tools(ctx, "t2"); err == nil || fb.requests.Load() != tried {
		t.Fatalf("second call: %v, %d requests (were %d)", err, fb.requests.Load(), tried)
	}
	// After it, it is, and its tools join.
	now = now.Add(mcp.RetryAfter)
	tools, err = src.Tools(ctx, "t3")
	if err != nil || len(tools) != 8 {
		t.Fatalf("after RetryAfter: %v, %v", names(tools), err)
	}
	// Connected servers are reused.
	before := fb.requests.Load()
	if _, err := src.Tools(ctx, "t4"); err != nil || fb.requests.Load() != before {
		t.Fatalf("a connected server was dialled again: %v, %d → %d requests", err, before, fb.requests.Load())
	}
	// A tool works through the source.
	for _, tl := range tools {
		if tl.Spec().Name == "b_add" {
			res, err := tl.Invoke(ctx, infinity.ToolEnv{}, infinity.ToolCall{ID: "c1", Name: "b_add", Args: json.RawMessage(`{"a":2,"b":3}`)})
			if err != nil || res.Text() != "5" {
				t.Fatalf("b_add = %+v, %v", res, err)
			}
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Tools(ctx, "t5"); err == nil {
		t.Fatal("Tools after Close succeeded")
	}
}

// Two servers offering one tool name: no tools, ErrCollision.
func TestSourceCollision(t *testing.T) {
	a, stopA := mcptest.New()
	defer stopA()
	b, stopB := mcptest.New()
	defer stopB()
	src := mcp.NewSource([]string{a, b})
	defer src.Close()
	tools, err := src.Tools(context.Background(), "t1")
	if !errors.Is(err, mcp.ErrCollision) || tools != nil {
		t.Fatalf("Tools = %v, %v; want none and ErrCollision", names(tools), err)
	}
}
