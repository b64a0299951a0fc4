// Package rapserver is a small library for writing RAP tool servers: you
// describe your tools (a name, a description, a JSON Schema for the
// arguments and a Run function) and the Server does the protocol.
//
// RAP, the Reactive Agent Protocol, is how Infinity calls tools that take
// their time. The runtime fetches the server's manifest from
// GET {base}/.well-known/rap-toolset, POSTs each call to the manifest's
// endpoint and goes on; the tool answers later by POSTing callbacks to the
// call's callback_url: the result, and on the way any of a subscription's
// events, a question for the user (user_choice) or an update of what the
// user sees (view_update). The runtime tells the server when it gives up on
// a call (POST {base}/cancel_tool_call) or a thread closes (POST
// {base}/close_thread).
//
// What the Server does for you:
//
//   - serves the manifest, built from Tools, with the endpoint under the
//     base URL the runtime used (or BaseURL);
//   - accepts an invocation (400 for a body that is not one, or a tool it
//     does not have), answers 200 at once, and runs the tool's Run in its own
//     goroutine with a context that ends when the call is cancelled, its
//     thread closes or the server closes;
//   - sends the callbacks Run asks for (Call.Result, Call.Subscribed,
//     Call.Event, Call.AskUser, Call.View), retrying a connection error or a
//     5xx answer with backoff, as the protocol asks of tools;
//   - serves the response URL of every question it asked, and hands the
//     answer to the Run that waits for it;
//   - sends "Error: ..." as the result when Run returns an error, and
//     recovers nothing: a panic in Run is a bug in the tool.
//
// A minimal server:
//
//	srv := &rapserver.Server{Name: "clock", Tools: []rapserver.Tool{{
//		Name:        "now",
//		Description: "The current time in UTC",
//		Run: func(ctx context.Context, c *rapserver.Call) error {
//			return c.Result(ctx, time.Now().UTC().Format(time.RFC3339))
//		},
//	}}}
//	defer srv.Close()
//	http.ListenAndServe("127.0.0.1:9000", srv)
//
// An agent file names it under tools: rap: [http://127.0.0.1:9000].
// Package toolbox holds the tools `infinity tools serve` serves, written
// with this package.
package rapserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity/internal/backoff"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// Tool is one tool of a Server.
type Tool struct {
	// Name is what the model calls the tool: letters, digits, _ and -.
	Name string
	// Description tells the model what the tool does and when to use it.
	Description string
	// InputSchema is the JSON Schema of the arguments (an object); nil
	// means any object.
	InputSchema json.RawMessage
	// Annotations are hints for the runtime and UIs, such as
	// {"readOnly": true} or {"longRunning": true}.
	Annotations map[string]any
	// Run does one call, in its own goroutine, after the invocation was
	// accepted. It answers through c; a non-nil error is sent as the
	// result "Error: <error>" unless Run already sent the result. Its
	// context ends when the runtime cancels the call, the call's thread
	// closes or the server closes.
	Run func(ctx context.Context, c *Call) error
}

// Server is a RAP tool server: an http.Handler.
type Server struct {
	// Name and Description name the toolset in its manifest.
	Name        string
	Description string
	Tools       []Tool
	// BaseURL is the URL the runtime reaches the server at, used in the
	// manifest's endpoint and in response URLs. Empty: the scheme and host
	// of each request (right when the runtime reaches the server directly).
	BaseURL string
	// Client sends the callbacks; nil means a client with a 30 s timeout.
	Client *http.Client
	// Log receives what goes wrong (callbacks that fail for good); nil
	// means slog.Default().
	Log *slog.Logger
	// Retries is how many times a callback is retried after a connection
	// error or a 5xx answer; 0 means 4.
	Retries int
	// Extra, when set, serves requests for paths the protocol does not use
	// (a tool's webhook, say).
	Extra http.Handler
	// Inline runs each call's Run before answering its invocation, so
	// that its callbacks are sent while the request lasts: for hosts that
	// freeze the process between requests, such as AWS Lambda. Calls that
	// outlive a request cannot work there: AskUser fails with
	// ErrNotInline, and a subscription's events must all be sent by the
	// Run that subscribed.
	Inline bool

	once  sync.Once
	mux   *http.ServeMux
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	tools map[string]*Tool // by name
	// mu guards closed, calls and the Calls' state.
	mu     sync.Mutex
	closed bool
	calls  map[callKey]*Call // the calls whose Run runs
}

