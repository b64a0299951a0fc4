package rap

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// countingClient counts requests and forwards them.
type countingClient struct {
	n    atomic.Int32
	next infinity.HTTPClient
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.Do(r)
}

func loadTool(t *testing.T, cfg Config, name string) *Tool {
	t.Helper()
	set, err := NewLoader(cfg).Load(context.Background(), "root")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tool, ok := set.Tool(name)
	if !ok {
		t.Fatalf("tool %s not exposed", name)
	}
	return tool
}

func TestInvokeBody(t *testing.T) {
	srv := raptest.New(t, raptest.WithDelay(time.Hour))
	rt := newRuntime(t, srv.URL)
	tool := loadTool(t, rt.cfg, "slow_echo")
	ctx := context.Background()
	call := infinity.ToolCall{ID: "toolu_01", Name: "slow_echo", Args: json.RawMessage(`{"text":"hi"}`)}
	cases := []struct {
		name      string
		env       infinity.ToolEnv
		call      infinity.ToolCall
		ancestors []string
		user      *string
	}{
		{"42 root thread omits ancestors", infinity.ToolEnv{Thread: "root", Stack: []infinity.ThreadID{"root"}, UserID: "u1"}, call, nil, ptr("u1")},
		{"42 child thread sends root to parent", infinity.ToolEnv{Thread: "c2", Stack: []infinity.ThreadID{"root", "c1", "c2"}}, call, []string{"root", "c1"}, nil},
		{"39 empty arguments become {}", infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "toolu_02", Name: "slow_echo"}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.Invocations())
			if _, err := tool.Invoke(ctx, tc.env, tc.call); err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			invs := srv.Invocations()
			if len(invs) != before+1 {
				t.Fatalf("%d invocations, want 1", len(invs)-before)
			}
			inv := invs[before]
			wantArgs := string(tc.call.Args)
			if wantArgs == "" {
				wantArgs = "{}"
			}
			switch {
			case inv.ContentType != "application/json": // 1
				t.Errorf("Content-Type %q", inv.ContentType)
			case inv.Operation != "slow_echo" || string(inv.Arguments) != wantArgs:
				t.Errorf("operation/arguments %s %s", inv.Operation, inv.Arguments)
			case inv.ID != tc.call.ID || inv.CallID != nil: // 39
				t.Errorf("id %q call_id %v", inv.ID, inv.CallID)
			case inv.GroupID != string(tc.env.Thread): // 41
				t.Errorf("group_id %q", inv.GroupID)
			case len(inv.ThreadAncestors) != len(tc.ancestors) || (len(tc.ancestors) > 0 && inv.ThreadAncestors[0] != tc.ancestors[0]):
				t.Errorf("thread_ancestors %v, want %v", inv.ThreadAncestors, tc.ancestors)
			case (inv.UserID == nil) != (tc.user == nil) || (tc.user != nil && *inv.UserID != *tc.user):
				t.Errorf("user_id %v", inv.UserID)
			case inv.CallbackURL != rt.cfg.Tokens.CallbackURL(rt.srv.URL, tc.env.Thread, tc.call.ID): // 40
				t.Errorf("callback_url %s", inv.CallbackURL)
			}
		})
	}
	t.Run("39 repeated Invoke sends the same invocation", func(t *testing.T) {
		env := infinity.ToolEnv{Thread: "root"}
		for range 2 {
			if _, err := tool.Invoke(ctx, env, call); err != nil {
				t.Fatal(err)
			}
		}
		invs := srv.Invocations()
		a, b := invs[len(invs)-2], invs[len(invs)-1]
		if a.ID != b.ID || a.CallbackURL != b.CallbackURL {
			t.Fatalf("repeat differs: %+v vs %+v", a, b)
		}
	})
	t.Run("37 non-object arguments are not sent", func(t *testing.T) {
		before := len(srv.Invocations())
		_, err := tool.Invoke(ctx, infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "x", Args: json.RawMessage(`[1]`)})
		if !errors.Is(err, infinity.ErrInvalid) || len(srv.Invocations()) != before {
			t.Fatalf("err = %v", err)
		}
	})
	if spec := tool.Spec(); !spec.Async || spec.Name != "slow_echo" || len(spec.Schema) == 0 {
		t.Fatalf("spec %+v", spec)
	}
}

func TestInvokeFailures(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	accepted202 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer accepted202.Close()

	cases := []struct {
		name     string
		opts     []raptest.Option
		endpoint string // overrides the server's endpoint
		tries    int32
		want     error
	}{
		{"3 retries 5xx then succeeds", []raptest.Option{raptest.WithFail500(2)}, "", 3, nil},
		{"3 5xx until tries run out", []raptest.Option{raptest.WithFail500(100)}, "", 4, infinity.ErrRetryable},
		{"4 no retry on 4xx", []raptest.Option{raptest.WithFail400()}, "", 1, ErrRejected},
		{"5 non-200 2xx is not an acknowledgement", nil, accepted202.URL, 1, ErrRejected},
		{"5 unreachable endpoint fails after retries", nil, dead, 4, infinity.ErrRetryable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := raptest.New(t, append(tc.opts, raptest.WithDelay(time.Hour))...)
			rt := newRuntime(t, srv.URL)
			cc := &countingClient{next: http.DefaultClient}
			rt.cfg.Client = cc
			tool := loadTool(t, rt.cfg, "slow_echo")
			if tc.endpoint != "" {
				tool.endpoint = tc.endpoint
			}
			cc.n.Store(0)
			_, err := tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c1", Args: json.RawMessage(`{}`)})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got := cc.n.Load(); got != tc.tries {
				t.Fatalf("%d tries, want %d", got, tc.tries)
			}
		})
	}
	t.Run("3 5 a hanging endpoint is retried per try, then fails", func(t *testing.T) {
		hang := hangingServer(t)
		srv := raptest.New(t)
		rt := newRuntime(t, srv.URL)
		cc := &countingClient{next: http.DefaultClient}
		rt.cfg.Client = cc
		rt.cfg.Retry.Attempts, rt.cfg.Retry.Timeout = 2, 20*time.Millisecond
		tool := loadTool(t, rt.cfg, "slow_echo")
		tool.endpoint = hang
		cc.n.Store(0)
		_, err := tool.Invoke(context.Background(), infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c1"})
		if !errors.Is(err, infinity.ErrRetryable) || cc.n.Load() != 2 {
			t.Fatalf("err %v tries %d", err, cc.n.Load())
		}
	})
	t.Run("5 cancelled context stops the retries", func(t *testing.T) {
		srv := raptest.New(t, raptest.WithFail500(100))
		rt := newRuntime(t, srv.URL)
		rt.cfg.Retry = Retry{Attempts: 10, Base: time.Hour}
		tool := loadTool(t, rt.cfg, "slow_echo")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := tool.Invoke(ctx, infinity.ToolEnv{Thread: "root"}, infinity.ToolCall{ID: "c1"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRetryDelay(t *testing.T) {
	r := Retry{Base: 100 * time.Millisecond, Max: time.Second}.withDefaults()
	for n, max := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 80: time.Second} {
		for range 50 {
			if d := r.delay(n); d < max/2 || d > max {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", n, d, max/2, max)
			}
		}
	}
}

func ptr(s string) *string { return &s }
