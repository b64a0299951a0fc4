package rap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

func names(s *Set) []string {
	var out []string
	for _, t := range s.Tools() {
		out = append(out, t.Spec().Name)
	}
	slices.Sort(out)
	return out
}

func customManifest(endpoint string, tools ...string) []byte {
	var defs []byte
	for i, n := range tools {
		if i > 0 {
			defs = append(defs, ',')
		}
		defs = fmt.Appendf(defs, `{"name":%q,"description":"d","inputSchema":{"type":"object"}}`, n)
	}
	return fmt.Appendf(nil, `{"name":"custom","endpoint":%q,"tools":[%s]}`, endpoint, defs)
}

func TestLoaderToolsets(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		setup   func(a, b *raptest.Server) []string // returns Reserved
		want    []string
		wantErr error
	}{
		{"19 24 fetches every server and offers all tools", func(a, b *raptest.Server) []string { return nil },
			[]string{"a_ask_user", "a_show_view", "a_slow_echo", "a_subscribe_ticks", "b_ask_user", "b_show_view", "b_slow_echo", "b_subscribe_ticks"}, nil},
		{"23 invalid toolset exposes none of its tools", func(a, b *raptest.Server) []string {
			b.SetManifest(customManifest(b.URL+"/invoke", "ok_tool", "bad name"))
			return nil
		}, []string{"a_ask_user", "a_show_view", "a_slow_echo", "a_subscribe_ticks"}, infinity.ErrInvalid},
		{"23 manifest that is not JSON", func(a, b *raptest.Server) []string {
			b.SetManifest([]byte("<html>"))
			return nil
		}, []string{"a_ask_user", "a_show_view", "a_slow_echo", "a_subscribe_ticks"}, infinity.ErrInvalid},
		{"25 name in two toolsets exposes neither", func(a, b *raptest.Server) []string {
			b.SetManifest(customManifest(b.URL+"/invoke", "a_slow_echo", "b_only"))
			return nil
		}, []string{"a_ask_user", "a_show_view", "a_subscribe_ticks", "b_only"}, ErrDuplicateTool},
		{"25 name equal to a reserved built-in is a clash", func(a, b *raptest.Server) []string {
			b.SetManifest(customManifest(b.URL+"/invoke", "cancel_subscription", "b_only"))
			return []string{"cancel_subscription", "receive_event__injected"}
		}, []string{"a_ask_user", "a_show_view", "a_slow_echo", "a_subscribe_ticks", "b_only"}, ErrDuplicateTool},
		{"32 names are case-sensitive", func(a, b *raptest.Server) []string {
			b.SetManifest(customManifest(b.URL+"/invoke", "A_slow_echo"))
			return nil
		}, []string{"A_slow_echo", "a_ask_user", "a_show_view", "a_slow_echo", "a_subscribe_ticks"}, nil},
		{"30 unreachable server with nothing cached is reported", func(a, b *raptest.Server) []string {
			b.SetDiscoveryDown(true)
			return nil
		}, []string{"a_ask_user", "a_show_view", "a_slow_echo", "a_subscribe_ticks"}, ErrDiscovery},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := raptest.New(t, raptest.WithPrefix("a_"))
			b := raptest.New(t, raptest.WithPrefix("b_"))
			rt := newRuntime(t, a.URL+"/", b.URL)
			rt.cfg.Reserved = tc.setup(a, b)
			set, err := NewLoader(rt.cfg).Load(ctx, "root")
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got := names(set); !slices.Equal(got, tc.want) {
				t.Fatalf("tools %v, want %v", got, tc.want)
			}
			if a.Fetches() != 1 || b.Fetches() != 1 {
				t.Fatalf("fetches %d, %d", a.Fetches(), b.Fetches())
			}
		})
	}
}

