package rap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity"
)

// Sentinel errors of toolset loading.
var (
	// ErrDiscovery: a toolset could not be fetched and none was cached.
	ErrDiscovery = errors.New("toolset discovery failed")
	// ErrDuplicateTool: a tool name appears in more than one toolset (or
	// equals a reserved name); no tool of that name is exposed.
	ErrDuplicateTool = errors.New("duplicate tool name")
	// ErrTimeout: a tool server did not answer within its timeout (a
	// manifest fetch its connect timeout, an invocation's try its call
	// timeout), or a local one was not ready within its connect timeout.
	// The error names the timeout and the server.
	ErrTimeout = errors.New("tool server timed out")
)

// DefaultConnectTimeout bounds a manifest fetch (and a local server's
// start) when Server.ConnectTimeout is zero, and for the servers of
// Config.Servers.
const DefaultConnectTimeout = 30 * time.Second

// WellKnownPath is where a tool server serves its manifest.
const WellKnownPath = "/.well-known/rap-toolset"

// maxManifest bounds a manifest body.
const maxManifest = 4 << 20

// Config configures the RAP side of a runtime.
type Config struct {
	// Servers are tool servers' base URLs, with the default timeouts.
	// Servers and Entries are the only source of tool definitions (RAP
	// §3.1).
	Servers []string
	// Entries are tool servers with settings of their own (an agent
	// file's tools.rap entries), after those of Servers.
	Entries []Server
	// Client reaches the tool servers (signing requests if needed); nil
	// means http.DefaultClient.
	Client infinity.HTTPClient
	// CallbackBase is the public URL the Handler is served under;
	// callback URLs are {CallbackBase}/rap/callback/{token}?call={id}.
	CallbackBase string
	Tokens       Tokens
	// Retry bounds invocation retries; its Timeout is the call timeout
	// of servers without one of their own.
	Retry Retry
	// Reserved are names no RAP tool may take (the engine's built-ins and
	// the reserved event tool name); a manifest tool with one is treated
	// as a duplicate.
	Reserved []string
	// Log receives warnings and, with LogKey, what local servers write
	// to their standard error and their starts and stops; nil means
	// slog.Default().
	Log *slog.Logger
}

// Server is a tool server with settings of its own: a remote one (URL) or
// a local one (Command) that the Loader starts.
type Server struct {
	// URL is a remote server's base URL.
	URL string
	// Command, when URL is empty, is a local server.
	Command *Command
	// Name names the server in logs and errors; "" means its URL, or its
	// program's base name. Local servers of one Loader need distinct
	// names (a repeated one gets a suffix, "-2").
	Name string
	// ConnectTimeout bounds each manifest fetch and, for a local server,
	// each start (until it is ready); 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CallTimeout bounds each try of an invocation, until the server
	// acknowledges it (not the tool's work); 0 means Config.Retry's
	// Timeout.
	CallTimeout time.Duration
}

// server is a configured tool server.
type server struct {
	key     string // a remote server's base URL, a local server's name
	name    string
	url     string       // a remote server's base URL, without a trailing slash
	local   *localServer // a local server
	connect time.Duration
	call    time.Duration // 0: Retry.Timeout
}

// acquire returns the server's base URL (a local server's current one,
// starting it if it is not running) and the function that ends this use.
func (s *server) acquire(ctx context.Context) (string, func(), error) {
	if s.local == nil {
		return s.url, func() {}, nil
	}
	return s.local.acquire(ctx)
}

// timedOut returns the error of a request bounded by d (ctx, derived from
// parent) that failed with err: an ErrTimeout naming the bound when d ran
// out, err otherwise.
func (s *server) timedOut(parent, ctx context.Context, err error, d time.Duration, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
		return fmt.Errorf("no answer within %s (the %s timeout of RAP server %s): %w", d, what, s.name, ErrTimeout)
	}
	return err
}

// fetched is a manifest and the base URL it was fetched from.
type fetched struct {
	m    Manifest
	base string
}

// Loader discovers toolsets and caches them per session (root thread). It
// is safe for concurrent use.
type Loader struct {
	cfg      Config
	log      *slog.Logger
	servers  []*server
	mu       sync.Mutex
	sessions map[infinity.ThreadID]*Set
	lastGood map[string]fetched // by server key: the fallback when a fetch fails
}

