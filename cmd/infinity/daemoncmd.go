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
	"strings"
	"time"

	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/telemetry"
)

const daemonUsage = `Usage:
  infinity daemon [flags]          run in the foreground (Ctrl-C stops it)
  infinity daemon start [flags]    start in the background (log: HOME/daemon.log)
  infinity daemon stop [--home]    stop the background daemon
  infinity daemon status [--json]  show whether a daemon runs, and what it holds

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

Flags:
`

func daemonCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "start":
			return daemonStart(ctx, args[1:], stdout, stderr)
		case "stop":
			return daemonStop(ctx, args[1:], stdout, stderr)
		case "status":
			return daemonStatus(ctx, args[1:], stdout, stderr)
		}
	}
	f, o := daemonFlags("daemon", stderr)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	home, err := f.homeDir()
	if err != nil {
		return err
	}
	return daemonRun(ctx, home, o, stdout, stderr)
}

type daemonOpts struct {
	addr        string
	allowRemote bool
	idle        time.Duration
	logLevel    string
	logFormat   string
	metricsAddr string
	prices      string
	cacheMiB    int64
	memtableMiB int64
	minFreeMiB  int64
	retain      time.Duration
}

func daemonFlags(name string, stderr io.Writer) (*flags, *daemonOpts) {
	f := newFlags(name, daemonUsage, stderr)
	o := &daemonOpts{}
	f.StringVar(&o.addr, "addr", daemon.DefaultAddr, "the address to listen on (loopback only, unless --allow-remote; port 0 picks one)")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback --addr (the token still guards every request)")
	f.DurationVar(&o.idle, "idle", 100*time.Millisecond, "how long a thread that is not asleep stays in memory without input before it hibernates (a sleeping thread hibernates at once)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text (key=value lines) or json (one JSON object per line); lines about a thread carry its id as \"thread\"")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "also serve /metrics (Prometheus) and /healthz here without the token, e.g. 127.0.0.1:9464 (loopback only unless --allow-remote; on the API's address /metrics needs the token)")
	f.StringVar(&o.prices, "prices", os.Getenv("INFINITY_PRICES"), "the prices file (default $INFINITY_PRICES, else HOME/prices.yaml when it exists)")
	f.Int64Var(&o.cacheMiB, "cache-mib", disk.DefaultCacheSize>>20, "the store's block cache in MiB: with the memtables, what the store keeps in memory whatever the size of the history")
	f.Int64Var(&o.memtableMiB, "memtable-mib", disk.DefaultMemTableSize>>20, "the store's memtable in MiB (up to two are held while one is written out)")
	f.Int64Var(&o.minFreeMiB, "min-free-mib", disk.DefaultMinFree>>20, "free disk space in MiB under which writes are refused (507 insufficient_storage) while reads go on; 0 turns the check off")
	f.DurationVar(&o.retain, "retain-closed", 0, "delete closed trees whose root's last item is older than this (e.g. 720h); 0 keeps everything")
	return f, o
}

func (o *daemonOpts) args(home string) []string {
	args := []string{"daemon", "--home", home, "--addr", o.addr, "--idle", o.idle.String(),
		"--log-level", o.logLevel, "--log-format", o.logFormat, "--metrics-addr", o.metricsAddr, "--allow-remote=" + fmt.Sprint(o.allowRemote),
		"--cache-mib", fmt.Sprint(o.cacheMiB), "--memtable-mib", fmt.Sprint(o.memtableMiB), "--min-free-mib", fmt.Sprint(o.minFreeMiB), "--retain-closed", o.retain.String()}
	if o.prices != "" {
		if abs, err := filepath.Abs(o.prices); err == nil {
			return append(args, "--prices", abs)
		}
		return append(args, "--prices", o.prices)
	}
	return args
}

