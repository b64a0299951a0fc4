package rap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/infinity-runtime/infinity/internal/procsup"
)

// LogKey is the attribute that names a local tool server in the log lines
// of its standard error, starts and stops.
const LogKey = "rap_server"

// What a local server with a fixed port (Command.Port) gets.
const (
	// PortEnv is the variable that holds the port.
	PortEnv = "INFINITY_PORT"
	// PortArg, in an argument, is replaced by the port.
	PortArg = "{port}"
)

// Command is a local tool server: a program the Loader starts when it
// first needs the server (to fetch its manifest, invoke one of its tools
// or notify it) and reaches at http://127.0.0.1:PORT.
//
// The port is the server's to choose unless Port is set: once it listens,
// it prints one line on its standard output, a JSON object {"port":N}
// (what `infinity tools serve --port 0` does); lines before it are
// ignored and the rest of its standard output is discarded. With Port set,
// the server gets the port as PortEnv and in place of PortArg in Args, and
// is ready once 127.0.0.1:Port accepts connections (so nothing else may
// listen there). Either way it has ConnectTimeout (Server) to get ready.
//
// It runs under supervision (internal/procsup): its standard error goes to
// the Loader's log, line by line, with its name under LogKey; when it
// dies, the next use starts it again, on a port that may differ (a server
// that keeps dying is started again only after a backoff, and uses
// meanwhile fail saying so); Loader.Close stops it, with what it started.
// The callback URLs given to it address the runtime, not the server, so
// they stay good across its restarts, but what it held in memory (the
// calls it was running) is lost with it.
type Command struct {
	// Path is the program: a name looked up in PATH, or a path.
	Path string
	// Args are its arguments.
	Args []string
	// Env are variables (NAME=value) it gets besides procsup.InheritedEnv's
	// few of this process's environment (a variable set here wins).
	Env []string
	// Redact are values passed in Env (credentials) that are never logged
	// as they are, should the server write them to its standard error.
	Redact []string
	// Dir is its working directory; "" means this process's.
	Dir string
	// Port, when set, is the port it must listen on; 0: it announces the
	// one it chose.
	Port int
	// Idle is how long it may go unused (no manifest fetch, invocation or
	// notification) before it is stopped; 0 means never. A stopped server
	// cannot deliver the results of calls it was still running, so set it
	// only for a server whose calls end with their acknowledgement or that
	// keeps its state elsewhere.
	Idle time.Duration
	// MinBackoff and MaxBackoff bound the wait before a start after the
	// second failure in a row (defaults: procsup's, 1 s and 1 min).
	MinBackoff, MaxBackoff time.Duration
}

// terminateAfter is how long a stopping server has between SIGTERM and
// SIGKILL.
const terminateAfter = 5 * time.Second

// maxAnnounce bounds what is read of a server's standard output while
// waiting for its port.
const maxAnnounce = 64 << 10

// localServer is a supervised local tool server.
type localServer struct {
	name    string
	port    int
	connect time.Duration
	sup     *procsup.Supervisor[*process]
	err     error // the supervisor could not be made
}

func newLocal(name string, c Command, connect time.Duration, log *slog.Logger) *localServer {
	ls := &localServer{name: name, port: c.Port, connect: connect}
	args := c.Args
	env := append(procsup.InheritedEnv(), c.Env...)
	if c.Port > 0 {
		p := strconv.Itoa(c.Port)
		args = make([]string, len(c.Args))
		for i, a := range c.Args {
			args[i] = strings.ReplaceAll(a, PortArg, p)
		}
		env = append(env, PortEnv+"="+p)
	}
	idle := c.Idle
	if idle <= 0 {
		idle = -1 // never
	}
	ls.sup, ls.err = procsup.New(procsup.Config[*process]{
		Name: name, Path: c.Path, Args: args, Env: env, Dir: c.Dir,
		Start: ls.start, Log: log, LogKey: LogKey, Idle: idle, Redact: c.Redact,
		MinBackoff: c.MinBackoff, MaxBackoff: c.MaxBackoff,
	})
	if ls.err != nil {
		ls.err = fmt.Errorf("RAP server %s: %w", name, ls.err)
	}
	return ls
}

