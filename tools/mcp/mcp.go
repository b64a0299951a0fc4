package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/procsup"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Defaults of the options.
const (
	// DefaultTimeout bounds one tool call (WithTimeout).
	DefaultTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds connecting: dialling and initializing
	// a remote server, starting and initializing a local one
	// (WithConnectTimeout).
	DefaultConnectTimeout = 30 * time.Second
	// DefaultIdle is how long a local server may go unused before it is
	// stopped (WithIdle).
	DefaultIdle = procsup.DefaultIdle
)

// terminateAfter is how long a local server has to exit after its input
// is closed before it is sent SIGTERM (and as long again before SIGKILL).
const terminateAfter = 2 * time.Second

// LogKey is the log attribute that names a local server in the lines of
// its standard error and its starts and stops.
const LogKey = "mcp_server"

// ErrCollision is wrapped by the errors of Connect and Collect when two tools
// share a name.
var ErrCollision = errors.New("tool name collision")

// builtins are the engine's own tool names (actors/builtins.go); an MCP tool
// may not shadow them. Kept here so tools do not import the engine.
var builtins = []string{"sleep", "sleep_until", "sleep_until_event_or_input", "spawn_thread",
	"report_to_parent", "close_thread", "send_message_to_child", "cancel_subscription",
	"receive_event__injected"}

// Option configures Connect and ConnectCommand.
type Option func(*options)

type options struct {
	httpClient     *http.Client
	timeout        time.Duration
	connectTimeout time.Duration
	clientName     string
	clientVersion  string
	headers        map[string]string
	name           string
	log            *slog.Logger
	idle           time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	oauth          *Authorizer
}

func newOptions(opts []Option) options {
	o := options{timeout: DefaultTimeout, connectTimeout: DefaultConnectTimeout, clientName: "infinity", clientVersion: "dev", idle: DefaultIdle}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithHTTPClient sends every request through c: an *http.Client is used as
// is; any other infinity.HTTPClient (a SigV4 signer) is wrapped.
func WithHTTPClient(c infinity.HTTPClient) Option {
	return func(o *options) {
		if hc, ok := c.(*http.Client); ok {
			o.httpClient = hc
			return
		}
		o.httpClient = &http.Client{Transport: doer{c}}
	}
}

// WithTimeout bounds each tool call (default DefaultTimeout). The
// context Invoke gets may bound it further (the engine's own limit on a
// tool call); the error result then says so.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithConnectTimeout bounds connecting to the server (default
// DefaultConnectTimeout): dialling and initializing a remote one, starting
// and initializing a local one, and listing its tools.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.connectTimeout = d
		}
	}
}

// WithClientInfo sets the client name and version sent to the server
// (default "infinity", "dev").
func WithClientInfo(name, version string) Option {
	return func(o *options) { o.clientName, o.clientVersion = name, version }
}

// WithHeaders adds headers (credentials, such as Authorization) to every
// request sent to a remote server. They are never logged or stored, and
// errors never quote them.
func WithHeaders(h map[string]string) Option {
	return func(o *options) {
		if len(h) > 0 {
			o.headers = h
		}
	}
}

// WithName names the server in errors and logs (an agent file's name);
// by default a remote server is named by what it calls itself and a local
// one by its program's base name.
func WithName(name string) Option {
	return func(o *options) { o.name = name }
}

// WithLogger receives a local server's standard error, line by line, and
// its starts, exits and stops, each with the server's name under LogKey
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithIdle stops a local server that has not been called for d (default
// DefaultIdle; negative: never); the next call starts it again.
func WithIdle(d time.Duration) Option {
	return func(o *options) {
		if d != 0 {
			o.idle = d
		}
	}
}

// headerTransport adds fixed headers to each request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	return t.base.RoundTrip(req)
}

// refusals remembers the last 401 or 403 a remote server answered, so that
// a failed connect can say that its credentials were refused.
type refusals struct {
	base http.RoundTripper
	last atomic.Int32
}

func (r *refusals) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		r.last.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// doer adapts an infinity.HTTPClient to an http.RoundTripper.
type doer struct{ c infinity.HTTPClient }

func (d doer) RoundTrip(req *http.Request) (*http.Response, error) { return d.c.Do(req) }

// Server is a connection to one MCP server and the tools it offers. It is
// safe for concurrent use.
type Server struct {
	target string // the URL, or the local server's program
	name   string // for errors: its name and target
	opts   options
	client *sdk.Client
	tools  []infinity.Tool
	link   link
}

// link is how calls reach the server: a session over HTTP, reconnected
// after it broke, or a supervised local process.
type link interface {
	// acquire returns a session for one call and the function that ends
	// the call, told whether the connection broke (nil if not).
	acquire(ctx context.Context) (*sdk.ClientSession, func(broken error), error)
	close() error
}