// NewLoader returns a loader for cfg.Servers and cfg.Entries. Local
// servers are started when first needed; Close stops them.
func NewLoader(cfg Config) *Loader {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	l := &Loader{cfg: cfg, log: log, sessions: map[infinity.ThreadID]*Set{}, lastGood: map[string]fetched{}}
	for _, u := range cfg.Servers {
		u = strings.TrimRight(u, "/")
		l.servers = append(l.servers, &server{key: u, name: u, url: u, connect: DefaultConnectTimeout})
	}
	taken := map[string]bool{}
	for _, e := range cfg.Entries {
		s := &server{name: e.Name, connect: e.ConnectTimeout, call: e.CallTimeout}
		if s.connect <= 0 {
			s.connect = DefaultConnectTimeout
		}
		if e.URL != "" || e.Command == nil {
			s.url = strings.TrimRight(e.URL, "/")
			s.key = s.url
			if s.name == "" {
				s.name = s.url
			}
			l.servers = append(l.servers, s)
			continue
		}
		if s.name == "" {
			s.name = filepath.Base(e.Command.Path)
		}
		for n, name := 2, s.name; taken[s.name]; n++ {
			s.name = name + "-" + strconv.Itoa(n)
		}
		taken[s.name] = true
		s.key = s.name
		s.local = newLocal(s.name, *e.Command, s.connect, log)
		l.servers = append(l.servers, s)
	}
	return l
}

// Servers returns the servers' keys, in order: a remote server's base
// URL without a trailing slash, a local server's name.
func (l *Loader) Servers() []string {
	out := make([]string, len(l.servers))
	for i, s := range l.servers {
		out[i] = s.key
	}
	return out
}

