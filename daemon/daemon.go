package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/examples"
	"github.com/infinity-runtime/infinity/internal/atomicfile"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/network"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/telemetry"
	"github.com/infinity-runtime/infinity/tools/httpclient"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// Files under the daemon's home.
const (
	storeDir     = "store"
	tokenFile    = "token"
	infoFile     = "daemon.json"
	SessionsFile = "sessions.json"
	LogFile      = "daemon.log"
)

// DefaultAddr is where the daemon listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7711"

// Options configure a daemon.
type Options struct {
	// Home is the state directory (created 0700 if missing).
	Home string
	// Addr is the listen address; default DefaultAddr. A port of 0 picks a
	// free one.
	Addr string
	// AllowRemote allows a non-loopback Addr, and then skips the Host
	// check. The bearer token still guards every request.
	AllowRemote bool
	// Logger receives the daemon's log; default slog.Default().
	Logger *slog.Logger
	// Version is reported by the status route.
	Version string
	// Idle is how long a thread that is not asleep stays active without
	// input (default 100 ms; see actors.Config.Idle).
	Idle time.Duration
	// Prices is the prices file (package pricing); default HOME/prices.yaml
	// when it exists. Agent files' model prices override it; a model
	// without a price has an unknown cost.
	Prices string
	// RetainClosed, when positive, deletes closed trees whose root's last
	// item is older than this (checked at start, then every tenth of it,
	// between a minute and an hour apart). Zero keeps everything.
	RetainClosed time.Duration
	// Record, when set, is a file that every model call of every tree is
	// written to (package models/replay; "infinity replay" runs a tree
	// again from it). It is truncated at start.
	Record string
	// Store adds options to the disk store's (persistence/disk): its
	// cache and memtable sizes, the free-space reserve under which writes
	// are refused (507 insufficient_storage).
	Store []disk.Option
	// CallbackURL is the base URL RAP tool servers post results and events
	// to (their callback URLs are under CallbackURL/rap/callback/). Empty:
	// http:// and the listener's address, with 127.0.0.1 for an address on
	// all interfaces. Set it when tool servers reach the daemon through a
	// proxy, a tunnel or another address than the one it listens on.
	CallbackURL string
	// MetricsAddr, when set, serves /metrics on a listener of its own at
	// this address, without the bearer token (for a Prometheus scraper);
	// /metrics on the API's address always needs the token.
	MetricsAddr string
	// Tracer, when set, traces every slice (telemetry.TracerFromEnv makes
	// one from the OTEL_* environment).
	Tracer trace.TracerProvider
	// MaxModelCalls bounds the model calls in flight at once, across every
	// thread (actors.Config.MaxModelCalls; default 1024). Slices waiting for
	// a model hold no worker.
	MaxModelCalls int
	// ModelLimits are rate limits by provider or model
	// (actors.ModelLimit). They win over the agent files' rate_limit for
	// the same key.
	ModelLimits map[string]actors.ModelLimit
}

