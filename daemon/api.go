package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// Request size limits.
const (
	// MaxBody bounds a request body other than an agent or an import.
	MaxBody = 1 << 20
	// MaxAgentBody bounds an agent registration (file and script).
	MaxAgentBody = 4 << 20
	// MaxImportBody bounds an import.
	MaxImportBody = 1 << 30
)

// Error codes of the API's JSON errors ({"error":{"code","message"}}).
// They are stable: clients branch on them.
const (
	CodeBadRequest   = "bad_request"
	CodeInvalidJSON  = "invalid_json"
	CodeTooLarge     = "too_large"
	CodeUnauthorized = "unauthorized"
	CodeBadHost      = "forbidden_host"
	CodeBadOrigin    = "forbidden_origin"
	CodeNotFound     = "not_found"
	CodeClosed       = "closed"
	CodeExists       = "exists"
	CodeConflict     = "conflict"
	CodeNoChoice     = "no_pending_choice"
	// CodeUnknownModel: the agent's threads may not run on the model asked
	// for; Choices lists those they may run on.
	CodeUnknownModel   = "unknown_model"
	CodeNotImplemented = "not_implemented"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
	// CodeHeadersTooLarge: the headers pass MaxHeaderBytes (431).
	CodeHeadersTooLarge = "headers_too_large"
	// CodeMethodNotAllowed: the route takes another method (405).
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeInsufficientStorage: the disk holding the store is nearly full;
	// nothing was written (507). Reads go on, and writes succeed again
	// once space is freed.
	CodeInsufficientStorage = "insufficient_storage"
)

// APIError is the API's error body; the client returns it as an error.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Choices are the valid values, for CodeUnknownModel.
	Choices []string `json:"choices,omitempty"`
}

func (e *APIError) Error() string { return e.Message }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// toAPIError maps the runtime's sentinel errors to statuses and codes.
func toAPIError(err error) *APIError {
	var ae *APIError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return apiErr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body is over the %d-byte limit", mbe.Limit)
	case errors.Is(err, infinity.ErrNotFound):
		return apiErr(http.StatusNotFound, CodeNotFound, "%v", err)
	case errors.Is(err, infinity.ErrClosed):
		return apiErr(http.StatusConflict, CodeClosed, "%v", err)
	case errors.Is(err, infinity.ErrExists):
		return apiErr(http.StatusConflict, CodeExists, "%v", err)
	case errors.Is(err, infinity.ErrConflict):
		return apiErr(http.StatusConflict, CodeConflict, "%v", err)
	case errors.Is(err, infinity.ErrInvalid):
		return apiErr(http.StatusBadRequest, CodeBadRequest, "%v", err)
	case errors.Is(err, infinity.ErrNotImplemented):
		return apiErr(http.StatusNotImplemented, CodeNotImplemented, "%v", err)
	case errors.Is(err, disk.ErrNoSpace):
		return apiErr(http.StatusInsufficientStorage, CodeInsufficientStorage, "%v", err)
	case errors.Is(err, actors.ErrStopped), errors.Is(err, local.ErrStopped):
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "the daemon is stopping")
	}
	return apiErr(http.StatusInternalServerError, CodeInternal, "%v", err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
	writeJSON(w, ae.Status, map[string]*APIError{"error": ae})
}

// handlerFunc is a route that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (d *Daemon) handle(limit int64, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := h(w, r); err != nil {
			ae := toAPIError(err)
			if ae.Status >= 500 {
				d.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, ae)
		}
	}
}

// rapPrefix is the RAP callback route: {base}/rap/callback/{token}.
const rapPrefix = "/rap/callback/"

// sendViews writes the thread's views that changed since the last call
// (all of them the first time), in type order; false means the client went.
func (d *Daemon) sendViews(enc encoder, id infinity.ThreadID, at int, sent map[string]string) bool {
	views := d.views.of(id)
	types := make([]string, 0, len(views))
	for t := range views {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		c := views[t]
		if sent[t] == string(c) {
			continue
		}
		if enc.Encode(ItemLine{Index: at, View: &ViewLine{Type: t, Content: c}}) != nil {
			return false
		}
		sent[t] = string(c)
	}
	return true
}