// Close stops the local servers (and what they started); later uses of
// them fail. It returns what went wrong stopping them.
func (l *Loader) Close() error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range l.servers {
		if s.local == nil {
			continue
		}
		wg.Go(func() {
			if err := s.local.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Set is the toolsets of one session: the tools exposed to the model and
// the manifest of each server that loaded.
type Set struct {
	tools     []*Tool
	byName    map[string]*Tool
	manifests map[string]Manifest
}

// Tools returns the exposed tools, in server then manifest order.
func (s *Set) Tools() []infinity.Tool {
	out := make([]infinity.Tool, len(s.tools))
	for i, t := range s.tools {
		out[i] = t
	}
	return out
}

// Tool returns the exposed tool called name (case-sensitive).
func (s *Set) Tool(name string) (*Tool, bool) {
	t, ok := s.byName[name]
	return t, ok
}

// Manifest returns the manifest loaded from a server, by its key (a base
// URL, a local server's name; see Loader.Servers).
func (s *Set) Manifest(base string) (Manifest, bool) {
	m, ok := s.manifests[strings.TrimRight(base, "/")]
	return m, ok
}

// Load returns the toolsets of the session rooted at root. A session's
// first Load fetches every server's manifest fresh (RAP §3.7) and later
// Loads reuse the result without fetching. The returned Set is always
// usable and holds every tool that can be offered; the error joins what
// must be reported: invalid toolsets (infinity.ErrInvalid; none of their
// tools is exposed), names clashing across toolsets (ErrDuplicateTool;
// neither is exposed) and servers that could not be fetched with nothing
// cached (ErrDiscovery). A server that cannot be fetched but was loaded
// before falls back to its last good manifest, with a warning logged. A
// load in which any fetch failed is not cached, so the next Load retries.
func (l *Loader) Load(ctx context.Context, root infinity.ThreadID) (*Set, error) {
	l.mu.Lock()
	s, ok := l.sessions[root]
	l.mu.Unlock()
	if ok {
		return s, nil
	}
	manifests, fetchFailed, problems := l.fetchAll(ctx)
	s, dups := l.build(manifests)
	problems = append(problems, dups...)
	if !fetchFailed {
		l.mu.Lock()
		l.sessions[root] = s
		l.mu.Unlock()
	}
	return s, errors.Join(problems...)
}

// Refresh forgets the session's cached toolsets and loads them again.
func (l *Loader) Refresh(ctx context.Context, root infinity.ThreadID) (*Set, error) {
	l.Forget(root)
	return l.Load(ctx, root)
}

// Forget drops the session's cached toolsets (when the session ends).
func (l *Loader) Forget(root infinity.ThreadID) {
	l.mu.Lock()
	delete(l.sessions, root)
	l.mu.Unlock()
}

// fetchAll fetches every server concurrently and returns the usable
// manifests by server key.
func (l *Loader) fetchAll(ctx context.Context) (map[string]fetched, bool, []error) {
	type outcome struct {
		f   fetched
		err error
	}
	out := make([]outcome, len(l.servers))
	var wg sync.WaitGroup
	for i, s := range l.servers {
		wg.Go(func() {
			f, err := l.fetch(ctx, s)
			out[i] = outcome{f, err}
		})
	}
	wg.Wait()
	manifests := map[string]fetched{}
	var problems []error
	fetchFailed := false
	for i, s := range l.servers {
		o := out[i]
		switch {
		case o.err == nil:
			manifests[s.key] = o.f
			l.mu.Lock()
			l.lastGood[s.key] = o.f
			l.mu.Unlock()
		case errors.Is(o.err, infinity.ErrInvalid):
			problems = append(problems, o.err)
		default:
			fetchFailed = true
			l.mu.Lock()
			f, ok := l.lastGood[s.key]
			l.mu.Unlock()
			if ok {
				l.log.Warn("rap toolset fetch failed; using the cached toolset", "server", s.name, "err", o.err)
				manifests[s.key] = f
				continue
			}
			problems = append(problems, fmt.Errorf("%w: %w", o.err, ErrDiscovery))
		}
	}
	return manifests, fetchFailed, problems
}

// fetch GETs and validates one manifest, within the server's connect
// timeout (a local server is started first if it is not running). An
// invalid manifest wraps infinity.ErrInvalid; anything else is a fetch
// failure.
func (l *Loader) fetch(ctx context.Context, s *server) (fetched, error) {
	base, done, err := s.acquire(ctx)
	if err != nil {
		return fetched{}, fmt.Errorf("rap toolset %s: %w", s.name, err)
	}
	defer done()
	u := base + WellKnownPath
	where := u
	if s.name != s.url {
		where = s.name + " at " + u
	}
	tctx, cancel := context.WithTimeout(ctx, s.connect)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, http.MethodGet, u, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("rap toolset %s: %w", where, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.cfg.Client.Do(req)
	if err != nil {
		return fetched{}, fmt.Errorf("rap toolset %s: %w", where, s.timedOut(ctx, tctx, err, s.connect, "connect"))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fetched{}, fmt.Errorf("rap toolset %s: HTTP %d", where, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return fetched{}, fmt.Errorf("rap toolset %s: read: %w", where, s.timedOut(ctx, tctx, err, s.connect, "connect"))
	}
	if len(body) > maxManifest {
		return fetched{}, fmt.Errorf("rap toolset %s: manifest larger than %d bytes: %w", where, maxManifest, infinity.ErrInvalid)
	}
	m, err := DecodeManifest(body)
	if err != nil {
		return fetched{}, fmt.Errorf("rap toolset %s: %w", where, err)
	}
	return fetched{m: m, base: base}, nil
}

// build exposes every tool whose name is unique across the manifests and
// not reserved.
func (l *Loader) build(manifests map[string]fetched) (*Set, []error) {
	owners := map[string][]string{}
	for _, r := range l.cfg.Reserved {
		owners[r] = append(owners[r], "the runtime")
	}
	for _, s := range l.servers {
		if f, ok := manifests[s.key]; ok {
			for _, t := range f.m.Tools {
				owners[t.Name] = append(owners[t.Name], s.name)
			}
		}
	}
	s := &Set{byName: map[string]*Tool{}, manifests: map[string]Manifest{}}
	var problems []error
	reported := map[string]bool{}
	for _, srv := range l.servers {
		f, ok := manifests[srv.key]
		if !ok {
			continue
		}
		s.manifests[srv.key] = f.m
		for _, def := range f.m.Tools {
			if o := owners[def.Name]; len(o) > 1 {
				if !reported[def.Name] {
					reported[def.Name] = true
					problems = append(problems, fmt.Errorf("rap tool %q is offered by %s; neither is exposed: %w",
						def.Name, strings.Join(o, " and "), ErrDuplicateTool))
				}
				continue
			}
			t := &Tool{def: def, endpoint: f.m.Endpoint, fetchedFrom: f.base, srv: srv, client: l.cfg.Client, tokens: l.cfg.Tokens,
				callbackBase: l.cfg.CallbackBase, retry: l.cfg.Retry}
			s.tools = append(s.tools, t)
			s.byName[def.Name] = t
		}
	}
	return s, problems
}

// rebase returns endpoint, from a manifest fetched from the base URL
// from, moved to the base URL base when it points at the same local
// server (a local server's port may change when it is started again).
func rebase(endpoint, from, base string) string {
	if from == base {
		return endpoint
	}
	e, err1 := url.Parse(endpoint)
	f, err2 := url.Parse(from)
	b, err3 := url.Parse(base)
	if err1 != nil || err2 != nil || err3 != nil || e.Port() != f.Port() || !loopback(e.Hostname()) {
		return endpoint
	}
	e.Host = b.Host
	return e.String()
}

func loopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// Tools returns the tools of root's session, as the engine's per-session
// tool source (actors.ToolSource): what loaded is used even when some
// toolset failed, and the failure is returned beside it.
func (l *Loader) Tools(ctx context.Context, root infinity.ThreadID) ([]infinity.Tool, error) {
	set, err := l.Load(ctx, root)
	if set == nil {
		return nil, err
	}
	return set.Tools(), err
}
