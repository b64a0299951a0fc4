package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultTimeout bounds one tool call, and Connect when its context has no
// deadline.
const DefaultTimeout = 30 * time.Second

// ErrCollision is wrapped by the errors of Connect and Collect when two tools
// share a name.
var ErrCollision = errors.New("tool name collision")

// builtins are the engine's own tool names (actors/builtins.go); an MCP tool
// may not shadow them. Kept here so tools do not import the engine.
var builtins = []string{"sleep", "sleep_until", "sleep_until_event_or_input", "spawn_thread",
	"report_to_parent", "close_thread", "send_message_to_child", "cancel_subscription",
	"receive_event__injected"}

// Option configures Connect.
type Option func(*options)

type options struct {
	httpClient *http.Client
	timeout    time.Duration
	name       string
	version    string
	headers    map[string]string
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

// WithTimeout bounds each tool call (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithClientInfo sets the client name and version sent to the server
// (default "infinity", "dev").
func WithClientInfo(name, version string) Option {
	return func(o *options) { o.name, o.version = name, version }
}

// WithHeaders adds headers (credentials, such as Authorization) to every
// request sent to the server. They are never logged or stored.
func WithHeaders(h map[string]string) Option {
	return func(o *options) {
		if len(h) > 0 {
			o.headers = h
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

// doer adapts an infinity.HTTPClient to an http.RoundTripper.
type doer struct{ c infinity.HTTPClient }

func (d doer) RoundTrip(req *http.Request) (*http.Response, error) { return d.c.Do(req) }

// Server is a connection to one MCP server and the tools it offers. It is
// safe for concurrent use.
type Server struct {
	url    string
	name   string // the server's own name, or its URL
	opts   options
	client *sdk.Client
	tools  []infinity.Tool

	mu     sync.Mutex
	sess   *sdk.ClientSession
	broken bool // the session failed; the next call reconnects
	closed bool
}

// Connect opens a session with the MCP server at url and lists its tools.
// It fails when the server cannot be reached or initialized, when listing
// fails, or (wrapping ErrCollision) when a tool shadows an engine built-in
// or two tools share a name.
func Connect(ctx context.Context, url string, opts ...Option) (*Server, error) {
	o := options{timeout: DefaultTimeout, name: "infinity", version: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.headers) > 0 {
		hc := http.Client{}
		if o.httpClient != nil {
			hc = *o.httpClient
		}
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc.Transport = headerTransport{base: base, headers: o.headers}
		o.httpClient = &hc
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	s := &Server{url: url, name: url, opts: o,
		client: sdk.NewClient(&sdk.Implementation{Name: o.name, Version: o.version}, nil)}
	sess, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.sess = sess
	if info := sess.InitializeResult(); info != nil && info.ServerInfo != nil && info.ServerInfo.Name != "" {
		s.name = fmt.Sprintf("%s (%s)", info.ServerInfo.Name, url)
	}
	if err := s.list(ctx); err != nil {
		_ = sess.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) dial(ctx context.Context) (*sdk.ClientSession, error) {
	t := &sdk.StreamableClientTransport{Endpoint: s.url, HTTPClient: s.opts.httpClient,
		// Tools are called request by request; no server-initiated messages.
		DisableStandaloneSSE: true}
	sess, err := s.client.Connect(ctx, t, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to MCP server %s: %w", s.url, err)
	}
	return sess, nil
}

func (s *Server) list(ctx context.Context) error {
	taken := make(map[string]string)
	for _, b := range builtins {
		taken[b] = "the engine's built-in tools"
	}
	for t, err := range s.sess.Tools(ctx, nil) {
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

// Name is the server's name as it introduced itself, with its URL.
func (s *Server) Name() string { return s.name }

// Tools returns the server's tools, in the order the server listed them.
func (s *Server) Tools() []infinity.Tool { return slices.Clone(s.tools) }

// Close ends the session. Calls after Close fail with an error result.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.sess == nil {
		return nil
	}
	return s.sess.Close()
}

// session returns the live session, reconnecting once if the last call
// broke it.
func (s *Server) session(ctx context.Context) (*sdk.ClientSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, errors.New("the connection to the MCP server was closed")
	case !s.broken:
		return s.sess, nil
	}
	sess, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	_ = s.sess.Close() // already failed; its error says nothing new
	s.sess, s.broken = sess, false
	return sess, nil
}

// markBroken makes the next call reconnect, unless sess was replaced already.
func (s *Server) markBroken(sess *sdk.ClientSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == sess {
		s.broken = true
	}
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
