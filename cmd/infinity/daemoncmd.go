package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/telemetry"
)

const daemonLong = `Runs the daemon in the foreground until Ctrl-C or SIGTERM stops it. "daemon
start" runs it in the background (log: HOME/daemon.log), "daemon stop" stops
that one, and "daemon status" shows whether one runs and what it holds.

The daemon keeps every thread, timer and waiting message under its home
(default ~/.infinity): a restart, or a crash, loses nothing that the API
acknowledged. It listens on 127.0.0.1 only; clients authenticate with the
token in HOME/token.

Costs come from a prices file (USD per million tokens per provider/model;
see examples/prices.yaml): HOME/prices.yaml, or --prices FILE (default
$INFINITY_PRICES). An agent file's model price overrides it. There are no
built-in prices: a model without one shows its tokens and "-" for cost.

Observability: GET /healthz answers without the token ({"status":"ok"});
GET /metrics serves Prometheus metrics (with the token, or without it on
--metrics-addr). Traces (a span per slice, with its model calls, tool calls
and commit) are sent over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set
in the daemon's environment, and cost nothing otherwise.

Slow and rate-limited models: a slice waiting for its model holds none of
the daemon's workers; --max-model-calls bounds the calls in flight, and
--model-limit PROVIDER[/MODEL]=concurrent=N,rpm=N,tpm=N bounds the calls to
a provider or model across every thread (agent files may set rate_limit
too; the flag wins). Calls beyond a limit wait, root threads taking turns;
"daemon status --json" shows the limits in force.

API keys: model providers run in the daemon, so their keys must be in its
environment when it starts, or in HOME/env (NAME=value lines).`

