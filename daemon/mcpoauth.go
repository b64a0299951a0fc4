package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/tools/mcp"
)

// MCP servers with an oauth block (agentfile.OAuth) get their tokens
// through MCP's authorization flow, run by tools/mcp's Authorizer:
//
//   - Such a server is connected when a slice first needs its tools (as a
//     local one), not when the agent loads, so an agent whose server was
//     never authorized still registers and its threads start.
//   - When the server answers 401, an authorization starts: its URL is
//     shown on every thread of the agent that waits for it (status
//     waiting, Detail "authorization of MCP server NAME: open URL", and
//     ThreadView.Authorize, as a RAP tool's oauth request: infinity ls,
//     the thread's page in the web UI). Such a thread does not call its
//     model until the user is done: the agent's gate (actors.Agent.Gate)
//     ends its slice before the model call with errMCPAuthorization
//     (infinity.ErrAwaitingUser: no error is logged, nothing backs off,
//     and no model call is made or counted) and its input stays queued, run at once when
//     the server is authorized (after a restart too) and looked at again
//     every few minutes meanwhile (so an expired URL is renewed); so the
//     model never runs without tools the agent file names.
//   - The authorization server sends the browser back to
//     GET /oauth/mcp/callback on the daemon's listener, which needs no
//     bearer token: the state parameter authenticates it, good for one
//     answer, until the URL expires (mcp.DefaultAuthorizationExpiry; the
//     next try makes a new one). The daemon exchanges the code (PKCE) and
//     wakes the threads that waited.
//   - Tokens are kept in HOME/mcp-oauth/ (0700), one file (0600) per
//     server URL, client id and scopes, shared by every agent that names
//     the same; they are used again after a restart and refreshed when
//     they expire (the refreshed ones kept). They are never logged, put in
//     history or in an export. Delete a file, and restart the daemon, to
//     authorize that server again.
const (
	mcpOAuthDir = "mcp-oauth"
	// MCPOAuthCallbackPath is where authorization servers send the
	// browser back; the daemon registers http://ADDR/oauth/mcp/callback
	// as its redirect URI.
	MCPOAuthCallbackPath = "/oauth/mcp/callback"
)

// mcpAuthTimeout bounds each request to an MCP server's authorization
// server.
const mcpAuthTimeout = 30 * time.Second

// errMCPAuthorization ends the slices of a thread whose agent has an MCP
// server that waits for the user's authorization, before their model call.
var errMCPAuthorization = errors.New("waits for the user's authorization: the thread goes on once the user opened the authorization URL that infinity ls shows for it")

// mcpAuth holds the daemon's authorizers, one per server URL, client id
// and scopes, and the threads that wait for each.
type mcpAuth struct {
	d        *Daemon
	dir      string
	redirect string
	client   *http.Client
	log      *slog.Logger

	mu      sync.Mutex
	servers map[string]*mcpAuthServer // by key
	closed  bool
}

// mcpAuthServer is one authorizer and the threads its state holds back.
type mcpAuthServer struct {
	label   string
	a       *mcp.Authorizer
	waiting map[infinity.ThreadID]bool // guarded by mcpAuth.mu
	// stale are the sessions (roots) whose tools were last taken while
	// the server waited for the user: a slice that began then runs
	// without the server's tools, so its model calls are held back too
	// until a slice takes the tools again (authSource). Guarded by
	// mcpAuth.mu.
	stale map[infinity.ThreadID]bool
}

func newMCPAuth(d *Daemon, home, addr string, client *http.Client, log *slog.Logger) *mcpAuth {
	return &mcpAuth{d: d, dir: filepath.Join(home, mcpOAuthDir), redirect: mcpRedirectURL(addr),
		client: client, log: log, servers: map[string]*mcpAuthServer{}}
}