// getViews returns the newest view of each type a tool showed for the
// thread (RAP view_update; kept in memory).
func (d *Daemon) getViews(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	if _, err := d.store.Conversations().Thread(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d.views.of(id))
	return nil
}

func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", d.handle(MaxBody, d.getStatus))
	mux.HandleFunc("POST /v1/shutdown", d.handle(MaxBody, d.postShutdown))
	mux.HandleFunc("GET /v1/agents", d.handle(MaxBody, d.getAgents))
	mux.HandleFunc("POST /v1/agents", d.handle(MaxAgentBody, d.postAgent))
	mux.HandleFunc("GET /v1/threads", d.handle(MaxBody, d.getThreads))
	mux.HandleFunc("POST /v1/threads", d.handle(MaxBody, d.postThread))
	mux.HandleFunc("GET /v1/threads/{id}", d.handle(MaxBody, d.getThread))
	mux.HandleFunc("GET /v1/threads/{id}/tree", d.handle(MaxBody, d.getTree))
	mux.HandleFunc("GET /v1/threads/{id}/items", d.handle(MaxBody, d.getItems))
	mux.HandleFunc("POST /v1/threads/{id}/messages", d.handle(MaxBody, d.postMessage))
	mux.HandleFunc("DELETE /v1/threads/{id}", d.handle(MaxBody, d.deleteThread))
	mux.HandleFunc("POST /v1/threads/{id}/close", d.handle(MaxBody, d.threadAction(d.rt.CloseThread)))
	mux.HandleFunc("POST /v1/threads/{id}/compact", d.handle(MaxBody, d.threadAction(d.rt.Compact)))
	mux.HandleFunc("POST /v1/threads/{id}/answer", d.handle(MaxBody, d.postAnswer))
	mux.HandleFunc("GET /v1/threads/{id}/budget", d.handle(MaxBody, d.getBudget))
	mux.HandleFunc("POST /v1/threads/{id}/budget", d.handle(MaxBody, d.postBudget))
	mux.HandleFunc("GET /v1/export", d.handle(MaxBody, d.getExport))
	mux.HandleFunc("POST /v1/import", d.handle(MaxImportBody, d.postImport))
	mux.HandleFunc("POST /v1/threads/{id}/migrate", d.handle(MaxBody, d.postMigrate))
	mux.HandleFunc("POST /v1/migrations/prepare", d.handle(MaxImportBody, d.postMigrationPrepare))
	mux.HandleFunc("POST /v1/migrations/import", d.handle(MaxImportBody, d.postMigrationImport))
	mux.HandleFunc("POST /v1/migrations/{id}/commit", d.handle(MaxBody, d.postMigrationCommit))
	mux.HandleFunc("DELETE /v1/migrations/{id}", d.handle(MaxBody, d.deleteMigration))
	// A source forwards here the callbacks of a session that moved here;
	// the migration's credential authenticates them (forward.go).
	mux.HandleFunc("POST "+MigrationCallbacksPath, d.handle(rap.DefaultMaxBody+MaxBody, d.postMigrationCallback))
	mux.HandleFunc("GET /v1/threads/{id}/views", d.handle(MaxBody, d.getViews))
	mux.HandleFunc("GET /v1/events", d.handle(MaxBody, d.getEvents))
	mux.HandleFunc("GET /v1/threads/{id}/timeline", d.handle(MaxBody, d.getTimeline))
	// Tool servers call back here with the per-call token in the URL (they
	// have no bearer token); the handler verifies it.
	d.callbacks = &rap.Handler{Tokens: d.rapTokens, Sender: oauthSender{d, heldSender{d, d.sender}}, Views: d.views, Log: d.log,
		Reply: func(w http.ResponseWriter, status int, msg string) {
			writeError(w, apiErr(status, codeOf(status), "%s", msg))
		},
		Forward: d.forwardCallback}
	mux.Handle(rapPrefix, d.countCallbacks(d.callbacks))
	// Authorization servers send the user's browser back here; the
	// state parameter authenticates it (mcpoauth.go).
	mux.HandleFunc("GET "+MCPOAuthCallbackPath, d.getMCPCallback)
	mux.Handle("GET /metrics", d.metrics.Handler())
	mux.HandleFunc("GET /healthz", d.getHealth)
	mux.HandleFunc("POST /v1/ui/codes", d.handle(MaxBody, d.postUICode))
	mux.HandleFunc("POST /v1/ui/logout", d.handle(MaxBody, d.uiLogout))
	mux.HandleFunc("GET "+uiLoginPath, d.uiLogin)
	mux.Handle("GET "+uiPrefix, uiStatic())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, uiPrefix, http.StatusSeeOther) })
	mux.HandleFunc("/", d.handle(MaxBody, func(_ http.ResponseWriter, r *http.Request) error {
		return apiErr(http.StatusNotFound, CodeNotFound, "no route %s %s (the API lives under /v1/)", r.Method, r.URL.Path)
	}))
	return d.guard(d.holdMoving(mux))
}

