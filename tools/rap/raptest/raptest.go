// Package raptest is a RAP tool server for tests: an httptest server that
// serves a manifest, accepts invocations of four demonstration tools and
// answers them by callback, and records everything it receives.
//
// It speaks the wire format with its own small types and does not import
// package rap, so rap's own tests can use it.
package raptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Invocation is an invocation as the server received it.
type Invocation struct {
	Operation       string          `json:"operation"`
	Arguments       json.RawMessage `json:"arguments"`
	ID              string          `json:"id"`
	CallID          *string         `json:"call_id"`
	CallbackURL     string          `json:"callback_url"`
	GroupID         string          `json:"group_id"`
	ThreadAncestors []string        `json:"thread_ancestors"`
	UserID          *string         `json:"user_id"`
	// ContentType is the request's Content-Type header.
	ContentType string `json:"-"`
	// Status is what the server answered.
	Status int `json:"-"`
}

// Notification is a /close_thread, /cancel_tool_call or /migrate body.
type Notification struct {
	ThreadID       string `json:"thread_id,omitempty"`
	ToolCallID     string `json:"tool_call_id,omitempty"`
	SessionID      string `json:"session_id,omitempty"`
	DestinationURL string `json:"destination_url,omitempty"`
}

// Delivery is one callback POST the server made and the answer it got
// (0 for a connection error).
type Delivery struct {
	Type   string
	Body   []byte
	Status int
}

// Option configures a Server.
type Option func(*Server)

// WithDelay sets how long slow_echo waits before it answers, and the pause
// between subscription events (default 10ms).
func WithDelay(d time.Duration) Option { return func(s *Server) { s.delay = d } }

// WithTicks sets how many events subscribe_ticks sends (default 3).
func WithTicks(n int) Option { return func(s *Server) { s.ticks = n } }

// WithFail500 makes the first n invocations fail with 500.
func WithFail500(n int) Option { return func(s *Server) { s.fail500 = n } }

// WithFail400 makes every invocation fail with 400.
func WithFail400() Option { return func(s *Server) { s.fail400 = true } }

// WithNeedsMigration sets needsMigration: true in the manifest.
func WithNeedsMigration() Option { return func(s *Server) { s.needsMigration = true } }

// WithName sets the toolset name (default "raptest").
func WithName(name string) Option { return func(s *Server) { s.name = name } }

// WithPrefix prefixes every tool name, so several servers can run side by
// side without clashing.
func WithPrefix(p string) Option { return func(s *Server) { s.prefix = p } }

// WithIdempotencyKeys makes every subscription event carry an
// Idempotency-Key header, stable across retries of that delivery.
func WithIdempotencyKeys() Option { return func(s *Server) { s.idemKeys = true } }

// Server is a running test tool server.
type Server struct {
	// URL is the base URL; the manifest's endpoint is URL + "/invoke".
	URL string

	srv    *httptest.Server
	client *http.Client
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	closed bool // guarded by mu: no new work once Close began

	delay          time.Duration
	ticks          int
	name, prefix   string
	needsMigration bool
	idemKeys       bool

	mu             sync.Mutex
	fail500        int
	fail400        bool
	discoveryDown  bool
	manifest       []byte // overrides the generated manifest when set
	migrateStatus  int
	fetches        int
	invocations    []Invocation
	closes         []Notification
	cancels        []Notification
	migrations     []Notification
	deliveries     []Delivery
	pendingChoices map[string]Invocation // by call id
}

// New starts a server and closes it when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{delay: 10 * time.Millisecond, ticks: 3, name: "raptest", pendingChoices: map[string]Invocation{}}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/rap-toolset", s.serveManifest)
	mux.HandleFunc("POST /invoke", s.serveInvoke)
	mux.HandleFunc("POST /choice/{id}", s.serveChoice)
	mux.HandleFunc("POST /close_thread", s.notification(&s.closes))
	mux.HandleFunc("POST /cancel_tool_call", s.notification(&s.cancels))
	mux.HandleFunc("POST /migrate", s.serveMigrate)
	s.srv = httptest.NewServer(mux)
	s.client = s.srv.Client()
	s.URL = s.srv.URL
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server after its callbacks in flight have ended.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		s.wg.Wait()
		s.srv.Close()
	})
}

// ToolNames returns the server's tool names, prefix included.
func (s *Server) ToolNames() []string {
	return []string{s.prefix + "slow_echo", s.prefix + "subscribe_ticks", s.prefix + "ask_user", s.prefix + "show_view"}
}

