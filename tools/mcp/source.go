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
// start-up (the cloud functions). It is an actors.ToolSource: the same
// tools for every session. Connected servers are kept and reused; a server
// that could not be reached is left out, reported, and tried again after
// RetryAfter.
type Source struct {
	endpoints []Endpoint
	opts      []Option
	now       func() time.Time

	mu      sync.Mutex
	servers []*Server   // by url, nil until connected
	failed  []time.Time // by url, when the last attempt failed
	errs    []error     // by url, the last attempt's error
	closed  bool
}

// Endpoint is one MCP server and the options of its own (WithHeaders).
type Endpoint struct {
	URL     string
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
		if s.servers[i] == nil && (s.errs[i] == nil || s.now().Sub(s.failed[i]) >= RetryAfter) {
			srv, err := Connect(ctx, e.URL, append(slices.Clone(s.opts), e.Options...)...)
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
	tools, err := Collect(connected...)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	return tools, errors.Join(errs...)
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