// codeOf is the error code of an HTTP status, for answers whose maker
// knows only the status (the RAP callback handler).
func codeOf(status int) string {
	switch status {
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusInternalServerError:
		return CodeInternal
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return CodeBadRequest
}

// MaxHeaderBytes bounds a request's headers; the server reads up to
// serverHeaderBytes so that a larger one still gets the API's error form.
const (
	MaxHeaderBytes    = 64 << 10
	serverHeaderBytes = 1 << 20
)

// guard checks the request's shape (a clean path, headers within
// MaxHeaderBytes), then Host (against DNS rebinding), Origin and the bearer
// token, before any route runs.
func (d *Daemon) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if clean := path.Clean(r.URL.Path); clean != r.URL.Path && clean+"/" != r.URL.Path {
			// The mux would answer with a redirect, in no API form.
			writeError(w, apiErr(http.StatusBadRequest, CodeBadRequest, "path %q is not clean (it would be %q)", r.URL.Path, clean))
			return
		}
		if n := headerBytes(r.Header); n > MaxHeaderBytes {
			writeError(w, apiErr(http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge, "the headers are %d bytes, more than %d", n, MaxHeaderBytes))
			return
		}
		if r.URL.Path == healthPath {
			next.ServeHTTP(w, r) // says only whether the daemon is up: no token, any Host
			return
		}
		// RAP callbacks are authenticated by their per-call token alone: a
		// tool server behind a tunnel or proxy keeps its own Host header.
		if !d.opts.AllowRemote && !d.loopbackHost(r.Host) && !strings.HasPrefix(r.URL.Path, rapPrefix) {
			writeError(w, apiErr(http.StatusForbidden, CodeBadHost, "Host %q is not this daemon's loopback address", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !d.allowedOrigin(o) {
			writeError(w, apiErr(http.StatusForbidden, CodeBadOrigin, "Origin %q may not call this daemon", o))
			return
		}
		if strings.HasPrefix(r.URL.Path, uiPrefix) || r.URL.Path == "/" || r.Method == http.MethodGet && r.URL.Path == MCPOAuthCallbackPath {
			// The UI's files and its login: no data without a session; the
			// MCP authorization callback (GET only: a browser's redirect):
			// its state authenticates it.
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if strings.HasPrefix(r.URL.Path, rapPrefix) || r.Method == http.MethodPost && r.URL.Path == MigrationCallbacksPath {
			// Authenticated by the callback's own token, or by the
			// credential of the migration that forwards it (POST only:
			// DELETE /v1/migrations/{id} must not match it unguarded).
			ok, tok = true, d.token
		}
		if !ok && r.Header.Get("Authorization") == "" {
			if session, err := d.cookieAuth(r); err != nil {
				writeError(w, err)
				return
			} else if session {
				next.ServeHTTP(w, r)
				return
			}
		}
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(d.token)) != 1 {
			writeError(w, apiErr(http.StatusUnauthorized, CodeUnauthorized,
				"missing or wrong bearer token (the CLI reads it from %s/%s)", d.opts.Home, tokenFile))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost accepts the Host header of a request made to the daemon's
// own port by a loopback name.
func (d *Daemon) loopbackHost(host string) bool {
	return loopbackHostPort(host, portOf(d.Addr()))
}

// portOf is the port of a listener's address.
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// loopbackHostPort accepts a Host header naming a loopback address with
// the given port.
func loopbackHostPort(host, myPort string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return false
	}
	if port != myPort {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// allowedOrigin accepts only pages served by the daemon itself.
func (d *Daemon) allowedOrigin(origin string) bool {
	host, ok := strings.CutPrefix(origin, "http://")
	return ok && d.loopbackHost(host)
}

// decode reads a JSON body strictly into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON body: more than one value")
	}
	return nil
}

// threadID reads and checks the {id} path segment.
func threadID(r *http.Request) (infinity.ThreadID, error) {
	id := infinity.ThreadID(r.PathValue("id"))
	if !infinity.ValidThreadID(id) {
		return "", apiErr(http.StatusBadRequest, CodeBadRequest, "%q is not a thread id", id)
	}
	return id, nil
}

// StatusView is GET /v1/status.
type StatusView struct {
	Info
	Uptime   string `json:"uptime"`
	Threads  int    `json:"threads"`
	Active   int    `json:"active"`
	Waiting  int    `json:"waiting_messages"`
	Agents   int    `json:"agents"`
	StoreDir string `json:"store_dir"`
	// ModelLimits are the rate limits in force, by provider or model
	// (agent files' rate_limit).
	ModelLimits map[string]actors.ModelLimit `json:"model_limits,omitempty"`
	// ModelCalls are the model calls in flight and waiting.
	ModelCalls actors.ModelCalls `json:"model_calls"`
	// Host is how busy the slices' workers are: the workers, the runs
	// queued for one, and the slices waiting for their model without one.
	Host actors.HostStats `json:"host"`
}

func (d *Daemon) getStatus(w http.ResponseWriter, r *http.Request) error {
	threads, waiting, err := d.store.Counts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, StatusView{
		Info:    Info{PID: os.Getpid(), Addr: d.Addr(), Home: d.opts.Home, Version: d.opts.Version, Started: d.started},
		Uptime:  time.Since(d.started).Round(time.Second).String(),
		Threads: threads, Active: d.rt.Active(), Waiting: waiting, Agents: len(d.agents.List()) + 1,
		StoreDir: d.store.Dir(), ModelLimits: d.rt.ModelLimits(), ModelCalls: d.rt.ModelCalls(), Host: d.rt.HostStats(),
	})
	return nil
}

func (d *Daemon) postShutdown(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "stopping"})
	d.stopOnce.Do(func() { close(d.shutdown) })
	return nil
}

// AgentRequest registers an agent file.
type AgentRequest struct {
	// Origin names the file in errors (its path on the client).
	Origin string `json:"origin"`
	AgentSource
}

func (d *Daemon) getAgents(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, append([]AgentInfo{{Key: "demo", Name: "demo", Provider: "scripted",
		Description: "the bundled offline demo", Models: d.agents.modelsOf("demo").Choices}}, d.agents.List()...))
	return nil
}