func (a *app) daemonCommand() *cobra.Command {
	o := &daemonOpts{}
	cmd := &cobra.Command{
		Use:               "daemon [flags]",
		Short:             "run the daemon in the foreground, or start, stop or query it",
		Long:              daemonLong,
		Args:              subcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return helpOf(cmd, args[1:])
			}
			home, err := a.homeDir()
			if err != nil {
				return err
			}
			a.serving = true
			return daemonRun(cmd.Context(), home, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.flags(cmd)
	cmd.AddCommand(a.daemonStartCommand(), a.daemonStopCommand(), a.daemonStatusCommand())
	return cmd
}

type daemonOpts struct {
	addr        string
	allowRemote bool
	idle        time.Duration
	logLevel    string
	logFormat   string
	metricsAddr string
	callbackURL string
	prices      string
	cacheMiB    int64
	memtableMiB int64
	minFreeMiB  int64
	retain      time.Duration
	record      string // --record
	maxCalls    int
	limits      []string
	// parsedLimits is limits, read by check.
	parsedLimits map[string]actors.ModelLimit
}

// flags declares the daemon's flags on cmd.
func (o *daemonOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", daemon.DefaultAddr, "the address to listen on (loopback only, unless --allow-remote; port 0 picks one)")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback --addr (the token still guards every request)")
	f.DurationVar(&o.idle, "idle", 100*time.Millisecond, "how long a thread that is not asleep stays in memory without input before it hibernates (a sleeping thread hibernates at once)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text (key=value lines) or json (one JSON object per line); lines about a thread carry its id as \"thread\"")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "also serve /metrics (Prometheus) and /healthz here without the token, e.g. 127.0.0.1:9464 (loopback only unless --allow-remote; on the API's address /metrics needs the token)")
	f.StringVar(&o.callbackURL, "callback-url", "", "the base URL RAP tool servers post results to, when they reach the daemon through a proxy or another address (default: http://ADDR, with 127.0.0.1 for an address on all interfaces)")
	f.StringVar(&o.prices, "prices", os.Getenv("INFINITY_PRICES"), "the prices file (default $INFINITY_PRICES, else HOME/prices.yaml when it exists)")
	f.Int64Var(&o.cacheMiB, "cache-mib", disk.DefaultCacheSize>>20, "the store's block cache in MiB: with the memtables, what the store keeps in memory whatever the size of the history")
	f.Int64Var(&o.memtableMiB, "memtable-mib", disk.DefaultMemTableSize>>20, "the store's memtable in MiB (up to two are held while one is written out)")
	f.Int64Var(&o.minFreeMiB, "min-free-mib", disk.DefaultMinFree>>20, "free disk space in MiB under which writes are refused (507 insufficient_storage) while reads go on; 0 turns the check off")
	f.DurationVar(&o.retain, "retain-closed", 0, "delete closed trees whose root's last item is older than this (e.g. 720h); 0 keeps everything")
	f.StringVar(&o.record, "record", "", "write every model call of every tree to this file (truncated at start), for infinity replay")
	f.IntVar(&o.maxCalls, "max-model-calls", 1024, "model calls in flight at once across every thread (a slice waiting for its model holds no worker)")
	f.StringArrayVar(&o.limits, "model-limit", nil, "a rate limit shared by every thread: PROVIDER[/MODEL]=concurrent=N,rpm=N,tpm=N (any of the three; repeat the flag for more); it wins over agent files' rate_limit")
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]cobra.Completion{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]cobra.Completion{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("prices", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	for _, name := range []string{"addr", "metrics-addr", "callback-url", "idle", "cache-mib", "memtable-mib", "min-free-mib", "retain-closed", "max-model-calls", "model-limit"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
}

func (o *daemonOpts) args(home string) []string {
	args := []string{"daemon", "--home", home, "--addr", o.addr, "--idle", o.idle.String(),
		"--log-level", o.logLevel, "--log-format", o.logFormat, "--metrics-addr", o.metricsAddr, "--callback-url", o.callbackURL, "--allow-remote=" + fmt.Sprint(o.allowRemote),
		"--cache-mib", fmt.Sprint(o.cacheMiB), "--memtable-mib", fmt.Sprint(o.memtableMiB), "--min-free-mib", fmt.Sprint(o.minFreeMiB), "--retain-closed", o.retain.String(),
		"--max-model-calls", fmt.Sprint(o.maxCalls)}
	for _, l := range o.limits {
		args = append(args, "--model-limit", l)
	}
	if o.record != "" {
		abs, err := filepath.Abs(o.record)
		if err != nil {
			abs = o.record
		}
		args = append(args, "--record", abs)
	}
	if o.prices != "" {
		if abs, err := filepath.Abs(o.prices); err == nil {
			return append(args, "--prices", abs)
		}
		return append(args, "--prices", o.prices)
	}
	return args
}

func daemonRun(ctx context.Context, home string, o *daemonOpts, stdout, stderr io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel)) // checked
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if o.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	logger := slog.New(handler)
	tp, stopTracing, err := telemetry.TracerFromEnv(ctx, "infinity-daemon")
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			logger.Warn("traces not all exported", "err", err)
		}
	}()
	procs := actors.RaiseProcs()
	logger.Debug("go processors", "gomaxprocs", procs, "cpus", runtime.NumCPU())
	start := time.Now()
	d, err := daemon.Open(ctx, daemon.Options{Home: home, Addr: o.addr, AllowRemote: o.allowRemote,
		Logger: logger, Version: buildVersion().Version, Idle: o.idle, Prices: o.prices, RetainClosed: o.retain, Record: o.record,
		MetricsAddr: o.metricsAddr, CallbackURL: o.callbackURL, Tracer: tp, MaxModelCalls: o.maxCalls, ModelLimits: o.parsedLimits,
		Store: []disk.Option{disk.WithCacheSize(o.cacheMiB << 20), disk.WithMemTableSize(uint64(o.memtableMiB) << 20), disk.WithMinFree(uint64(o.minFreeMiB) << 20)}})
	if errors.Is(err, daemon.ErrLocked) {
		return fmt.Errorf("%w (another daemon uses %s; see \"infinity daemon status\")", err, home)
	}
	if err != nil {
		return missing(err) // a --prices file that is not there: exit 3
	}
	fmt.Fprintf(stdout, "infinity daemon ready on http://%s (home %s, pid %d, ready in %s)\n",
		d.Addr(), home, os.Getpid(), time.Since(start).Round(time.Millisecond))
	err = d.Serve(ctx)
	fmt.Fprintln(stdout, "infinity daemon stopped")
	return err
}