// mcpRedirectURL is the redirect URI for a listener at addr. A listener on
// every interface (0.0.0.0 or ::, with --allow-remote) has no address a
// browser can be sent to: the URI names the loopback address instead
// (RFC 8252 §7.3), which a browser on the daemon's host (or one whose
// port is forwarded there) reaches.
func mcpRedirectURL(addr string) string {
	return "http://" + reachable(addr) + MCPOAuthCallbackPath
}

// ensureDir makes the tokens directory, 0700 even when it was there
// before with a looser mode.
func (m *mcpAuth) ensureDir() error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("daemon: MCP tokens directory: %w", err)
	}
	fi, err := os.Stat(m.dir)
	if err != nil {
		return fmt.Errorf("daemon: MCP tokens directory: %w", err)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(m.dir, 0o700); err != nil {
			return fmt.Errorf("daemon: MCP tokens directory %s is open to others and cannot be fixed: %w", m.dir, err)
		}
	}
	return nil
}

// server returns the authorizer of an MCP entry with an oauth block,
// making it (from its tokens file, if any) on first use.
func (m *mcpAuth) server(s agentfile.MCPServer, f *agentfile.File) (*mcpAuthServer, error) {
	secret, err := s.ResolveOAuth()
	if err != nil {
		return nil, fmt.Errorf("%w. %s", err, valueHint())
	}
	scopes := slices.Clone(s.OAuth.Scopes)
	slices.Sort(scopes)
	sum := sha256.Sum256([]byte(s.URL + "\x00" + s.OAuth.ClientID + "\x00" + strings.Join(scopes, " ")))
	key := hex.EncodeToString(sum[:12])
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("daemon: MCP authorization: %w", actors.ErrStopped)
	}
	if srv, ok := m.servers[key]; ok {
		return srv, nil
	}
	if err := m.ensureDir(); err != nil {
		return nil, err
	}
	srv := &mcpAuthServer{label: s.Label(), waiting: map[infinity.ThreadID]bool{}, stale: map[infinity.ThreadID]bool{}}
	a, err := mcp.NewAuthorizer(mcp.OAuthConfig{
		Server: s.URL, Name: s.Label(), ClientID: s.OAuth.ClientID, ClientSecret: secret, Scopes: s.OAuth.Scopes,
		RedirectURL: m.redirect, Store: mcp.FileTokenStore{Path: filepath.Join(m.dir, key+".json")},
		HTTPClient: m.client, Log: m.log, OnChange: func() { m.changed(srv) },
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %s.oauth: %w", f.Path(), s.Field(), err)
	}
	srv.a = a
	m.servers[key] = srv
	return srv, nil
}

// wakeWaiting wakes the threads that wait for srv.
func (m *mcpAuth) wakeWaiting(srv *mcpAuthServer) {
	m.mu.Lock()
	ids := make([]infinity.ThreadID, 0, len(srv.waiting))
	for id := range srv.waiting {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.wake(id)
	}
}

// changed shows a new state to the threads that wait (their views change)
// and, once the server is authorized, wakes them.
func (m *mcpAuth) changed(srv *mcpAuthServer) {
	st := srv.a.State()
	m.mu.Lock()
	ids := make([]infinity.ThreadID, 0, len(srv.waiting))
	for id := range srv.waiting {
		ids = append(ids, id)
	}
	if st.Authorized {
		clear(srv.waiting)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if st.Authorized {
			m.wake(id)
		}
		m.d.hub.poke(id)
	}
	if st.Authorized {
		m.log.Info("MCP server authorized", mcp.LogKey, srv.label, "threads", len(ids))
	}
}