// Manifest returns the manifest the server serves by default.
func (s *Server) Manifest() []byte {
	obj := `{"type":"object","properties":{"text":{"type":"string"}},"additionalProperties":false}`
	tools := []string{
		fmt.Sprintf(`{"name":%q,"description":"Echo text after a delay","inputSchema":%s,"annotations":{"readOnly":true}}`, s.prefix+"slow_echo", obj),
		fmt.Sprintf(`{"name":%q,"description":"Subscribe to a few ticks","inputSchema":{"type":"object","additionalProperties":false},"annotations":{"longRunning":true}}`, s.prefix+"subscribe_ticks"),
		fmt.Sprintf(`{"name":%q,"description":"Ask the user to choose","inputSchema":{"type":"object","properties":{"prompt":{"type":"string"},"choices":{"type":"array","items":{"type":"string"}}}}}`, s.prefix+"ask_user"),
		fmt.Sprintf(`{"name":%q,"description":"Show a view, then answer","inputSchema":{"type":"object","additionalProperties":false}}`, s.prefix+"show_view"),
	}
	return fmt.Appendf(nil, `{"name":%q,"description":"RAP test server","endpoint":%q,"needsMigration":%t,"tools":[%s]}`,
		s.name, s.URL+"/invoke", s.needsMigration, strings.Join(tools, ","))
}

// SetManifest makes the server serve raw as its manifest (nil restores the
// default).
func (s *Server) SetManifest(raw []byte) { s.mu.Lock(); s.manifest = raw; s.mu.Unlock() }

// SetDiscoveryDown makes discovery answer 503 while down is true.
func (s *Server) SetDiscoveryDown(down bool) { s.mu.Lock(); s.discoveryDown = down; s.mu.Unlock() }

// SetFail500 makes the next n invocations fail with 500.
func (s *Server) SetFail500(n int) { s.mu.Lock(); s.fail500 = n; s.mu.Unlock() }

// SetFail400 makes invocations fail with 400 while fail is true.
func (s *Server) SetFail400(fail bool) { s.mu.Lock(); s.fail400 = fail; s.mu.Unlock() }

// SetMigrateStatus makes /migrate answer status (0: 200, or 404 without
// needsMigration).
func (s *Server) SetMigrateStatus(status int) { s.mu.Lock(); s.migrateStatus = status; s.mu.Unlock() }

// Fetches returns how many times the manifest was requested.
func (s *Server) Fetches() int { s.mu.Lock(); defer s.mu.Unlock(); return s.fetches }

// Invocations returns every invocation received, failed ones included.
func (s *Server) Invocations() []Invocation { return get(s, &s.invocations) }

// Closes returns every /close_thread body received.
func (s *Server) Closes() []Notification { return get(s, &s.closes) }

// Cancels returns every /cancel_tool_call body received.
func (s *Server) Cancels() []Notification { return get(s, &s.cancels) }

// Migrations returns every /migrate body received.
func (s *Server) Migrations() []Notification { return get(s, &s.migrations) }

// Deliveries returns every callback POST made, in order.
func (s *Server) Deliveries() []Delivery { return get(s, &s.deliveries) }

func get[T any](s *Server, p *[]T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]T(nil), *p...)
}