func (d *Daemon) postAgent(w http.ResponseWriter, r *http.Request) error {
	var req AgentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Origin == "" {
		req.Origin = "agent.yaml"
	}
	info, err := d.agents.Register(r.Context(), req.Origin, req.AgentSource)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, info)
	return nil
}

// StartRequest starts a root thread.
type StartRequest struct {
	// Agent is an agent key, a registered agent's unique name, or "demo".
	Agent string            `json:"agent"`
	Text  string            `json:"text"`
	ID    infinity.ThreadID `json:"id,omitempty"`
	// Metadata is stored as the root's metadata.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Model, when set, runs the thread (and its children) on another model
	// than the agent's default, as "provider/model": the default or one of
	// the agent file's models (else CodeUnknownModel, with the choices).
	Model string `json:"model,omitempty"`
	// Budget, when set, caps what the tree may spend (raised later with
	// POST /v1/threads/{id}/budget); without it the agent file's budget
	// applies, if it has one.
	Budget *infinity.Budget `json:"budget,omitempty"`
}

// BudgetRequest raises a tree's budget.
type BudgetRequest struct {
	// Add is what the budget is raised by (it sets one on a tree that has
	// none).
	Add infinity.Budget `json:"add"`
	// ID makes a retry harmless: a raise with an id the root saw is
	// applied once.
	ID infinity.MessageID `json:"id,omitempty"`
}

// Started is the answer to a start or a send.
type Started struct {
	Thread  infinity.ThreadID  `json:"thread"`
	Message infinity.MessageID `json:"message,omitempty"`
}