func TestLoaderEndpoint(t *testing.T) {
	// 26: the manifest's endpoint, not the base URL, receives invocations.
	a := raptest.New(t)
	b := raptest.New(t, raptest.WithPrefix("b_"))
	a.SetManifest(customManifest(b.URL+"/invoke", "elsewhere"))
	rt := newRuntime(t, a.URL, b.URL)
	tool := loadTool(t, rt.cfg, "elsewhere")
	if tool.Endpoint() != b.URL+"/invoke" {
		t.Fatalf("endpoint %s", tool.Endpoint())
	}
	if _, err := tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if len(a.Invocations()) != 0 || len(b.Invocations()) != 1 || b.Invocations()[0].Operation != "elsewhere" {
		t.Fatalf("a got %d, b got %v", len(a.Invocations()), b.Invocations())
	}
}

func TestLoaderCache(t *testing.T) {
	ctx := context.Background()
	srv := raptest.New(t)
	rt := newRuntime(t, srv.URL)
	l := NewLoader(rt.cfg)
	steps := []struct {
		name    string
		down    bool
		root    infinity.ThreadID
		fetches int
		tools   int
		wantErr error
	}{
		{"19 first session fetches", false, "r1", 1, 4, nil},
		{"27 same session reuses without fetching", false, "r1", 1, 4, nil},
		{"28 new session fetches fresh", false, "r2", 2, 4, nil},
		{"27 server down: cached session still served", true, "r1", 2, 4, nil},
		{"29 server down: new session falls back to the cached toolset", true, "r3", 3, 4, nil},
		{"29 a fallback load is not cached: next load retries", false, "r3", 4, 4, nil},
		{"27 then it is cached", false, "r3", 4, 4, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			srv.SetDiscoveryDown(st.down)
			set, err := l.Load(ctx, st.root)
			if st.wantErr == nil && err != nil || st.wantErr != nil && !errors.Is(err, st.wantErr) {
				t.Fatalf("err = %v", err)
			}
			if srv.Fetches() != st.fetches || len(set.Tools()) != st.tools {
				t.Fatalf("fetches %d tools %d, want %d %d", srv.Fetches(), len(set.Tools()), st.fetches, st.tools)
			}
		})
	}
	t.Run("28 Refresh fetches again", func(t *testing.T) {
		if _, err := l.Refresh(ctx, "r1"); err != nil || srv.Fetches() != 5 {
			t.Fatalf("err %v fetches %d", err, srv.Fetches())
		}
	})
	t.Run("30 a loader that never loaded reports the failure", func(t *testing.T) {
		srv.SetDiscoveryDown(true)
		set, err := NewLoader(rt.cfg).Load(ctx, "r9")
		if !errors.Is(err, ErrDiscovery) || len(set.Tools()) != 0 {
			t.Fatalf("err %v tools %d", err, len(set.Tools()))
		}
	})
}

// A local server's endpoint follows it to its new port; other endpoints
// stay where they are.
func TestRebase(t *testing.T) {
	for _, tc := range []struct{ endpoint, from, base, want string }{
		{"http://127.0.0.1:4000/invoke", "http://127.0.0.1:4000", "http://127.0.0.1:5000", "http://127.0.0.1:5000/invoke"},
		{"http://localhost:4000/rap/invoke?x=1", "http://127.0.0.1:4000", "http://127.0.0.1:5000", "http://127.0.0.1:5000/rap/invoke?x=1"},
		{"http://127.0.0.1:4001/invoke", "http://127.0.0.1:4000", "http://127.0.0.1:5000", "http://127.0.0.1:4001/invoke"},
		{"https://tools.example.com:4000/invoke", "http://127.0.0.1:4000", "http://127.0.0.1:5000", "https://tools.example.com:4000/invoke"},
		{"http://127.0.0.1:4000/invoke", "http://127.0.0.1:4000", "http://127.0.0.1:4000", "http://127.0.0.1:4000/invoke"},
	} {
		if got := rebase(tc.endpoint, tc.from, tc.base); got != tc.want {
			t.Errorf("rebase(%s, %s, %s) = %s, want %s", tc.endpoint, tc.from, tc.base, got, tc.want)
		}
	}
}