// check returns errMCPAuthorization (wrapped, ErrAwaitingUser) when one of
// servers waits for the user, and then remembers that thread (of session
// root) waits for it; or when the slice began while one did, and has not
// its tools. The slice ends and its input stays queued (durably), looked
// at again every few minutes, and at once when the server is authorized.
func (m *mcpAuth) check(servers []*mcpAuthServer, thread, root infinity.ThreadID) error {
	for _, s := range servers {
		// The state is read under m.mu, as changed reads the waiting
		// threads: a change between the two would wake the others and not
		// this thread. (State takes the authorizer's lock under m.mu; the
		// authorizer never holds its lock while it takes m.mu, as it calls
		// OnChange on a goroutine of its own.)
		m.mu.Lock()
		needs := s.a.State().NeedsUser()
		stale := s.stale[root]
		if needs {
			s.waiting[thread], s.stale[root] = true, true
		}
		m.mu.Unlock()
		switch {
		case needs:
			return fmt.Errorf("MCP server %s %w: %w", s.label, errMCPAuthorization, infinity.ErrAwaitingUser)
		case stale:
			// Authorized after this slice took its tools: it fails before
			// its model call, and its retry (after the runtime's short
			// backoff) takes them.
			return fmt.Errorf("MCP server %s was authorized after this slice took its tools; it runs again with them: %w", s.label, infinity.ErrRetryable)
		}
	}
	return nil
}

// wake runs a thread's queued input now.
func (m *mcpAuth) wake(id infinity.ThreadID) {
	// A tree that is moving runs wherever the move leaves it: its queued
	// input is re-armed here if the move is called off, or runs at the
	// destination.
	m.d.moves.gate.RLock()
	defer m.d.moves.gate.RUnlock()
	if m.d.moving(m.d.bgCtx, id) {
		return
	}
	if err := m.d.rt.Wake(id); err != nil && !errors.Is(err, actors.ErrStopped) {
		m.log.Warn("thread not woken after an MCP authorization; it goes on at its next retry", "thread", id, "err", err)
	}
}

// authSource is the agent's lazy MCP source, noting for the gate which
// sessions took the tools of servers that no longer wait for the user.
type authSource struct {
	m       *mcpAuth
	src     actors.ToolSource
	servers []*mcpAuthServer
}

func (a authSource) Tools(ctx context.Context, root infinity.ThreadID) ([]infinity.Tool, error) {
	tools, err := a.src.Tools(ctx, root)
	for _, s := range a.servers {
		if !s.a.State().NeedsUser() {
			a.m.mu.Lock()
			delete(s.stale, root)
			a.m.mu.Unlock()
		}
	}
	// A server that waits for the user is no failure to report (as an
	// error on every look): the gate holds the thread's model calls
	// until it is authorized, and the thread shows why.
	return tools, withoutAwaiting(err)
}

// withoutAwaiting is err without its parts that say a server waits for
// the user's authorization (nil when that is all it says).
func withoutAwaiting(err error) error {
	if err == nil {
		return nil
	}
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	var rest []error
	for _, e := range parts {
		if !errors.Is(e, mcp.ErrAuthorizationRequired) {
			rest = append(rest, e)
		}
	}
	if len(rest) == len(parts) {
		return err
	}
	return errors.Join(rest...)
}

// mcpWait is what a thread held back by an MCP authorization shows.
type mcpWait struct {
	detail    string
	authorize *Authorize
}