// callKey names a call: call ids are unique within a thread.
type callKey struct{ group, id string }

// Call is one call of a tool, as Run sees it.
type Call struct {
	// Invocation is what the runtime sent: the tool's name (Operation), the
	// arguments, the call's id, the thread (GroupID) and its ancestors.
	Invocation rap.Invocation

	srv    *Server
	base   string
	cancel context.CancelFunc
	// Guarded by srv.mu:
	done    bool     // the result was sent
	events  int      // events sent, for their Idempotency-Keys
	asked   bool     // AskUser asked (a call asks once)
	choices []string // what AskUser offers while it waits for the answer
	answer  chan int // the answer, to AskUser
}

func (c *Call) key() callKey { return callKey{c.Invocation.GroupID, c.Invocation.ID} }

// ErrCallEnded is returned by AskUser when the call's context ends before
// the user answers.
var ErrCallEnded = fmt.Errorf("rapserver: the call ended: %w", context.Canceled)

// ErrRefused is returned by a callback the runtime refused (a 4xx
// answer: a bad token, a malformed body). It is not retried, and a
// refused result counts as sent.
var ErrRefused = errors.New("rapserver: the runtime refused the callback")

// ErrNotInline is returned by AskUser on an Inline server: the answer
// comes in another request, which a host such as AWS Lambda may serve from
// another process.
var ErrNotInline = errors.New("rapserver: asking the user needs a server that keeps running between requests, not one that runs calls inline")

func (s *Server) init() {
	s.once.Do(func() {
		s.ctx, s.stop = context.WithCancel(context.Background())
		s.calls = map[callKey]*Call{}
		s.tools = map[string]*Tool{}
		for i := range s.Tools {
			s.tools[s.Tools[i].Name] = &s.Tools[i]
		}
		s.mux = http.NewServeMux()
		s.mux.HandleFunc("GET /.well-known/rap-toolset", s.serveManifest)
		s.mux.HandleFunc("POST /invoke", s.serveInvoke)
		s.mux.HandleFunc("POST /answer/{group}/{id}", s.serveAnswer)
		s.mux.HandleFunc("POST /cancel_tool_call", s.serveCancel)
		s.mux.HandleFunc("POST /close_thread", s.serveClose)
		s.mux.HandleFunc("POST /migrate", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this server keeps no per-session state to migrate", http.StatusNotFound)
		})
		if s.Extra != nil {
			s.mux.Handle("/", s.Extra)
		}
	})
}

// ServeHTTP serves the protocol's routes, and Extra's.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	s.mux.ServeHTTP(w, r)
}

// Close ends every running call (their contexts end) and waits for their
// Run to return.
func (s *Server) Close() {
	s.init()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

// Manifest returns the manifest served at base.
func (s *Server) Manifest(base string) rap.Manifest {
	m := rap.Manifest{Name: s.Name, Description: s.Description, Endpoint: strings.TrimSuffix(base, "/") + "/invoke"}
	for _, t := range s.Tools {
		schema := t.InputSchema
		if schema == nil {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		m.Tools = append(m.Tools, rap.ToolDef{Name: t.Name, Description: t.Description, InputSchema: schema, Annotations: t.Annotations})
	}
	return m
}

// base is the server's base URL as the runtime reaches it.
func (s *Server) base(r *http.Request) string {
	if s.BaseURL != "" {
		return strings.TrimSuffix(s.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" { // behind a proxy, or a Lambda Function URL
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Manifest(s.base(r)))
}

func (s *Server) serveInvoke(w http.ResponseWriter, r *http.Request) {
	var inv rap.Invocation
	if err := decodeBody(r, &inv); err != nil {
		writeError(w, http.StatusBadRequest, "not an invocation: "+err.Error())
		return
	}
	if inv.ID == "" || inv.GroupID == "" || inv.CallbackURL == "" {
		writeError(w, http.StatusBadRequest, "an invocation needs id, group_id and callback_url")
		return
	}
	tool, ok := s.tools[inv.Operation]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("no tool %q here", inv.Operation))
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c := &Call{Invocation: inv, srv: s, base: s.base(r), cancel: cancel}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		writeError(w, http.StatusServiceUnavailable, "the server is closing")
		return
	}
	if _, dup := s.calls[c.key()]; dup {
		// The runtime retried an invocation that got through: the call
		// runs already.
		s.mu.Unlock()
		cancel()
		writeJSON(w, http.StatusOK, map[string]bool{"accepted": true})
		return
	}
	s.calls[c.key()] = c
	s.wg.Add(1)
	s.mu.Unlock()
	work := func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.calls, c.key())
			s.mu.Unlock()
		}()
		defer cancel()
		if err := tool.Run(ctx, c); err != nil && !c.answered() && !errors.Is(err, context.Canceled) {
			_ = c.Result(s.ctx, "Error: "+err.Error())
		}
	}
	if s.Inline {
		work()
	} else {
		go work()
	}
	writeJSON(w, http.StatusOK, map[string]bool{"accepted": true})
}