// check checks the flags' values.
func (o *daemonOpts) check() error {
	if o.retain < 0 {
		return usagef("daemon: --retain-closed %s: use a positive duration, or 0 to keep everything", o.retain)
	}
	if o.maxCalls < 1 {
		return usagef("daemon: --max-model-calls %d: use a positive number", o.maxCalls)
	}
	if err := daemon.CheckCallbackURL(o.callbackURL); err != nil {
		return usagef("daemon: --callback-url: %v", err)
	}
	o.parsedLimits = nil
	for _, s := range o.limits {
		key, lim, err := parseModelLimit(s)
		if err != nil {
			return usagef("daemon: --model-limit %q: %v", s, err)
		}
		if o.parsedLimits == nil {
			o.parsedLimits = map[string]actors.ModelLimit{}
		}
		o.parsedLimits[key] = lim
	}
	if o.cacheMiB < 1 || o.memtableMiB < 1 || o.minFreeMiB < 0 {
		return usagef("daemon: --cache-mib %d, --memtable-mib %d, --min-free-mib %d: the cache and the memtable take at least 1 MiB and the reserve is not negative",
			o.cacheMiB, o.memtableMiB, o.minFreeMiB)
	}
	switch o.logFormat {
	case "text", "json":
	default:
		return usagef("daemon: --log-format %q: use text or json", o.logFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usagef("daemon: --log-level %q: use debug, info, warn or error", o.logLevel)
	}
	return nil
}

// daemonStarted is what "daemon start --json" prints.
type daemonStarted struct {
	Addr string `json:"addr"`
	PID  int    `json:"pid"`
	Home string `json:"home"`
	Log  string `json:"log,omitempty"`
	// AlreadyRunning says a daemon ran for the home already: none was
	// started.
	AlreadyRunning bool `json:"already_running"`
}

func (a *app) daemonStartCommand() *cobra.Command {
	o := &daemonOpts{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "start [flags]",
		Short: "start the daemon in the background",
		Long: `Starts the daemon in the background, detached from the terminal, and waits
until it answers. Its log goes to HOME/daemon.log. It takes the flags of
"infinity daemon" (see "infinity daemon --help"). When a daemon runs for the
home already, it says so and starts none.`,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			home, err := a.homeDir()
			if err != nil {
				return err
			}
			st, err := daemonStart(cmd.Context(), home, o)
			if err != nil {
				return err
			}
			switch {
			case asJSON:
				return printJSON(cmd.OutOrStdout(), st)
			case st.AlreadyRunning:
				fmt.Fprintf(cmd.OutOrStdout(), "a daemon already runs on http://%s (pid %d)\n", st.Addr, st.PID)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "infinity daemon started on http://%s (pid %d, home %s, log %s)\n", st.Addr, st.PID, st.Home, st.Log)
			}
			return nil
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the daemon's address, pid, home and log as JSON")
	return cmd
}

func daemonStart(ctx context.Context, home string, o *daemonOpts) (daemonStarted, error) {
	st := daemonStarted{Home: home}
	if c, info, err := daemon.Dial(home); err == nil {
		if _, err := c.Status(ctx); err == nil {
			st.Addr, st.PID, st.AlreadyRunning = info.Addr, info.PID, true
			return st, nil
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return st, fmt.Errorf("daemon start: %w", err)
	}
	st.Log = filepath.Join(home, daemon.LogFile)
	logf, err := os.OpenFile(st.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return st, fmt.Errorf("daemon start: %w", err)
	}
	defer logf.Close()
	var from int64 // where this start's lines begin in the log
	if fi, err := logf.Stat(); err == nil {
		from = fi.Size()
	}
	self, err := os.Executable()
	if err != nil {
		return st, fmt.Errorf("daemon start: %w", err)
	}
	cmd := exec.Command(self, o.args(home)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return st, fmt.Errorf("daemon start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-exited:
			err = fmt.Errorf("daemon start: the daemon exited (%v); it wrote to %s:\n%s", err, st.Log, tail(st.Log, from, 10))
			return st, &daemonExited{code: cmd.ProcessState.ExitCode(), err: err}
		case <-deadline:
			return st, fmt.Errorf("daemon start: not ready after 30 s; see %s", st.Log)
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		c, info, err := daemon.Dial(home)
		if err != nil || info.PID != cmd.Process.Pid {
			continue
		}
		if _, err := c.Status(ctx); err == nil {
			st.Addr, st.PID = info.Addr, info.PID
			return st, nil
		}
	}
}

func (a *app) daemonStopCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stop [flags]",
		Short: "stop the background daemon",
		Long: `Asks the daemon of the home to stop, and waits until it has (at most 15 s).
The exit status is 4 when none runs.`,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := a.homeDir()
			if err != nil {
				return err
			}
			c, info, err := daemon.Dial(home)
			if err != nil {
				return err
			}
			if err := c.Shutdown(cmd.Context()); err != nil {
				return fmt.Errorf("daemon stop: %w", err)
			}
			for range 300 {
				if _, err := daemon.ReadInfo(home); errors.Is(err, fs.ErrNotExist) {
					if asJSON {
						return printJSON(cmd.OutOrStdout(), map[string]any{"stopped": true, "pid": info.PID})
					}
					fmt.Fprintf(cmd.OutOrStdout(), "infinity daemon stopped (pid %d)\n", info.PID)
					return nil
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-cmd.Context().Done():
					return context.Cause(cmd.Context())
				}
			}
			return fmt.Errorf("daemon stop: pid %d did not stop within 15 s", info.PID)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the stopped daemon's pid as JSON")
	return cmd
}

func (a *app) daemonStatusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [flags]",
		Short: "show whether a daemon runs, and what it holds",
		Long: `Shows whether a daemon runs for the home: its address, pid, version and
uptime, and how many threads, waiting messages and timers, and agents it
holds; and how busy it is: its workers (256 at most), the runs queued for
one, the slices waiting for their model without one, and the model calls
in flight (at most --max-model-calls) and waiting for their turn. The
exit status is 4 when none runs.`,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := a.homeDir()
			if err != nil {
				return err
			}
			c, _, err := daemon.Dial(home)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return fmt.Errorf("daemon status: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "running     http://%s (pid %d, version %s, up %s)\nhome        %s\nthreads     %d (%d in memory)\nwaiting     %d messages and timers\nagents      %d\n",
				st.Addr, st.PID, st.Version, st.Uptime, st.Home, st.Threads, st.Active, st.Waiting, st.Agents)
			fmt.Fprintf(cmd.OutOrStdout(), "workers     %d, %d runs queued, %d slices waiting for their model\nmodel calls %d in flight (at most %d), %d waiting for their turn\n",
				st.Host.Working, st.Host.Queued, st.Host.Detached, st.ModelCalls.InFlight, st.ModelCalls.Max, st.ModelCalls.Waiting)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// tail returns the last n lines of a file from the offset from on.
func tail(path string, from int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20)) // one start's lines
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// daemonExited is a background daemon that exited before it answered: its
// exit status carries over where the table has one (a usage error, a file
// not found); anything else is an error (1).
type daemonExited struct {
	code int
	err  error
}

func (e *daemonExited) Error() string { return e.err.Error() }
func (e *daemonExited) Unwrap() error { return e.err }
func (e *daemonExited) Is(target error) bool {
	return e.code == exitUsage && target == errUsage || e.code == exitNotFound && target == errNotFound
}

// parseModelLimit reads PROVIDER[/MODEL]=concurrent=N,rpm=N,tpm=N.
func parseModelLimit(s string) (string, actors.ModelLimit, error) {
	var lim actors.ModelLimit
	key, spec, ok := strings.Cut(s, "=")
	if !ok || key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return "", lim, errors.New("want PROVIDER[/MODEL]=concurrent=N,rpm=N,tpm=N, such as openai/gpt-4.1=rpm=600,tpm=400000")
	}
	for _, part := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(val)
		if !ok || err != nil || n < 1 {
			return "", lim, fmt.Errorf("%q: want concurrent=N, rpm=N or tpm=N with N a positive number", part)
		}
		switch name {
		case "concurrent":
			lim.Concurrent = n
		case "rpm":
			lim.RPM = n
		case "tpm":
			lim.TPM = n
		default:
			return "", lim, fmt.Errorf("%q: the bounds are concurrent, rpm and tpm", name)
		}
	}
	return key, lim, nil
}