func (d *Daemon) postThread(w http.ResponseWriter, r *http.Request) error {
	var req StartRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	agent := req.Agent
	if agent == "" {
		agent = "demo"
	}
	if agent != "demo" {
		info, ok := d.agents.Find(agent)
		if !ok {
			return apiErr(http.StatusNotFound, CodeNotFound, "no agent %q is registered (register its file first: infinity run FILE)", agent)
		}
		agent = info.Key
	}
	if req.Model != "" {
		am := d.agents.modelsOf(agent)
		if !slices.Contains(am.Choices, req.Model) {
			e := apiErr(http.StatusBadRequest, CodeUnknownModel, "agent %s does not run on model %q: choose one of %s (add others to its file's models list)",
				agent, req.Model, strings.Join(am.Choices, ", "))
			e.Choices = am.Choices
			return e
		}
		if ref, err := infinity.ParseModelRef(req.Model); err == nil && am.Unavailable[ref.Provider] != nil {
			return apiErr(http.StatusBadRequest, CodeBadRequest, "model %s cannot run: %v. %s",
				req.Model, am.Unavailable[ref.Provider], envHint(d.opts.Home))
		}
	}
	budget := req.Budget
	if budget == nil {
		budget = d.agents.modelsOf(agent).Budget // the agent file's
	}
	if budget != nil && budget.USD > 0 {
		am := d.agents.modelsOf(agent)
		model := am.Default
		if req.Model != "" {
			model = req.Model
		}
		if _, ok := am.Prices.Price(model); !ok {
			return apiErr(http.StatusBadRequest, CodeBadRequest, "a budget in USD needs the price of %s, which has none: give its price (price: in the agent file's model, or a prices file) or cap tokens or model calls instead", model)
		}
	}
	id, err := d.rt.Start(r.Context(), actors.StartOptions{Agent: agent, Text: req.Text, ID: req.ID, Metadata: req.Metadata, Model: req.Model, Budget: budget})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, Started{Thread: id})
	return nil
}

// MessageRequest sends user text to a thread.
type MessageRequest struct {
	Text string `json:"text"`
	// ID makes a resend harmless: a message id the thread saw is applied
	// once. The same id with other text is refused (409 conflict).
	ID infinity.MessageID `json:"id,omitempty"`
}

func (d *Daemon) postMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req MessageRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "the message text is empty")
	}
	msg := infinity.InputMessage{ID: req.ID, GroupID: id, Content: infinity.TextContent(req.Text)}
	claimed := false
	if msg.ID == "" {
		msg.ID = infinity.NewMessageID()
	} else if claimed, err = d.sameMessage(r.Context(), msg); err != nil {
		return err
	}
	if err := d.rt.SendMessage(r.Context(), msg); err != nil {
		if claimed {
			d.sends.forget(msg.GroupID, msg.ID)
		}
		return err
	}
	writeJSON(w, http.StatusAccepted, Started{Thread: id, Message: msg.ID})
	return nil
}

// sameMessage refuses a message whose id the thread already has with other
// text (ErrConflict): a resend is harmless only when it is the same
// message. The message is claimed first (recorded in d.sends, which holds
// it while its thread runs it, until its history has it), so that of two
// requests at once with one id only one goes on; then the sender's queue
// and the history are read for a message with that id from before (an
// earlier run of the daemon, or one applied and forgotten). claimed is
// true when this request holds the claim: the caller forgets it if
// sending fails.
func (d *Daemon) sameMessage(ctx context.Context, msg infinity.InputMessage) (claimed bool, err error) {
	conflict := func() error {
		return fmt.Errorf("message %s was sent to %s before with other text; a message id names one message (send this one with another id, or none): %w",
			msg.ID, msg.GroupID, infinity.ErrConflict)
	}
	text, claimed := d.sends.claim(msg.GroupID, msg.ID, msg.Content.Text)
	if !claimed {
		if text != msg.Content.Text {
			return false, conflict()
		}
		return false, nil
	}
	found := false
	if q, ok := d.sender.Queued(msg.GroupID, msg.ID); ok {
		text, found = q.Content.Text, true
	} else {
		var err error
		if text, found, err = appliedText(ctx, d.store.Conversations(), msg.GroupID, msg.ID); err != nil {
			d.sends.forget(msg.GroupID, msg.ID)
			return false, err
		}
	}
	if !found {
		return true, nil
	}
	d.sends.forget(msg.GroupID, msg.ID) // known from before: the queue or the history answers for it
	if text != msg.Content.Text {
		return false, conflict()
	}
	return false, nil
}

