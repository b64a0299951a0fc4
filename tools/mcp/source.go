package mcp

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// RetryAfter is how long a Source waits before it tries again a server it
// could not connect to.
const RetryAfter = 30 * time.Second

// Source connects to MCP servers when their tools are first asked for, not
// when it is made, so a process that may never need them pays nothing at
// start-up (the cloud functions), and a local server (Endpoint.Command) is
// started only when a slice first needs its tools (the daemon). It is an
// actors.ToolSource: the same tools for every session. Connected servers
// are kept and reused; a server that could not be reached is left out,
// reported, and tried again after RetryAfter.
type Source struct {
	endpoints []Endpoint
	opts      []Option
	now       func() time.Time

	mu      sync.Mutex
	servers []*Server   // by endpoint, nil until connected
	failed  []time.Time // by endpoint, when the last attempt failed
	errs    []error     // by endpoint, the last attempt's error
	closed  bool
	beside  []*Server // connected elsewhere; their tools must not collide
}

// Endpoint is one MCP server and the options of its own (WithHeaders,
// WithName, the timeouts): a remote one at URL, or, when Command is set, a
// local one (ConnectCommand).
type Endpoint struct {
	URL     string
	Command *Command
	Options []Option
}

// NewSource returns a source for the MCP servers at urls.
func NewSource(urls []string, opts ...Option) *Source {
	endpoints := make([]Endpoint, len(urls))
	for i, u := range urls {
		endpoints[i] = Endpoint{URL: u}
	}
	return NewEndpointSource(endpoints, opts...)
}

// NewEndpointSource returns a source for the MCP servers of endpoints; opts
// apply to every one, before its own.
func NewEndpointSource(endpoints []Endpoint, opts ...Option) *Source {
	n := len(endpoints)
	return &Source{endpoints: endpoints, opts: opts, now: time.Now,
		servers: make([]*Server, n), failed: make([]time.Time, n), errs: make([]error, n)}
}

// Tools returns the tools of every server it could connect to, connecting
// to those not yet connected. The error names the servers left out (and
// wraps ErrCollision when two servers offer a tool of the same name, in
// which case no tool is returned).
func (s *Source) Tools(ctx context.Context, _ infinity.ThreadID) ([]infinity.Tool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("mcp: the source was closed")
	}
	var errs []error
	var connected []*Server
	for i, e := range s.endpoints {
		// A server that waits for the user's authorization is tried at
		// once: Connect fails without a request until the user is done.
		if s.servers[i] == nil && (s.errs[i] == nil || s.now().Sub(s.failed[i]) >= RetryAfter || needsUser(s.errs[i])) {
			opts := append(slices.Clone(s.opts), e.Options...)
			var srv *Server
			var err error
			if e.Command != nil {
				srv, err = ConnectCommand(ctx, *e.Command, opts...)
			} else {
				srv, err = Connect(ctx, e.URL, opts...)
			}
			if err != nil {
				s.failed[i], s.errs[i] = s.now(), err
			} else {
				s.servers[i], s.errs[i] = srv, nil
			}
		}
		if s.servers[i] != nil {
			connected = append(connected, s.servers[i])
		} else {
			errs = append(errs, s.errs[i])
		}
	}
	if _, err := Collect(append(slices.Clone(s.beside), connected...)...); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	tools, err := Collect(connected...)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	return tools, errors.Join(errs...)
}

// Beside makes the source refuse (with ErrCollision, as between its own
// servers) tools named like a tool of servers, connected elsewhere, whose
// tools the same agent has. It returns s.
func (s *Source) Beside(servers ...*Server) *Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beside = append(s.beside, servers...)
	return s
}

// Close disconnects every connected server.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for i, srv := range s.servers {
		if srv != nil {
			errs = append(errs, srv.Close())
			s.servers[i] = nil
		}
	}
	return errors.Join(errs...)
}

// needsUser reports whether err is an authorization that waits for, or
// failed with, the user.
func needsUser(err error) bool {
	return errors.Is(err, ErrAuthorizationRequired) || errors.Is(err, ErrAuthorizationFailed)
}