// acquire returns the running server's base URL, starting the server if
// none runs, and the function that ends this use of it.
func (ls *localServer) acquire(ctx context.Context) (string, func(), error) {
	if ls.err != nil {
		return "", nil, ls.err
	}
	lease, err := ls.sup.Acquire(ctx)
	if err != nil {
		return "", nil, err
	}
	return lease.Conn.base, lease.Release, nil
}

func (ls *localServer) close() error {
	if ls.err != nil {
		return nil
	}
	return ls.sup.Close()
}

// live reports whether the server runs or is being started.
func (ls *localServer) live() bool { return ls.err == nil && ls.sup.Live() }

// pid returns the running server's process id, or 0.
func (ls *localServer) pid() int {
	if ls.err != nil {
		return 0
	}
	return ls.sup.Pid()
}

// start starts cmd and waits, within the connect timeout, until it is
// ready: it announced its port, or its fixed port accepts connections.
func (ls *localServer) start(ctx context.Context, cmd *exec.Cmd) (*process, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, ls.connect)
	defer cancel()
	var out, w *os.File
	if ls.port == 0 {
		var err error
		if out, w, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("standard output pipe: %w", err)
		}
		cmd.Stdout = w
	}
	err := cmd.Start()
	if w != nil {
		w.Close() // the child holds its own copy
	}
	if err != nil {
		if out != nil {
			out.Close()
		}
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	port := ls.port
	if out != nil {
		port, err = ls.announced(ctx, p, out)
	} else {
		err = ls.listening(ctx, p)
	}
	if err != nil {
		p.kill()
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			what := "announce its port ({\"port\":N} on its standard output)"
			if ls.port != 0 {
				what = fmt.Sprintf("accept connections on port %d", ls.port)
			}
			return nil, fmt.Errorf("it did not %s within %s (the connect timeout of RAP server %s): %w", what, ls.connect, ls.name, ErrTimeout)
		}
		return nil, err
	}
	p.base = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return p, nil
}

// announced reads the server's standard output until it announces its
// port, then discards the rest.
func (ls *localServer) announced(ctx context.Context, p *process, out *os.File) (int, error) {
	type found struct {
		port int
		err  error
	}
	ch := make(chan found, 1)
	go func() {
		defer out.Close()
		br := bufio.NewReader(io.LimitReader(out, maxAnnounce))
		for {
			line, err := br.ReadString('\n')
			var a struct {
				Port *int `json:"port"`
			}
			if json.Unmarshal([]byte(strings.TrimSpace(line)), &a) == nil && a.Port != nil {
				if *a.Port < 1 || *a.Port > 65535 {
					ch <- found{err: fmt.Errorf("it announced port %d: want 1 to 65535", *a.Port)}
					return
				}
				ch <- found{port: *a.Port}
				_, _ = io.Copy(io.Discard, out)
				return
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = fmt.Errorf("its standard output ended (or passed %d bytes) without announcing its port ({\"port\":N})", maxAnnounce)
				}
				ch <- found{err: err}
				return
			}
		}
	}()
	exited := func() error {
		return fmt.Errorf("it exited (%v) before announcing its port ({\"port\":N} on its standard output)", exitText(p.err))
	}
	select {
	case f := <-ch:
		if f.err == nil {
			return f.port, nil
		}
		// Its standard output ends when it exits: say how it exited.
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-p.done:
			return 0, exited()
		case <-t.C:
			return 0, f.err
		}
	case <-p.done:
		return 0, exited()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// listening waits until the fixed port accepts connections.
func (ls *localServer) listening(ctx context.Context, p *process) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ls.port))
	var d net.Dialer
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("it exited (%v) before accepting connections on port %d", exitText(p.err), ls.port)
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// process is one run of a local server (procsup.Conn).
type process struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
	err  error // set before done closes
}

// Wait returns once the process has ended, with how it ended.
func (p *process) Wait() error {
	<-p.done
	return p.err
}

// Close asks the process to stop (SIGTERM), kills it after
// terminateAfter, and returns once it has been reaped.
func (p *process) Close() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		_ = p.cmd.Process.Kill()
	}
	t := time.NewTimer(terminateAfter)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// kill kills the process and waits until it has been reaped.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