// appliedText returns the text of the user item a thread's history holds
// for message id, if the thread applied it. A message id not applied
// costs one lookup; one that was is looked for from the newest items
// back, a page at a time (a resend comes soon after the first send), so
// a thread with months of history is not read whole for every message
// sent with an id.
func appliedText(ctx context.Context, conv infinity.ConversationStore, thread infinity.ThreadID, id infinity.MessageID) (text string, found bool, err error) {
	if applied, err := conv.Applied(ctx, thread, id); err != nil || !applied {
		return "", false, err
	}
	n, err := conv.Len(ctx, thread)
	if err != nil {
		return "", false, err
	}
	const page = 256
	for to := n; to > 0; to -= page {
		items, err := conv.Items(ctx, thread, max(0, to-page), to)
		if err != nil {
			return "", false, err
		}
		for i := len(items) - 1; i >= 0; i-- {
			if it := &items[i]; it.ID == string(id) && it.Kind == infinity.KindUser {
				return it.Text, true, nil
			}
		}
	}
	return "", false, nil
}

// getBudget answers with a root's tree budget and what the tree spent.
func (d *Daemon) getBudget(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	tb, err := d.rt.TreeBudget(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tb)
	return nil
}

// postBudget raises a root's tree budget; the threads it stopped go on.
func (d *Daemon) postBudget(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req BudgetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	msg, err := d.rt.RaiseBudget(r.Context(), id, req.Add, req.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, Started{Thread: id, Message: msg})
	return nil
}

// threadAction is a POST that asks the runtime to do something to a
// thread (close it, compact it) and answers with the message that asks.
func (d *Daemon) threadAction(act func(context.Context, infinity.ThreadID) (infinity.MessageID, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := threadID(r)
		if err != nil {
			return err
		}
		msg, err := act(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, Started{Thread: id, Message: msg})
		return nil
	}
}

// ListQuery is the query of GET /v1/threads. Without Limit the answer
// holds every thread that matches; the header X-Total-Count says how many
// match in all.
type ListQuery struct {
	// Roots keeps root threads only (roots=true).
	Roots bool
	// Search keeps threads whose id or agent contains it, case-insensitively
	// (q=).
	Search string
	// Status keeps threads with this status (status=running, sleeping,
	// waiting, failed, closed).
	Status string
	// Newest lists the newest first (order=newest; default oldest first).
	Newest bool
	// Offset skips that many matches; Limit (> 0) bounds the answer.
	Offset, Limit int
}

// maxListLimit bounds limit= (a page, not the whole store).
const maxListLimit = 1000

var listStatuses = []string{StatusRunning, StatusSleeping, StatusWaiting, StatusFailed, StatusOverBudget, StatusClosed}

func parseListQuery(q url.Values) (ListQuery, error) {
	var lq ListQuery
	for k := range q {
		if !slices.Contains([]string{"roots", "q", "status", "order", "offset", "limit", "csrf"}, k) { // csrf: the web UI's key
			return lq, apiErr(http.StatusBadRequest, CodeBadRequest, "unknown query parameter %q (roots, q, status, order, offset, limit)", k)
		}
	}
	switch v := q.Get("roots"); v {
	case "", "false":
	case "true":
		lq.Roots = true
	default:
		return lq, apiErr(http.StatusBadRequest, CodeBadRequest, "roots=%q: want true or false", v)
	}
	switch v := q.Get("order"); v {
	case "", "oldest":
	case "newest":
		lq.Newest = true
	default:
		return lq, apiErr(http.StatusBadRequest, CodeBadRequest, "order=%q: want oldest or newest", v)
	}
	lq.Search = strings.ToLower(q.Get("q"))
	if lq.Status = q.Get("status"); lq.Status != "" && !slices.Contains(listStatuses, lq.Status) {
		return lq, apiErr(http.StatusBadRequest, CodeBadRequest, "status=%q: want one of %s", lq.Status, strings.Join(listStatuses, ", "))
	}
	num := func(name string, max int) (int, error) {
		s := q.Get(name)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > max {
			return 0, apiErr(http.StatusBadRequest, CodeBadRequest, "%s=%q: want a whole number from 0 to %d", name, s, max)
		}
		return n, nil
	}
	var err error
	if lq.Offset, err = num("offset", math.MaxInt32); err != nil {
		return lq, err
	}
	if lq.Limit, err = num("limit", maxListLimit); err != nil {
		return lq, err
	}
	return lq, nil
}