// Info is daemon.json: how clients find a running daemon.
type Info struct {
	PID     int       `json:"pid"`
	Addr    string    `json:"addr"`
	Home    string    `json:"home"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Daemon is the local runtime: the disk store, the durable local sender,
// the actor runtime, the agent registry and the HTTP API.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	store   *disk.Store
	sender  *local.Sender
	rt      *actors.Runtime
	agents  *registry
	hub     *hub
	token   string
	ui      *uiAuth
	started time.Time

	// sends are the texts of messages taken with their callers' ids and
	// not yet applied (sameMessage).
	sends *sends
	// rec is the recording of Options.Record.
	rec    *replay.Recorder
	failMu sync.Mutex
	failed map[infinity.ThreadID]string // the last slice error per thread, until it commits again
	oauth  map[string]actors.Event      // authorization requests by thread and call, in memory only
	// oauthURLs are the URLs of OAuth callbacks by thread and call, kept
	// here (and out of the inbox) until the engine applies them.
	oauthURLs map[string]string

	// moves are the sessions moving to or from another daemon (migrate.go).
	moves moves
	// forwards are the sessions that moved out, whose RAP callbacks are
	// forwarded to where they went (forward.go); fwdClient forwards them.
	forwards  *forwards
	fwdClient *http.Client
	// callbacks is the RAP callback route's handler.
	callbacks *rap.Handler

	rapTokens rap.Tokens
	mcpAuth   *mcpAuth // the MCP servers' authorization flows (mcpoauth.go)
	views     *views
	live      live
	metrics   *telemetry.Metrics
	// ready is set once Open is done, and cleared when Close begins
	// (GET /healthz).
	ready atomic.Bool

	ln  net.Listener
	srv *http.Server
	// metricsLn and metricsSrv serve /metrics without the token
	// (Options.MetricsAddr), or are nil.
	metricsLn  net.Listener
	metricsSrv *http.Server
	shutdown   chan struct{}
	// bgCtx is cancelled by Close; bg waits for the background work
	// (retention) before the store closes.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	stopOnce sync.Once
	once     sync.Once
	closeErr error
}

// ErrLocked is returned by Open when another daemon holds the home.
var ErrLocked = disk.ErrLocked

// Open opens the home, restores every waiting message and timer, and
// listens; Serve then answers requests. Threads are activated lazily: only
// those with a message due (or an outbox left unsent by a crash) start.
func Open(ctx context.Context, o Options) (*Daemon, error) {
	if o.Home == "" {
		return nil, fmt.Errorf("daemon: no home directory: %w", infinity.ErrInvalid)
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := checkAddr(o.Addr, o.AllowRemote); err != nil {
		return nil, err
	}
	if o.MetricsAddr != "" {
		if err := checkAddr(o.MetricsAddr, o.AllowRemote); err != nil {
			return nil, fmt.Errorf("daemon: metrics address: %w", err)
		}
	}
	if err := os.MkdirAll(o.Home, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	// An existing home may have looser modes: the token, keys and
	// histories in it are the user's alone.
	if err := os.Chmod(o.Home, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	envSet, err := loadEnvFile(filepath.Join(o.Home, EnvFile))
	if err != nil {
		return nil, err
	}
	if len(envSet) > 0 {
		o.Logger.Info("daemon environment: variables from the home's env file", "file", filepath.Join(o.Home, EnvFile), "names", envSet)
	}
	d := &Daemon{opts: o, log: o.Logger, hub: newHub(), sends: newSends(time.Now), failed: map[infinity.ThreadID]string{}, oauth: map[string]actors.Event{}, oauthURLs: map[string]string{},
		shutdown: make(chan struct{}), started: time.Now()}
	store, err := disk.Open(filepath.Join(o.Home, storeDir), append([]disk.Option{disk.WithLogger(o.Logger)}, o.Store...)...)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.store = store
	fail := func(err error) (*Daemon, error) {
		if d.ln != nil {
			d.ln.Close()
		}
		if d.metricsLn != nil {
			d.metricsLn.Close()
		}
		if d.agents != nil {
			d.agents.close()
		}
		if d.rt != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = d.rt.Close(cctx)
			cancel()
		}
		if d.rec != nil {
			d.rec.Close()
		}
		store.Close()
		return nil, err
	}
	if d.token, err = loadToken(filepath.Join(o.Home, tokenFile)); err != nil {
		return fail(err)
	}
	d.ui = newUIAuth(d.token)
	// Listen first: tool servers get callback URLs under this address.
	d.ln, err = net.Listen("tcp", o.Addr)
	if err != nil {
		return fail(fmt.Errorf("daemon: listen on %s: %w", o.Addr, err))
	}
	key, err := loadRAPKey(filepath.Join(o.Home, rapKeyFile))
	if err != nil {
		return fail(err)
	}
	d.rapTokens = rap.Tokens{Key: key}
	d.views = &views{d: d}
	if d.forwards, err = newForwards(o.Home, o.Logger); err != nil {
		return fail(fmt.Errorf("daemon: %w", err))
	}
	d.fwdClient = newForwardClient()
	prices, err := loadPrices(o.Home, o.Prices)
	if err != nil {
		return fail(err)
	}
	// The authorization server's requests (discovery, registration,
	// tokens) are bounded as the authorizer's own client would bound them:
	// a refresh runs while the server's calls wait for it.
	d.mcpAuth = newMCPAuth(d, o.Home, d.ln.Addr().String(), httpclient.NewPlain(httpclient.WithTimeout(mcpAuthTimeout)), o.Logger)
	callbacks, err := callbackBase(o.CallbackURL, d.ln.Addr().String())
	if err != nil {
		return fail(err)
	}
	d.agents = newRegistry(o.Home, o.Logger, toolEnv{
		callbackBase: callbacks, tokens: d.rapTokens, client: httpclient.NewPlain(), log: o.Logger,
		oauth: d.mcpAuth,
	}, prices)
	d.agents.fixed = maps.Clone(o.ModelLimits)
	d.agents.applied = maps.Clone(o.ModelLimits)
	if d.agents.applied == nil {
		d.agents.applied = map[string]actors.ModelLimit{}
	}
	demo, demoModels, err := bundledAgent(ctx, "demo")
	if err != nil {
		return fail(err)
	}
	if o.Record != "" {
		if d.rec, err = replay.Create(o.Record, replay.RecordOptions{Meta: map[string]string{"command": "daemon", "home": o.Home}}); err != nil {
			return fail(fmt.Errorf("daemon: --record: %w", err))
		}
		d.agents.tee = replay.NewTee()
		d.agents.tee.WrapAgent(&demo)
	}
	d.agents.setModels("demo", demoModels)
	d.metrics = telemetry.NewMetrics(telemetry.Gauges{
		Active:     func() int { return d.rt.Active() },
		Stored:     func() (int, int, error) { return store.Counts(context.Background()) },
		Timers:     func() int { return d.sender.Pending() },
		Store:      func() (uint64, uint64) { st := store.Stats(); return uint64(st.Records), uint64(st.Fsyncs) },
		ModelCalls: func() actors.ModelCalls { return d.rt.ModelCalls() },
		Host:       func() actors.HostStats { return d.rt.HostStats() },
	}, d.agents.cost)
	if err := d.listenMetrics(); err != nil {
		return fail(err)
	}
	er, err := embedded.OpenStore(ctx, store, embedded.Options{
		Config: actors.Config{
			Agents:        []actors.Agent{demo},
			Logger:        o.Logger,
			Observer:      d.observe,
			Notifier:      notifier{d},
			Idle:          o.Idle,
			Probe:         actors.Probes(d.metrics.Probe(), telemetry.NewTracer(o.Tracer)),
			MaxModelCalls: o.MaxModelCalls,
			ModelLimits:   o.ModelLimits,
			Prices:        d.agents.cost,
		},
		Sender: []local.Option{local.WithLateness(d.metrics.ObserveTimer)},
		// The registered agents are loaded before queued input runs.
		BeforeRestore: func(rt *actors.Runtime) error {
			d.rt, d.sender = rt, rt.Sender().(*local.Sender)
			d.agents.rt = rt
			if err := d.agents.LoadAll(ctx); err != nil {
				return err
			}
			if err := d.recoverMoves(ctx); err != nil {
				return err
			}
			if d.rec != nil {
				return d.agents.tee.AttachAll(ctx, d.rec)
			}
			return nil
		},
	})
	if err != nil {
		return fail(fmt.Errorf("daemon: %w", err))
	}
	d.log.Info("daemon restored", "home", o.Home, "waiting_messages", er.Restored.Waiting, "unsent_outboxes", er.Restored.Unsent)

	d.srv = &http.Server{
		Handler:           d.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    serverHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	info := Info{PID: os.Getpid(), Addr: d.ln.Addr().String(), Home: o.Home, Version: o.Version, Started: d.started}
	b, _ := json.MarshalIndent(info, "", "  ") // plain fields always marshal
	if err := atomicfile.WriteFile(filepath.Join(o.Home, infoFile), append(b, '\n'), 0o600); err != nil {
		d.ln.Close()
		return fail(err)
	}
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	if o.RetainClosed > 0 {
		d.bg.Go(d.retain)
	}
	d.bg.Go(d.retryMoves)
	d.ready.Store(true)
	return d, nil
}

// bundledAgent is the embedded demo agent, always available as "demo".
func bundledAgent(ctx context.Context, name string) (actors.Agent, *agentfile.Registry, error) {
	y, _ := examples.Get(name)
	f, err := parseSource(name+".yaml", AgentSource{YAML: string(y)})
	if err != nil {
		return actors.Agent{}, nil, fmt.Errorf("daemon: bundled agent: %w", err)
	}
	reg, err := f.Registry(ctx, network.All())
	if err != nil {
		return actors.Agent{}, nil, fmt.Errorf("daemon: bundled agent: %w", err)
	}
	a := f.Agent(nil)
	reg.Configure(&a)
	a.Name = name
	return a, reg, nil
}

// Addr is the address the daemon listens on.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// Runtime is the daemon's actor runtime.
func (d *Daemon) Runtime() *actors.Runtime { return d.rt }

// Serve answers requests until Close, a shutdown request or ctx ends, then
// closes the daemon.
func (d *Daemon) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- d.srv.Serve(d.ln) }()
	go d.serveMetrics()
	select {
	case <-ctx.Done():
	case <-d.shutdown:
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			d.Close()
			return fmt.Errorf("daemon: serve: %w", err)
		}
	}
	return d.Close()
}

// Close stops accepting requests, lets running slices finish (up to 10 s),
// and closes the store. What is waiting stays in the inbox for the next
// start.
func (d *Daemon) Close() error {
	d.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.ready.Store(false)
		d.hub.close()
		_ = d.srv.Shutdown(ctx)
		d.closeMetrics(ctx)
		d.bgCancel()
		d.bg.Wait()
		rerr := d.rt.Close(ctx)
		d.agents.close()
		d.mcpAuth.close()
		var recErr error
		if d.rec != nil {
			_ = d.agents.tee.AttachAll(ctx, nil) // detaching writes nothing
			if err := d.rec.Close(); err != nil {
				recErr = fmt.Errorf("daemon: --record: %w", err)
			}
		}
		serr := d.store.Close()
		os.Remove(filepath.Join(d.opts.Home, infoFile))
		switch {
		case errors.Is(rerr, context.DeadlineExceeded):
			// Their input stays in the inbox: the next start runs them.
			d.log.Warn("daemon stopped with slices still running; they run again at the next start")
		case rerr != nil:
			d.closeErr = rerr
		}
		if serr != nil || recErr != nil {
			d.closeErr = errors.Join(d.closeErr, serr, recErr)
		}
	})
	return d.closeErr
}

// observe feeds the live views and remembers failures for status.
func (d *Daemon) observe(ev actors.Event) {
	switch ev.Kind {
	case actors.EventSliceError:
		d.failMu.Lock()
		d.failed[ev.Thread] = ev.Err.Error()
		d.failMu.Unlock()
	case actors.EventOAuth:
		d.failMu.Lock()
		k := oauthKey(ev.Thread, ev.Call)
		if ev.URL == "" {
			ev.URL = d.oauthURLs[k]
		}
		delete(d.oauthURLs, k)
		d.oauth[k] = ev
		d.failMu.Unlock()
	case actors.EventItem:
		d.failMu.Lock()
		delete(d.failed, ev.Thread)
		d.failMu.Unlock()
		if ev.Item.Kind == infinity.KindUser {
			d.sends.forget(ev.Thread, infinity.MessageID(ev.Item.ID))
		}
		if ev.Item.Notice != "" {
			d.metrics.BudgetNotice(ev.Item.Notice)
			if ev.Item.Notice == infinity.NoticeBudgetWarning || ev.Item.Notice == infinity.NoticeBudgetSpent {
				d.log.Warn("budget", "thread", ev.Thread, "notice", ev.Item.Notice, "text", ev.Item.Text)
			}
		}
	case actors.EventThreadCreated:
		if ev.Info.Parent != "" {
			d.hub.poke(ev.Info.Parent)
		}
	case actors.EventSlice, actors.EventCompacted:
		if d.hub.followed(ev.Thread) { // only a live view shows them
			d.live.add(ev)
		}
	case actors.EventThreadClosed:
		d.live.forget(ev.Thread)
		d.sends.forgetThread(ev.Thread)
	}
	d.hub.poke(ev.Thread)
}

func (d *Daemon) failure(id infinity.ThreadID) string {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	return d.failed[id]
}

// checkAddr refuses a non-loopback listen address unless allowed.
func checkAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("daemon: listen address %q: %v: %w", addr, err, infinity.ErrInvalid)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("daemon: %q is not a loopback address; the daemon listens on loopback only unless --allow-remote is given: %w", addr, infinity.ErrInvalid)
}

// loadToken reads the bearer token, creating it (0600) on first start.
func loadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if !validToken(tok) {
			return "", fmt.Errorf("daemon: token file %s is damaged (%w); delete it to make a new one", path, ErrBadToken)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("daemon: token file %s is readable by others and cannot be fixed: %w", path, err)
			}
		}
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
		var raw [32]byte
		rand.Read(raw[:]) // crypto/rand.Read never fails
		tok := hex.EncodeToString(raw[:])
		if err := atomicfile.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			return "", err
		}
		return tok, nil
	default:
		return "", fmt.Errorf("daemon: token: %w", err)
	}
}

// ReadInfo reads daemon.json from home; fs.ErrNotExist when no daemon
// wrote one.
func ReadInfo(home string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(home, infoFile))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", filepath.Join(home, infoFile), err)
	}
	return info, nil
}

// ReadToken reads the bearer token from home.
func ReadToken(home string) (string, error) {
	path := filepath.Join(home, tokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if !validToken(tok) {
		return "", fmt.Errorf("token file %s is damaged (%w): the daemon of this home wrote it when it started; stop that daemon (infinity daemon stop), delete the file and start the daemon again to make a new one", path, ErrBadToken)
	}
	return tok, nil
}

// ErrBadToken reports a token file that is not a token: too short, or
// with bytes no token has.
var ErrBadToken = errors.New("not a token of at least 32 printable characters")

// validToken accepts what the daemon writes (hex) and any token of at
// least 32 printable ASCII characters without spaces.
func validToken(tok string) bool {
	if len(tok) < 32 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return false
		}
	}
	return true
}

func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeJSONFile writes v as indented JSON to path (0600, its directory
// made 0700 if missing), atomically.
func writeJSONFile(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// callbackBase is the base of the RAP callback URLs: set, an absolute
// http(s) URL without query or fragment (its trailing slash dropped); else
// http:// and addr, as a local client reaches it.
func callbackBase(set, addr string) (string, error) {
	if set == "" {
		return "http://" + reachable(addr), nil
	}
	if err := CheckCallbackURL(set); err != nil {
		return "", fmt.Errorf("daemon: %w", err)
	}
	return strings.TrimRight(set, "/"), nil
}

// CheckCallbackURL checks an Options.CallbackURL: empty, or an absolute
// http(s) URL without user, query or fragment (ErrInvalid).
func CheckCallbackURL(set string) error {
	if set == "" {
		return nil
	}
	u, err := url.Parse(set)
	// An empty query or fragment ("https://x/?", "https://x/#") counts: the
	// callback paths would land in it.
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(set, "?#") || u.User != nil {
		return fmt.Errorf("callback URL %q: want an http(s) URL such as https://tools.example.com, without user, query or fragment: %w", set, infinity.ErrInvalid)
	}
	return nil
}

// reachable is addr as a local client reaches it: a listener on all
// interfaces (0.0.0.0, [::], :PORT) is named 127.0.0.1.
func reachable(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return net.JoinHostPort("127.0.0.1", port)
		}
	}
	return addr
}