func (s *Server) serveManifest(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.fetches++
	down, raw := s.discoveryDown, s.manifest
	s.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if raw == nil {
		raw = s.Manifest()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

func (s *Server) serveInvoke(w http.ResponseWriter, r *http.Request) {
	var inv Invocation
	err := json.NewDecoder(r.Body).Decode(&inv)
	inv.ContentType = r.Header.Get("Content-Type")
	s.mu.Lock()
	switch {
	case err != nil:
		inv.Status = http.StatusBadRequest
	case s.fail400:
		inv.Status = http.StatusBadRequest
	case s.fail500 > 0:
		s.fail500--
		inv.Status = http.StatusInternalServerError
	default:
		inv.Status = http.StatusOK
	}
	s.invocations = append(s.invocations, inv)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(inv.Status)
	_, _ = w.Write([]byte(`{"accepted":true}`)) // the runtime ignores this
	if inv.Status == http.StatusOK {
		s.spawn(func() { s.run(inv) })
	}
}

// run does the work of one accepted invocation.
func (s *Server) run(inv Invocation) {
	var args struct {
		Text    string   `json:"text"`
		Prompt  string   `json:"prompt"`
		Choices []string `json:"choices"`
	}
	_ = json.Unmarshal(inv.Arguments, &args)
	switch strings.TrimPrefix(inv.Operation, s.prefix) {
	case "slow_echo":
		if !s.sleep(s.delay) {
			return
		}
		s.result(inv, args.Text, false)
	case "subscribe_ticks":
		s.result(inv, "subscribed", true)
		for i := 1; i <= s.ticks; i++ {
			if !s.sleep(s.delay) {
				return
			}
			ev := map[string]any{"type": "subscription_event", "group_id": inv.GroupID, "tool_call_id": inv.ID,
				"text": fmt.Sprintf(`{"tick":%d}`, i), "final": i == s.ticks}
			key := ""
			if s.idemKeys {
				key = fmt.Sprintf("%s-tick-%d", inv.ID, i)
			}
			s.post(inv.CallbackURL, "subscription_event", ev, key)
		}
	case "ask_user":
		prompt, choices := args.Prompt, args.Choices
		if prompt == "" {
			prompt = "Proceed?"
		}
		if len(choices) == 0 {
			choices = []string{"yes", "no"}
		}
		s.mu.Lock()
		s.pendingChoices[inv.ID] = withChoices(inv, choices)
		s.mu.Unlock()
		s.post(inv.CallbackURL, "user_choice", map[string]any{"type": "user_choice", "group_id": inv.GroupID, "id": inv.ID,
			"call_id": inv.CallID, "prompt": prompt, "choices": choices, "default": 0,
			"response_url": s.URL + "/choice/" + inv.ID}, "")
	case "show_view":
		s.post(inv.CallbackURL, "view_update", map[string]any{"type": "view_update", "group_id": inv.GroupID,
			"view_type": "diff", "content": map[string]any{"path": "a.go", "patch": "+x"}}, "")
		s.result(inv, "view shown", false)
	default:
		s.result(inv, "Error: unknown operation "+inv.Operation, false)
	}
}

// withChoices remembers the offered choices in the invocation's arguments.
func withChoices(inv Invocation, choices []string) Invocation {
	inv.Arguments, _ = json.Marshal(map[string]any{"choices": choices})
	return inv
}

func (s *Server) serveChoice(w http.ResponseWriter, r *http.Request) {
	var ans struct {
		ID       string `json:"id"`
		Selected *int   `json:"selected"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ans); err != nil || ans.Selected == nil || ans.ID != r.PathValue("id") {
		http.Error(w, "bad answer", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	inv, ok := s.pendingChoices[ans.ID]
	delete(s.pendingChoices, ans.ID)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no such choice", http.StatusNotFound)
		return
	}
	var args struct{ Choices []string }
	_ = json.Unmarshal(inv.Arguments, &args)
	w.WriteHeader(http.StatusOK)
	s.spawn(func() {
		if *ans.Selected < 0 || *ans.Selected >= len(args.Choices) {
			s.result(inv, fmt.Sprintf("Error: choice %d is out of range", *ans.Selected), false)
			return
		}
		s.result(inv, "selected: "+args.Choices[*ans.Selected], false)
	})
}

func (s *Server) notification(list *[]Notification) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var n Notification
		_ = json.NewDecoder(r.Body).Decode(&n)
		s.mu.Lock()
		*list = append(*list, n)
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) serveMigrate(w http.ResponseWriter, r *http.Request) {
	var n Notification
	_ = json.NewDecoder(r.Body).Decode(&n)
	s.mu.Lock()
	s.migrations = append(s.migrations, n)
	status := s.migrateStatus
	s.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
		if !s.needsMigration {
			status = http.StatusNotFound
		}
	}
	w.WriteHeader(status)
}

func (s *Server) result(inv Invocation, text string, subscription bool) {
	s.post(inv.CallbackURL, "tool_result", map[string]any{"type": "tool_result", "group_id": inv.GroupID, "id": inv.ID,
		"call_id": inv.CallID, "text": text, "subscription": subscription}, "")
}

// post delivers a callback, retrying connection errors and 5xx a few
// times as a tool server should; 4xx is not retried.
func (s *Server) post(u, typ string, msg any, idemKey string) {
	body, _ := json.Marshal(msg)
	for try := 0; try < 3; try++ {
		if try > 0 && !s.sleep(20*time.Millisecond) {
			return
		}
		status := 0
		req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			if idemKey != "" {
				req.Header.Set("Idempotency-Key", idemKey)
			}
			var resp *http.Response
			if resp, err = s.client.Do(req); err == nil {
				status = resp.StatusCode
				_ = resp.Body.Close()
			}
		}
		s.mu.Lock()
		s.deliveries = append(s.deliveries, Delivery{Type: typ, Body: body, Status: status})
		s.mu.Unlock()
		if status != 0 && status < 500 {
			return
		}
	}
}

// spawn runs f in the background unless the server is closing; Close
// waits for it.
func (s *Server) spawn(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.wg.Go(f)
	}
}

func (s *Server) sleep(d time.Duration) bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