// matches applies the filters that need no history.
func (lq ListQuery) matches(info infinity.ThreadInfo) bool {
	if lq.Roots && !info.IsRoot() {
		return false
	}
	return lq.Search == "" || strings.Contains(strings.ToLower(string(info.ID)), lq.Search) ||
		strings.Contains(strings.ToLower(info.Agent), lq.Search)
}

// getThreads lists threads. A page (limit=) reads the histories of the
// threads on it and of their subtrees only, unless status= asks for every
// candidate's status.
func (d *Daemon) getThreads(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	all, err := d.store.Threads(r.Context())
	if err != nil {
		return err
	}
	if lq.Newest {
		slices.Reverse(all)
	}
	sn, err := d.snapshot(r.Context())
	if err != nil {
		return err
	}
	out := []ThreadView{}
	var infos []infinity.ThreadInfo // of out
	own := map[infinity.ThreadID]Totals{}
	total := 0
	for _, info := range all {
		if !lq.matches(info) {
			continue
		}
		page := total >= lq.Offset && (lq.Limit == 0 || len(out) < lq.Limit)
		if !page && lq.Status == "" {
			total++ // counted without reading its history
			continue
		}
		v, err := d.view(r.Context(), info, sn)
		if errors.Is(err, infinity.ErrNotFound) {
			continue // deleted since the listing was read
		}
		if err != nil {
			return err
		}
		if lq.Status != "" && v.Status != lq.Status {
			continue
		}
		total++
		if page {
			own[info.ID] = v.Subtree
			out = append(out, v)
			infos = append(infos, info)
		}
	}
	if lq.Limit == 0 {
		subs, err := d.subtrees(r.Context(), all, own)
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Subtree = subs[out[i].ID]
		}
	} else {
		for i := range out {
			// The view holds the thread's own totals: add its children's
			// subtrees (not reading its history a second time).
			kids, err := d.store.Conversations().Children(r.Context(), infos[i].ID)
			if err != nil && !errors.Is(err, infinity.ErrNotFound) {
				return err
			}
			for _, k := range kids {
				sub, err := d.subtree(r.Context(), k)
				switch {
				case errors.Is(err, infinity.ErrNotFound): // deleted meanwhile
				case err != nil:
					return err
				default:
					out[i].Subtree = out[i].Subtree.add(sub)
				}
			}
		}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (d *Daemon) getThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	info, err := d.store.Conversations().Thread(r.Context(), id)
	if err != nil {
		return err
	}
	sn, err := d.snapshot(r.Context())
	if err != nil {
		return err
	}
	v, err := d.view(r.Context(), info, sn)
	if err != nil {
		return err
	}
	if v.Subtree, err = d.subtree(r.Context(), info); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (d *Daemon) getTree(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	sn, err := d.snapshot(r.Context())
	if err != nil {
		return err
	}
	t, err := d.tree(r.Context(), id, sn)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// ItemLine is one line of GET /v1/threads/{id}/items (NDJSON): an item
// with its position in the thread's own history, or, last, End.
type ItemLine struct {
	Index int            `json:"index"`
	Item  *infinity.Item `json:"item,omitempty"`
	// Cost is what the item's model response cost in USD, on an item with
	// usage whose model has a price.
	Cost *float64 `json:"cost,omitempty"`
	// Slice is a slice's usage, in a followed stream (kept in memory: a
	// stream shows the slices that end while it runs).
	Slice *SliceLine `json:"slice,omitempty"`
	// Compacted says the history was compacted, in a followed stream.
	Compacted *CompactedLine `json:"compacted,omitempty"`
	// View is a tool's view of the thread (RAP view_update), in a followed
	// stream: every current view first, then each new one as it comes.
	View *ViewLine `json:"view,omitempty"`
	// End says why a followed stream ended: "closed" (the thread closed).
	End string `json:"end,omitempty"`
}

// ViewLine is the newest content of one view type.
type ViewLine struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

func (d *Daemon) getItems(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from := 0
	if s := q.Get("from"); s != "" {
		if from, err = strconv.Atoi(s); err != nil || from < 0 {
			return apiErr(http.StatusBadRequest, CodeBadRequest, "from=%q is not a position", s)
		}
	}
	follow := q.Get("follow") == "true"
	conv := d.store.Conversations()
	info, err := conv.Thread(r.Context(), id)
	if err != nil {
		return err
	}
	am := d.agents.modelsOf(info.Agent)
	model := threadModel(info, am)
	var pokes <-chan struct{}
	if follow {
		// Subscribed first: the thread's slice events are kept while a
		// view follows it, and dropped when the last one leaves.
		ch, cancel := d.hub.subscribe(id)
		defer func() {
			cancel()
			if !d.hub.followed(id) {
				d.live.forget(id)
			}
		}()
		pokes = ch
	}
	_, liveSeq := d.live.since(id, ^uint64(0))
	s := startStream(w, wantsSSE(r))
	enc, flush := s.enc, s.flush
	tick := time.NewTicker(time.Second) // a safety net under the pokes
	defer tick.Stop()
	sentViews := map[string]string{}
	for {
		// Events first: the items of a slice that ended are committed.
		var events []actors.Event
		if follow {
			events, liveSeq = d.live.since(id, liveSeq)
		}
		items, err := conv.Items(r.Context(), id, from, -1)
		if err != nil {
			return nil // headers are out: the stream just ends
		}
		for i := range items {
			if enc.Encode(ItemLine{Index: from + i, Item: &items[i], Cost: itemCost(items[i], model, am.Prices)}) != nil {
				return nil
			}
		}
		from += len(items)
		for _, ev := range events {
			l := ItemLine{Index: from}
			switch ev.Kind {
			case actors.EventSlice:
				sl := &SliceLine{Usage: ev.Usage, Items: ev.Items, Model: model}
				if usd, ok := am.Prices.Cost(model, ev.Usage); ok {
					sl.Cost = &usd
				}
				l.Slice = sl
			case actors.EventCompacted:
				if ev.Summary == nil {
					continue
				}
				l.Compacted = &CompactedLine{Covers: ev.Summary.Covers, Position: ev.Summary.Position, Chars: len(ev.Summary.Text)}
			}
			if enc.Encode(l) != nil {
				return nil
			}
		}
		if follow && !d.sendViews(enc, id, from, sentViews) {
			return nil
		}
		if !follow {
			flush()
			return nil
		}
		info, err := conv.Thread(r.Context(), id)
		if err != nil {
			return nil
		}
		if info.Closed {
			_ = enc.Encode(ItemLine{Index: from, End: "closed"})
			flush()
			return nil
		}
		flush()
		select {
		case <-pokes:
		case <-tick.C:
		case <-r.Context().Done():
			return nil
		case <-d.hub.done:
			return nil
		}
	}
}

func (d *Daemon) getExport(w http.ResponseWriter, r *http.Request) error {
	all, err := d.store.Threads(r.Context())
	if err != nil {
		return err
	}
	var roots []infinity.ThreadID
	keys := map[string]bool{}
	for _, t := range all {
		if t.IsRoot() {
			roots = append(roots, t.ID)
		}
		keys[t.Agent] = true
	}
	w.Header().Set("Content-Type", "application/json")
	return Export(r.Context(), d.store.Conversations(), d.store.State(), roots, d.agents.Sources(keys), time.Now().UTC(), w)
}

func (d *Daemon) postImport(w http.ResponseWriter, r *http.Request) error {
	s, err := ReadSessions(r.Body)
	if err != nil {
		return err
	}
	if err := d.registerSources(r.Context(), "sessions.json", s.Agents); err != nil {
		return err
	}
	rep, err := Import(r.Context(), d.store.Conversations(), d.store.State(), s)
	if err != nil {
		return err
	}
	if err := d.armPending(r.Context(), s, rep.Imported); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// headerBytes is the size of the header lines of h.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	return n
}