func daemonRun(ctx context.Context, home string, o *daemonOpts, stdout, stderr io.Writer) error {
	if o.retain < 0 {
		return fmt.Errorf("daemon: --retain-closed %s: use a positive duration, or 0 to keep everything: %w", o.retain, errUsage)
	}
	if o.cacheMiB < 1 || o.memtableMiB < 1 || o.minFreeMiB < 0 {
		return fmt.Errorf("daemon: --cache-mib %d, --memtable-mib %d, --min-free-mib %d: the cache and the memtable take at least 1 MiB and the reserve is not negative: %w",
			o.cacheMiB, o.memtableMiB, o.minFreeMiB, errUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("daemon: --log-level %q: use debug, info, warn or error", o.logLevel)
	}
	var handler slog.Handler
	switch o.logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		return fmt.Errorf("daemon: --log-format %q: use text or json: %w", o.logFormat, errUsage)
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
		Logger: logger, Version: version, Idle: o.idle, Prices: o.prices, RetainClosed: o.retain,
		MetricsAddr: o.metricsAddr, Tracer: tp,
		Store: []disk.Option{disk.WithCacheSize(o.cacheMiB << 20), disk.WithMemTableSize(uint64(o.memtableMiB) << 20), disk.WithMinFree(uint64(o.minFreeMiB) << 20)}})
	if errors.Is(err, daemon.ErrLocked) {
		return fmt.Errorf("%w (another daemon uses %s; see \"infinity daemon status\")", err, home)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "infinity daemon ready on http://%s (home %s, pid %d, ready in %s)\n",
		d.Addr(), home, os.Getpid(), time.Since(start).Round(time.Millisecond))
	err = d.Serve(ctx)
	fmt.Fprintln(stdout, "infinity daemon stopped")
	return err
}

func daemonStart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, o := daemonFlags("daemon start", stderr)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	home, err := f.homeDir()
	if err != nil {
		return err
	}
	if c, info, err := daemon.Dial(home); err == nil {
		if _, err := c.Status(ctx); err == nil {
			fmt.Fprintf(stdout, "a daemon already runs on http://%s (pid %d)\n", info.Addr, info.PID)
			return nil
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("daemon start: %w", err)
	}
	logPath := filepath.Join(home, daemon.LogFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("daemon start: %w", err)
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemon start: %w", err)
	}
	cmd := exec.Command(self, o.args(home)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("daemon start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("daemon start: the daemon exited (%v); the end of %s says:\n%s", err, logPath, tail(logPath, 10))
		case <-deadline:
			return fmt.Errorf("daemon start: not ready after 30 s; see %s", logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		c, info, err := daemon.Dial(home)
		if err != nil || info.PID != cmd.Process.Pid {
			continue
		}
		if _, err := c.Status(ctx); err == nil {
			fmt.Fprintf(stdout, "infinity daemon started on http://%s (pid %d, home %s, log %s)\n", info.Addr, info.PID, home, logPath)
			return nil
		}
	}
}

func daemonStop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("daemon stop", daemonUsage, stderr)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	home, err := f.homeDir()
	if err != nil {
		return err
	}
	c, info, err := daemon.Dial(home)
	if err != nil {
		return err
	}
	if err := c.Shutdown(ctx); err != nil {
		return err
	}
	for range 300 {
		if _, err := daemon.ReadInfo(home); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stdout, "infinity daemon stopped (pid %d)\n", info.PID)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("daemon stop: pid %d did not stop within 15 s", info.PID)
}

func daemonStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("daemon status", daemonUsage, stderr)
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	home, err := f.homeDir()
	if err != nil {
		return err
	}
	c, _, err := daemon.Dial(home)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "running     http://%s (pid %d, version %s, up %s)\nhome        %s\nthreads     %d (%d in memory)\nwaiting     %d messages and timers\nagents      %d\n",
		st.Addr, st.PID, st.Version, st.Uptime, st.Home, st.Threads, st.Active, st.Waiting, st.Agents)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