func (s *Server) serveCancel(w http.ResponseWriter, r *http.Request) {
	var req rap.CancelToolCall
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	if c, ok := s.calls[callKey{req.ThreadID, req.ToolCallID}]; ok {
		c.cancel()
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) serveClose(w http.ResponseWriter, r *http.Request) {
	var req rap.CloseThread
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	for k, c := range s.calls {
		if k.group == req.ThreadID {
			c.cancel()
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) serveAnswer(w http.ResponseWriter, r *http.Request) {
	var ans rap.UserChoiceAnswer
	if err := decodeBody(r, &ans); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PathValue("id")
	if ans.ID != id {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the answer names choice %q, the URL %q", ans.ID, id))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[callKey{r.PathValue("group"), id}]
	switch {
	case c == nil || c.choices == nil:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no question %q waits for an answer", id))
	case ans.Selected < 0 || ans.Selected >= len(c.choices):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("selected %d: the question has %d choices", ans.Selected, len(c.choices)))
	default:
		c.choices = nil          // answered: a second answer finds no question
		c.answer <- ans.Selected // buffered: AskUser takes it or has gone
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	}
}

// Args decodes the call's arguments into v; unknown fields are an error.
func (c *Call) Args(v any) error {
	args := c.Invocation.Arguments
	if len(bytes.TrimSpace(args)) == 0 || bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		args = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("arguments of %s: %w", c.Invocation.Operation, err)
	}
	return nil
}

// Result sends the call's result: text for the model, and display
// segments shown to people only (a diff, say). A call has one result;
// later ones are not sent.
func (c *Call) Result(ctx context.Context, text string, display ...rap.Segment) error {
	return c.result(ctx, text, false, display)
}

// Subscribed sends the result of a subscription: the call is answered
// (text tells the model what it subscribed to) and the subscription stays
// active, its events (Event) arriving as messages of their own, until the
// runtime cancels it or an event is final.
func (c *Call) Subscribed(ctx context.Context, text string) error {
	return c.result(ctx, text, true, nil)
}

func (c *Call) result(ctx context.Context, text string, subscription bool, display []rap.Segment) error {
	s := c.srv
	s.mu.Lock()
	if c.done {
		s.mu.Unlock()
		return nil
	}
	c.done = true
	s.mu.Unlock()
	inv := c.Invocation
	err := c.post(ctx, rap.TypeToolResult, rap.ToolResult{GroupID: inv.GroupID, ID: inv.ID, CallID: inv.CallID,
		Text: &text, DisplayAs: display, Subscription: subscription}, "")
	if err != nil && !errors.Is(err, ErrRefused) {
		s.mu.Lock()
		c.done = false // not delivered: a later Result may try again
		s.mu.Unlock()
	}
	return err
}

func (c *Call) answered() bool {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.done
}

// Event sends one event of a subscription (after Subscribed). final ends
// the subscription. Every event carries an Idempotency-Key, so a retried
// delivery reaches the thread once.
func (c *Call) Event(ctx context.Context, text string, final bool) error {
	s := c.srv
	s.mu.Lock()
	if s.calls[c.key()] != c {
		s.mu.Unlock()
		return fmt.Errorf("event for call %s: its Run has returned: %w", c.Invocation.ID, ErrCallEnded)
	}
	c.events++
	n := c.events
	s.mu.Unlock()
	return c.post(ctx, rap.TypeSubscriptionEvent, rap.SubscriptionEvent{GroupID: c.Invocation.GroupID,
		ToolCallID: c.Invocation.ID, Text: text, Final: final}, fmt.Sprintf("%s-event-%d", c.Invocation.ID, n))
}

// View replaces what the user sees of kind viewType for the call's thread
// with content, which must encode as a JSON object (the UI decides how to
// show it).
func (c *Call) View(ctx context.Context, viewType string, content any) error {
	raw, err := json.Marshal(content)
	if err != nil {
		return fmt.Errorf("view %s: %w", viewType, err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("view %s: the content must be a JSON object, not %.40s", viewType, raw)
	}
	return c.post(ctx, rap.TypeViewUpdate, rap.ViewUpdate{GroupID: c.Invocation.GroupID, ViewType: viewType, Content: raw}, "")
}

// AskUser asks the user to pick one of choices (default: the index
// preselected) and waits for the answer: the index picked. The thread
// waits meanwhile, costing nothing; people answer with `infinity answer`.
// It returns ErrCallEnded if the call's context ends first. A call asks
// once: the protocol names the question by the call's id.
func (c *Call) AskUser(ctx context.Context, prompt string, choices []string, def int) (int, error) {
	if len(choices) == 0 || def < 0 || def >= len(choices) {
		return 0, fmt.Errorf("ask user: %d choices, default %d", len(choices), def)
	}
	if c.srv.Inline {
		return 0, ErrNotInline
	}
	s, inv := c.srv, c.Invocation
	id := inv.ID // the protocol ties a question to its call by the call's id
	s.mu.Lock()
	if c.asked {
		s.mu.Unlock()
		return 0, errors.New("ask user: this call asked already (a call asks once)")
	}
	c.asked, c.choices, c.answer = true, choices, make(chan int, 1)
	s.mu.Unlock()
	err := c.post(ctx, rap.TypeUserChoice, rap.UserChoice{GroupID: inv.GroupID, ID: id, CallID: inv.CallID, Prompt: prompt, Choices: choices,
		Default: def, ResponseURL: c.base + "/answer/" + url.PathEscape(inv.GroupID) + "/" + url.PathEscape(id)}, "")
	if err != nil {
		return 0, err
	}
	select {
	case n := <-c.answer: // serveAnswer checked it is one of the choices
		return n, nil
	case <-ctx.Done():
		return 0, ErrCallEnded
	}
}

// post delivers one callback, retrying connection errors and 5xx answers
// with backoff (from 0.2 s, doubling, jittered); a 4xx answer is final.
func (c *Call) post(ctx context.Context, typ string, body any, idemKey string) error {
	s := c.srv
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s callback: %w", typ, err)
	}
	// The protocol's callbacks carry their type beside the fields (every
	// callback has at least its group_id, so the object is not empty).
	payload = append(fmt.Appendf(nil, `{"type":%q,`, typ), payload[1:]...)
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	retries := s.Retries
	if retries <= 0 {
		retries = 4
	}
	for try := 0; ; try++ {
		status, err := send(ctx, client, c.Invocation.CallbackURL, payload, idemKey)
		switch {
		case err == nil && status < 300:
			return nil
		case err == nil && status < 500:
			err = fmt.Errorf("%s callback for call %s: the runtime answered %d: %w", typ, c.Invocation.ID, status, ErrRefused)
			s.log().Warn("rapserver: callback refused", "err", err)
			return err
		case err == nil:
			err = fmt.Errorf("%s callback for call %s: the runtime answered %d", typ, c.Invocation.ID, status)
		}
		if try >= retries || backoff.Sleep(ctx, backoff.Delay(200*time.Millisecond, 5*time.Second, try+1)) != nil {
			s.log().Warn("rapserver: callback not delivered", "err", err, "tries", try+1)
			return err
		}
	}
}

func send(ctx context.Context, client *http.Client, url string, payload []byte, idemKey string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// decodeBody reads a JSON request body of at most 1 MiB.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return err
	}
	if len(body) > 1<<20 {
		return errors.New("body over 1 MiB")
	}
	return json.Unmarshal(body, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]map[string]string{"error": {"message": msg}})
}