// Connect opens a session with the MCP server at url (streamable HTTP) and
// lists its tools. It fails when the server cannot be reached or
// initialized within the connect timeout (a server that refuses the
// credentials is said to), when listing fails, or (wrapping ErrCollision)
// when a tool shadows an engine built-in or two tools share a name.
func Connect(ctx context.Context, url string, opts ...Option) (*Server, error) {
	o := newOptions(opts)
	hc := http.Client{}
	if o.httpClient != nil {
		hc = *o.httpClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if len(o.headers) > 0 {
		base = headerTransport{base: base, headers: o.headers}
	}
	ref := &refusals{base: base}
	hc.Transport = ref
	o.httpClient = &hc
	if o.oauth != nil {
		if err := o.oauth.Pending(); err != nil {
			return nil, fmt.Errorf("connect to MCP server %s: %w", url, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
	defer cancel()
	s := &Server{target: url, opts: o, client: newClient(o)}
	s.setName(nil)
	l := &httpLink{s: s, refused: ref}
	sess, err := l.dial(ctx)
	if err != nil {
		return nil, err
	}
	l.sess = sess
	s.link = l
	s.setName(sess)
	if err := s.list(ctx, sess); err != nil {
		_ = sess.Close()
		return nil, err
	}
	return s, nil
}

func newClient(o options) *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: o.clientName, Version: o.clientVersion}, nil)
}

// setName names the server: WithName's name, else what the server calls
// itself, with its target.
func (s *Server) setName(sess *sdk.ClientSession) {
	label := s.opts.name
	if label == "" && sess != nil {
		if info := sess.InitializeResult(); info != nil && info.ServerInfo != nil {
			label = info.ServerInfo.Name
		}
	}
	s.name = s.target
	if label != "" && label != s.target {
		s.name = fmt.Sprintf("%s (%s)", label, s.target)
	}
}

func (s *Server) list(ctx context.Context, sess *sdk.ClientSession) error {
	taken := make(map[string]string)
	for _, b := range builtins {
		taken[b] = "the engine's built-in tools"
	}
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("list tools of MCP server %s: %w", s.name, err)
		}
		if owner, ok := taken[t.Name]; ok {
			return fmt.Errorf("MCP server %s: tool %q collides with %q of %s: %w", s.name, t.Name, t.Name, owner, ErrCollision)
		}
		taken[t.Name] = "MCP server " + s.name
		spec, err := toSpec(t)
		if err != nil {
			return fmt.Errorf("MCP server %s: %w", s.name, err)
		}
		s.tools = append(s.tools, &tool{srv: s, spec: spec})
	}
	return nil
}

func toSpec(t *sdk.Tool) (infinity.ToolSpec, error) {
	schema := json.RawMessage(`{"type":"object"}`)
	if t.InputSchema != nil {
		b, err := json.Marshal(t.InputSchema)
		if err != nil {
			return infinity.ToolSpec{}, fmt.Errorf("tool %q: input schema: %w", t.Name, err)
		}
		schema = b
	}
	desc := t.Description
	if desc == "" {
		desc = t.Title
	}
	return infinity.ToolSpec{Name: t.Name, Description: desc, Schema: schema}, nil
}

// Name is the server's name (WithName's, or its own) with its URL or
// program.
func (s *Server) Name() string { return s.name }

// Tools returns the server's tools, in the order the server listed them.
func (s *Server) Tools() []infinity.Tool { return slices.Clone(s.tools) }

// Close ends the session, or stops the local server. Calls after Close
// fail with an error result.
func (s *Server) Close() error { return s.link.close() }

// httpLink is a session with a remote server, dialled again after a call
// found it broken.
type httpLink struct {
	s       *Server
	refused *refusals

	mu     sync.Mutex
	sess   *sdk.ClientSession
	broken bool // the session failed; the next call reconnects
	closed bool
}

func (l *httpLink) dial(ctx context.Context) (*sdk.ClientSession, error) {
	l.refused.last.Store(0)
	t := &sdk.StreamableClientTransport{Endpoint: l.s.target, HTTPClient: l.s.opts.httpClient,
		// Tools are called request by request; no server-initiated messages.
		DisableStandaloneSSE: true}
	if l.s.opts.oauth != nil {
		t.OAuthHandler = l.s.opts.oauth
	}
	sess, err := l.s.client.Connect(ctx, t, nil)
	if err != nil {
		switch {
		case errors.Is(err, ErrAuthorizationRequired):
			return nil, fmt.Errorf("connect to MCP server %s: %w: an authorization URL waits to be opened", l.s.target, ErrAuthorizationRequired)
		case errors.Is(err, ErrAuthorizationFailed):
			return nil, fmt.Errorf("connect to MCP server %s: %w", l.s.target, err)
		}
		if code := int(l.refused.last.Load()); code != 0 {
			return nil, fmt.Errorf("connect to MCP server %s: it answered HTTP %d %s: the credentials it wants (request headers) are missing or wrong: %w",
				l.s.target, code, http.StatusText(code), err)
		}
		return nil, fmt.Errorf("connect to MCP server %s: %w", l.s.target, err)
	}
	return sess, nil
}

// acquire returns the live session, reconnecting once if the last call
// broke it.
func (l *httpLink) acquire(ctx context.Context) (*sdk.ClientSession, func(error), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, nil, errors.New("the connection to the MCP server was closed")
	}
	if l.broken {
		sess, err := l.dial(ctx)
		if err != nil {
			return nil, nil, err
		}
		_ = l.sess.Close() // already failed; its error says nothing new
		l.sess, l.broken = sess, false
	}
	sess := l.sess
	return sess, func(broken error) {
		if broken != nil {
			l.markBroken(sess)
		}
	}, nil
}

// markBroken makes the next call reconnect, unless sess was replaced already.
func (l *httpLink) markBroken(sess *sdk.ClientSession) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess == sess {
		l.broken = true
	}
}

func (l *httpLink) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.sess.Close()
}

// Collect returns the tools of all servers, refusing (with ErrCollision) two
// servers that offer a tool of the same name.
func Collect(servers ...*Server) ([]infinity.Tool, error) {
	owner := make(map[string]*Server)
	var all []infinity.Tool
	for _, s := range servers {
		for _, t := range s.tools {
			name := t.Spec().Name
			if o, ok := owner[name]; ok {
				return nil, fmt.Errorf("tool %q of MCP server %s collides with %q of MCP server %s: %w", name, s.name, name, o.name, ErrCollision)
			}
			owner[name] = s
			all = append(all, t)
		}
	}
	return all, nil
}
