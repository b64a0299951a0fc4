package rap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/infinity-runtime/infinity"
)

// Sentinel errors of toolset loading.
var (
	// ErrDiscovery: a toolset could not be fetched and none was cached.
	ErrDiscovery = errors.New("toolset discovery failed")
	// ErrDuplicateTool: a tool name appears in more than one toolset (or
	// equals a reserved name); no tool of that name is exposed.
	ErrDuplicateTool = errors.New("duplicate tool name")
)

// WellKnownPath is where a tool server serves its manifest.
const WellKnownPath = "/.well-known/rap-toolset"

// maxManifest bounds a manifest body.
const maxManifest = 4 << 20

// Config configures the RAP side of a runtime.
type Config struct {
	// Servers are the tool servers' base URLs, the only source of tool
	// definitions (RAP §3.1).
	Servers []string
	// Client reaches the tool servers (signing requests if needed); nil
	// means http.DefaultClient.
	Client infinity.HTTPClient
	// CallbackBase is the public URL the Handler is served under;
	// callback URLs are {CallbackBase}/rap/callback/{token}?call={id}.
	CallbackBase string
	Tokens       Tokens
	Retry        Retry
	// Reserved are names no RAP tool may take (the engine's built-ins and
	// the reserved event tool name); a manifest tool with one is treated
	// as a duplicate.
	Reserved []string
	Log      *slog.Logger
}

// Loader discovers toolsets and caches them per session (root thread). It
// is safe for concurrent use.
type Loader struct {
	cfg      Config
	log      *slog.Logger
	mu       sync.Mutex
	sessions map[infinity.ThreadID]*Set
	lastGood map[string]Manifest // by base URL: the fallback when a fetch fails
}

// NewLoader returns a loader for cfg.Servers.
func NewLoader(cfg Config) *Loader {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	servers := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		servers[i] = strings.TrimRight(s, "/")
	}
	cfg.Servers = servers
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &Loader{cfg: cfg, log: log, sessions: map[infinity.ThreadID]*Set{}, lastGood: map[string]Manifest{}}
}

// Servers returns the configured base URLs, without trailing slashes.
func (l *Loader) Servers() []string { return slices.Clone(l.cfg.Servers) }

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

// Manifest returns the manifest loaded from server base.
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
// manifests by base URL.
func (l *Loader) fetchAll(ctx context.Context) (map[string]Manifest, bool, []error) {
	type outcome struct {
		m   Manifest
		err error
	}
	out := make([]outcome, len(l.cfg.Servers))
	var wg sync.WaitGroup
	for i, base := range l.cfg.Servers {
		wg.Go(func() {
			m, err := l.fetch(ctx, base)
			out[i] = outcome{m, err}
		})
	}
	wg.Wait()
	manifests := map[string]Manifest{}
	var problems []error
	fetchFailed := false
	for i, base := range l.cfg.Servers {
		o := out[i]
		switch {
		case o.err == nil:
			manifests[base] = o.m
			l.mu.Lock()
			l.lastGood[base] = o.m
			l.mu.Unlock()
		case errors.Is(o.err, infinity.ErrInvalid):
			problems = append(problems, o.err)
		default:
			fetchFailed = true
			l.mu.Lock()
			m, ok := l.lastGood[base]
			l.mu.Unlock()
			if ok {
				l.log.Warn("rap toolset fetch failed; using the cached toolset", "server", base, "err", o.err)
				manifests[base] = m
				continue
			}
			problems = append(problems, fmt.Errorf("%w: %w", o.err, ErrDiscovery))
		}
	}
	return manifests, fetchFailed, problems
}

// fetch GETs and validates one manifest. An invalid manifest wraps
// infinity.ErrInvalid; anything else is a fetch failure.
func (l *Loader) fetch(ctx context.Context, base string) (Manifest, error) {
	u := base + WellKnownPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Manifest{}, fmt.Errorf("rap toolset %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.cfg.Client.Do(req)
	if err != nil {
		return Manifest{}, fmt.Errorf("rap toolset %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Manifest{}, fmt.Errorf("rap toolset %s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("rap toolset %s: read: %w", u, err)
	}
	if len(body) > maxManifest {
		return Manifest{}, fmt.Errorf("rap toolset %s: manifest larger than %d bytes: %w", u, maxManifest, infinity.ErrInvalid)
	}
	m, err := DecodeManifest(body)
	if err != nil {
		return Manifest{}, fmt.Errorf("rap toolset %s: %w", u, err)
	}
	return m, nil
}

// build exposes every tool whose name is unique across the manifests and
// not reserved.
func (l *Loader) build(manifests map[string]Manifest) (*Set, []error) {
	owners := map[string][]string{}
	for _, r := range l.cfg.Reserved {
		owners[r] = append(owners[r], "the runtime")
	}
	for _, base := range l.cfg.Servers {
		if m, ok := manifests[base]; ok {
			for _, t := range m.Tools {
				owners[t.Name] = append(owners[t.Name], base)
			}
		}
	}
	s := &Set{byName: map[string]*Tool{}, manifests: manifests}
	var problems []error
	reported := map[string]bool{}
	for _, base := range l.cfg.Servers {
		m, ok := manifests[base]
		if !ok {
			continue
		}
		for _, def := range m.Tools {
			if o := owners[def.Name]; len(o) > 1 {
				if !reported[def.Name] {
					reported[def.Name] = true
					problems = append(problems, fmt.Errorf("rap tool %q is offered by %s; neither is exposed: %w",
						def.Name, strings.Join(o, " and "), ErrDuplicateTool))
				}
				continue
			}
			t := &Tool{def: def, endpoint: m.Endpoint, client: l.cfg.Client, tokens: l.cfg.Tokens,
				callbackBase: l.cfg.CallbackBase, retry: l.cfg.Retry}
			s.tools = append(s.tools, t)
			s.byName[def.Name] = t
		}
	}
	return s, problems
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