// waitingOn returns what holds thread id back, or nil.
func (m *mcpAuth) waitingOn(id infinity.ThreadID) *mcpWait {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	var held []*mcpAuthServer
	for _, s := range m.servers {
		if s.waiting[id] {
			held = append(held, s)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(held, func(a, b *mcpAuthServer) int { return strings.Compare(a.label, b.label) })
	for _, s := range held {
		st := s.a.State()
		switch {
		case st.URL != "":
			what := "MCP server " + s.label
			return &mcpWait{detail: "authorization of " + what + ": open " + st.URL, authorize: &Authorize{Tool: what, URL: st.URL}}
		case st.Err != nil:
			return &mcpWait{detail: fmt.Sprintf("authorization of MCP server %s failed (%v); a new authorization URL comes with the next try", s.label, st.Err)}
		}
	}
	return nil
}

// complete hands a redirect to the authorization that waits with its
// state.
func (m *mcpAuth) complete(ctx context.Context, r *http.Request) (string, error) {
	q := r.URL.Query()
	if q.Get("state") == "" {
		return "", apiErr(http.StatusBadRequest, CodeBadRequest, "the redirect has no state parameter: open the authorization URL that infinity ls shows")
	}
	m.mu.Lock()
	servers := make([]*mcpAuthServer, 0, len(m.servers))
	for _, s := range m.servers {
		servers = append(servers, s)
	}
	m.mu.Unlock()
	for _, s := range servers {
		err := s.a.Complete(ctx, q)
		switch {
		case errors.Is(err, mcp.ErrUnknownState):
			continue
		case errors.Is(err, mcp.ErrAuthorizationFailed):
			// The threads try again now, which starts a new authorization
			// and shows its URL (a wake per answer from the user: no loop).
			m.wakeWaiting(s)
			return "", apiErr(http.StatusBadGateway, CodeAuthorizationFailed, "%v; the thread shows a new authorization URL at its next try (infinity ls)", err)
		case err != nil:
			return "", err
		}
		return s.label, nil
	}
	return "", apiErr(http.StatusBadRequest, CodeUnknownState,
		"no MCP authorization waits for this state: it is unknown, was already used, or expired; open the authorization URL that infinity ls shows now")
}

// Error codes of GET /oauth/mcp/callback.
const (
	// CodeUnknownState: no authorization waits for the redirect's state
	// (unknown, already used or expired).
	CodeUnknownState = "unknown_state"
	// CodeAuthorizationFailed: the authorization server refused, or the
	// code could not be exchanged for tokens.
	CodeAuthorizationFailed = "authorization_failed"
)

// getMCPCallback receives the browser sent back by an authorization
// server. It needs no bearer token: the state authenticates it.
func (d *Daemon) getMCPCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	label, err := d.mcpAuth.complete(ctx, r)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "MCP server %s is authorized: the threads that waited for it go on. You can close this page.\n", label)
}

// close ends the authorizations that wait.
func (m *mcpAuth) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, s := range m.servers {
		s.a.Close()
	}
}

// oauthServer prepares an MCP entry with an oauth block: an endpoint
// connected when a slice first needs it, authorized by the daemon's
// authorizer for it.
func (te toolEnv) oauthServer(s agentfile.MCPServer, f *agentfile.File, opts []mcp.Option) (mcp.Endpoint, *mcpAuthServer, error) {
	headers, err := s.ResolveHeaders()
	if err != nil {
		return mcp.Endpoint{}, nil, fmt.Errorf("%w. %s", err, valueHint())
	}
	if te.oauth == nil {
		return mcp.Endpoint{}, nil, fmt.Errorf("%s: %s.oauth: this program cannot run MCP's authorization flow: %w", f.Path(), s.Field(), infinity.ErrNotImplemented)
	}
	srv, err := te.oauth.server(s, f)
	if err != nil {
		return mcp.Endpoint{}, nil, err
	}
	opts = append(opts, mcp.WithHTTPClient(te.client), mcp.WithHeaders(headers), mcp.WithOAuth(srv.a))
	return mcp.Endpoint{URL: s.URL, Options: opts}, srv, nil
}

// gate holds back the model calls of a's threads while one of servers
// waits for the user's authorization (see check), and returns src (the
// servers' source) noting which sessions took their tools.
func (m *mcpAuth) gate(a *actors.Agent, src actors.ToolSource, servers []*mcpAuthServer) actors.ToolSource {
	prev := a.Gate
	a.Gate = func(ctx context.Context, thread, root infinity.ThreadID) error {
		if prev != nil {
			if err := prev(ctx, thread, root); err != nil {
				return err
			}
		}
		return m.check(servers, thread, root)
	}
	return authSource{m: m, src: src, servers: servers}
}
