// Package procsup supervises a long-lived child process that a program
// starts on demand: a local tool server, such as an MCP server spoken to
// over its standard input and output (tools/mcp), or a RAP tool server
// reached over HTTP on the port it announces (tools/rap).
//
// A Supervisor starts its process when a lease on it is first asked for
// (Acquire), not when it is made. When the process dies, the next Acquire
// starts it again; when it keeps dying (or failing to start) without a
// lease released in between, it is started again only after a backoff
// that doubles up to a cap, and Acquire fails at once with an error
// wrapping ErrBackoff until then. When no lease
// has been held for Config.Idle, the process is stopped; the next Acquire
// starts it again. Close stops it for good.
//
// The process runs in its own process group: when it stops, whatever is
// left of the group (the children it started) is killed, so they do not
// outlive it. Every line it writes to its standard error goes to the log,
// with its name under Config.LogKey. Its environment is Config.Env, by
// default InheritedEnv: a few variables of this program's environment,
// never all of it (this program's credentials are not handed down).
//
// How the program talks to the process is the caller's: Config.Start
// receives the prepared command, starts it (directly, or through a
// transport that does) and returns a Conn, the handle the supervisor waits
// on and closes.
package procsup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity/internal/backoff"
)

// Sentinel errors of Acquire.
var (
	// ErrClosed: the supervisor was closed.
	ErrClosed = errors.New("process supervisor closed")
	// ErrBackoff: the process failed several times in a row and is not
	// started again before its backoff ends.
	ErrBackoff = errors.New("process backing off after repeated failures")
)

// Defaults of Config.
const (
	DefaultIdle       = 10 * time.Minute
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultStable     = time.Minute
	DefaultStopGrace  = 10 * time.Second
	// DefaultLogKey names the process in its log lines.
	DefaultLogKey = "process"
)

// maxLine bounds one logged line of standard error; the rest of a longer
// line is left out.
const maxLine = 8 << 10

// Conn is the caller's handle on a started process.
type Conn interface {
	// Wait blocks until the process has ended or its connection has
	// closed, and returns why (nil for a clean end).
	Wait() error
	// Close stops the process, gracefully first, and returns once it has
	// ended and been reaped.
	Close() error
}

// Config describes a supervised process.
type Config[T Conn] struct {
	// Name names the process in the log and in errors.
	Name string
	// Path is the program: a name looked up in PATH, or a path.
	Path string
	// Args are its arguments, after the program's name.
	Args []string
	// Env is its whole environment (NAME=value); nil means InheritedEnv().
	Env []string
	// Dir is its working directory; "" means this program's.
	Dir string
	// Start starts cmd, which the supervisor has prepared (program,
	// arguments, environment, process group, standard error), and returns
	// the connection to it. Start must call cmd.Start, directly or through
	// a transport; if it fails after that, it must have stopped and reaped
	// the process (the supervisor then kills what is left of its group).
	Start func(ctx context.Context, cmd *exec.Cmd) (T, error)
	// Log receives the process's standard error and its starts, exits and
	// stops; nil means slog.Default().
	Log *slog.Logger
	// LogKey is the attribute that carries Name in every log line
	// (default DefaultLogKey).
	LogKey string
	// Idle is how long the process may go without a lease before it is
	// stopped (default DefaultIdle; negative: never).
	Idle time.Duration
	// MinBackoff and MaxBackoff bound the wait before a start after the
	// second failure in a row; it doubles with each further failure
	// (defaults DefaultMinBackoff and DefaultMaxBackoff). The first start
	// after a failure is not delayed.
	MinBackoff, MaxBackoff time.Duration
	// Stable is how long a process must run for its death not to count
	// as one more failure in a row (default DefaultStable). A lease
	// released without Fail also ends the run of failures.
	Stable time.Duration
	// StopGrace bounds Conn.Close; then the process group is killed
	// (default DefaultStopGrace).
	StopGrace time.Duration
	// Redact are strings (credentials passed in Env) replaced by
	// "[redacted]" in the logged standard error; those shorter than four
	// bytes are left alone.
	Redact []string
}

// inherited are the variables InheritedEnv passes on.
var inherited = []string{
	"HOME", "LOGNAME", "USER", "PATH", "SHELL", "TERM", "TMPDIR", "TZ",
	"LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// InheritedEnv returns the variables of this program's environment that a
// supervised process gets by default: HOME, LOGNAME, USER, PATH, SHELL,
// TERM, TMPDIR, TZ, the locale (LANG, LC_ALL, LC_CTYPE, LC_MESSAGES), the
// proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, also in lower case) and the
// certificate locations (SSL_CERT_FILE, SSL_CERT_DIR), those that are set.
func InheritedEnv() []string {
	var env []string
	for _, name := range inherited {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// Supervisor runs one process on demand. It is safe for concurrent use.
type Supervisor[T Conn] struct {
	cfg Config[T]
	log *slog.Logger

	mu       sync.Mutex
	cur      *proc[T]      // the process, running or stopping; nil when none
	starting chan struct{} // closed when the start in progress ends
	startGen uint64        // starts begun
	lastGen  uint64        // the last start that ended
	lastErr  error         // its error
	failures int           // failures in a row
	retryAt  time.Time     // no start before this
	closed   bool
	wg       sync.WaitGroup // watchers and stops
}

// proc is one run of the process.
type proc[T Conn] struct {
	conn     T
	pid      int
	started  time.Time
	inflight int
	lastUsed time.Time
	ended    bool // stopping or dead: no more leases
	idle     *time.Timer
	stderr   *stderrReader
	done     chan struct{} // closed once it has stopped
}

// New returns a supervisor of the process cfg describes; nothing starts
// until the first Acquire.
func New[T Conn](cfg Config[T]) (*Supervisor[T], error) {
	if cfg.Path == "" || cfg.Start == nil {
		return nil, errors.New("procsup: a process needs a Path and a Start function")
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Path
	}
	if cfg.Env == nil {
		cfg.Env = InheritedEnv()
	}
	if cfg.LogKey == "" {
		cfg.LogKey = DefaultLogKey
	}
	if cfg.Idle == 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.Stable <= 0 {
		cfg.Stable = DefaultStable
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	var redact []string
	for _, r := range cfg.Redact {
		if len(r) >= 4 {
			redact = append(redact, r)
		}
	}
	cfg.Redact = redact
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Supervisor[T]{cfg: cfg, log: log.With(cfg.LogKey, cfg.Name)}, nil
}

// Lease is the use of the running process by one caller; Release (or
// Fail) ends it.
type Lease[T Conn] struct {
	// Conn is the connection to the process.
	Conn T
	s    *Supervisor[T]
	p    *proc[T]
	once sync.Once
}

// Release ends the lease; the process stays for the next one, or until it
// has been idle for Config.Idle.
func (l *Lease[T]) Release() { l.once.Do(func() { l.s.release(l.p, nil) }) }

// Fail ends the lease and says that the connection broke (err says how):
// the process is stopped, counting as a failure, and the next Acquire
// starts it again.
func (l *Lease[T]) Fail(err error) {
	if err == nil {
		err = errors.New("the connection failed")
	}
	l.once.Do(func() { l.s.release(l.p, err) })
}

// Acquire returns a lease on the running process, starting it if none
// runs. It waits for a start already under way (or a stop, before
// starting again). It fails with the start's error, with an error
// wrapping ErrBackoff while the process backs off after failing more than
// once in a row, or wrapping ErrClosed.
func (s *Supervisor[T]) Acquire(ctx context.Context) (*Lease[T], error) {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", s.cfg.Name, ErrClosed)
		}
		if p := s.cur; p != nil && !p.ended {
			p.inflight++
			p.lastUsed = time.Now()
			if p.idle != nil {
				p.idle.Stop()
			}
			s.mu.Unlock()
			return &Lease[T]{Conn: p.conn, s: s, p: p}, nil
		}
		var wait chan struct{}
		gen := s.startGen
		switch {
		case s.starting != nil:
			wait = s.starting
		case s.cur != nil: // stopping
			wait = s.cur.done
		}
		if wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, fmt.Errorf("%s: waiting for the process: %w", s.cfg.Name, ctx.Err())
			}
			s.mu.Lock()
			if s.starting == nil && s.lastGen == gen && gen != 0 && s.lastErr != nil && s.cur == nil {
				err := s.lastErr
				s.mu.Unlock()
				return nil, err // the start this call waited for failed
			}
			continue
		}
		if d := time.Until(s.retryAt); d > 0 {
			n := s.failures
			s.mu.Unlock()
			return nil, fmt.Errorf("%s failed %d times in a row and is started again in %s: %w",
				s.cfg.Name, n, d.Round(100*time.Millisecond), ErrBackoff)
		}
		s.startGen++
		gen = s.startGen
		ch := make(chan struct{})
		s.starting = ch
		s.mu.Unlock()

		p, err := s.start(ctx)

		s.mu.Lock()
		s.starting = nil
		close(ch)
		s.lastGen, s.lastErr = gen, err
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.failedLocked(time.Time{})
			}
			s.mu.Unlock()
			return nil, err
		}
		// Installed even when closed meanwhile: Close, waiting for this
		// start, stops it.
		s.cur = p
		s.wg.Add(1)
		go s.watch(p)
	}
}

// start starts one run of the process.
func (s *Supervisor[T]) start(ctx context.Context) (*proc[T], error) {
	cmd := exec.Command(s.cfg.Path, s.cfg.Args...)
	cmd.Env = s.cfg.Env
	cmd.Dir = s.cfg.Dir
	setGroup(cmd)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: standard error pipe: %w", s.cfg.Name, err)
	}
	cmd.Stderr = w
	started := time.Now()
	conn, err := s.cfg.Start(ctx, cmd)
	w.Close() // the child holds its own copy
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	// Read even after a failed start: what it said is often why.
	stderr := s.readStderr(r, pid)
	if err != nil {
		if pid != 0 {
			killGroup(pid)
		}
		stderr.finish(time.Second)
		return nil, fmt.Errorf("start %s: %w", s.cfg.Name, err)
	}
	s.log.Info("process started", "pid", pid, "command", s.cfg.Path)
	return &proc[T]{conn: conn, pid: pid, started: started, lastUsed: time.Now(), stderr: stderr, done: make(chan struct{})}, nil
}

// failedLocked counts a failure (a failed start when started is zero, else
// the end of a process started then) and sets when the next start may be.
func (s *Supervisor[T]) failedLocked(started time.Time) {
	now := time.Now()
	if !started.IsZero() && now.Sub(started) >= s.cfg.Stable {
		s.failures = 0
	}
	s.failures++
	s.retryAt = time.Time{}
	if s.failures > 1 {
		s.retryAt = now.Add(backoff.Delay(s.cfg.MinBackoff, s.cfg.MaxBackoff, s.failures-1))
	}
}

// release ends a lease; failed says the connection broke.
func (s *Supervisor[T]) release(p *proc[T], failed error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.inflight--
	p.lastUsed = time.Now()
	if p.ended || s.closed {
		return
	}
	if failed != nil {
		p.ended = true
		if p.idle != nil {
			p.idle.Stop()
		}
		s.failedLocked(p.started)
		s.log.Warn("process connection failed; stopping the process", "pid", p.pid, "err", failed)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.stop(p, "its connection failed")
		}()
		return
	}
	if s.cur == p {
		// It served a call: whatever failed before, it works now.
		s.failures, s.retryAt = 0, time.Time{}
	}
	if p.inflight == 0 && s.cfg.Idle > 0 {
		if p.idle == nil {
			p.idle = time.AfterFunc(s.cfg.Idle, func() { s.idleFired(p) })
		} else {
			p.idle.Reset(s.cfg.Idle)
		}
	}
}

// idleFired stops the process if it has been idle long enough.
func (s *Supervisor[T]) idleFired(p *proc[T]) {
	s.mu.Lock()
	if p.ended || p.inflight > 0 || s.closed {
		s.mu.Unlock()
		return
	}
	if left := s.cfg.Idle - time.Since(p.lastUsed); left > 0 {
		p.idle.Reset(left)
		s.mu.Unlock()
		return
	}
	p.ended = true
	// A process that stops because it is not needed is no failure.
	s.failures, s.retryAt = 0, time.Time{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.stop(p, fmt.Sprintf("idle for %s", s.cfg.Idle))
}

// watch waits for the process to end; an end nobody asked for is a death.
func (s *Supervisor[T]) watch(p *proc[T]) {
	defer s.wg.Done()
	err := p.conn.Wait()
	s.mu.Lock()
	if p.ended {
		s.mu.Unlock()
		return
	}
	p.ended = true
	if p.idle != nil {
		p.idle.Stop()
	}
	s.failedLocked(p.started)
	n := s.failures
	s.mu.Unlock()
	s.log.Warn("process exited", "pid", p.pid, "ran", time.Since(p.started).Round(time.Millisecond),
		"exit", exitText(err), "failures_in_a_row", n)
	s.stop(p, "")
}

// stop closes the connection (the process ends), kills what is left of its
// group and forgets it. p.ended is set. why, when set, is logged.
func (s *Supervisor[T]) stop(p *proc[T], why string) error {
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close() }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(s.cfg.StopGrace):
		s.log.Warn("process did not stop in time; killing its process group", "pid", p.pid, "grace", s.cfg.StopGrace)
		killGroup(p.pid)
		select {
		case err = <-errc:
		case <-time.After(s.cfg.StopGrace):
			err = fmt.Errorf("%s (pid %d) did not stop", s.cfg.Name, p.pid)
		}
	}
	killGroup(p.pid)
	p.stderr.finish(time.Second)
	if why != "" {
		s.log.Info("process stopped", "pid", p.pid, "why", why, "exit", exitText(err))
	}
	s.mu.Lock()
	if s.cur == p {
		s.cur = nil
	}
	s.mu.Unlock()
	close(p.done)
	return err
}

// Live reports whether a process runs or is being started.
func (s *Supervisor[T]) Live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starting != nil || s.cur != nil && !s.cur.ended
}

// Pid returns the running process's id, or 0 when none runs.
func (s *Supervisor[T]) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.ended {
		return 0
	}
	return s.cur.pid
}

// Close stops the process (waiting for a start under way first) and
// every goroutine of the supervisor; Acquire fails afterwards. Its error
// says that the process could not be stopped.
func (s *Supervisor[T]) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for s.starting != nil {
		ch := s.starting
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	p := s.cur
	stopNow := false
	var wait chan struct{}
	if p != nil {
		if p.ended {
			wait = p.done
		} else {
			p.ended, stopNow = true, true
			if p.idle != nil {
				p.idle.Stop()
			}
		}
	}
	s.mu.Unlock()
	var err error
	switch {
	case stopNow:
		if serr := s.stop(p, "closed"); serr != nil && !isExit(serr) {
			err = serr
		}
	case wait != nil:
		<-wait
	}
	s.wg.Wait()
	return err
}

// exitText describes how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// isExit reports whether err is a process's exit status rather than a
// failure to stop it.
func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// stderrReader logs a process's standard error, line by line.
type stderrReader struct {
	r    *os.File
	done chan struct{}
}

func (s *Supervisor[T]) readStderr(r *os.File, pid int) *stderrReader {
	sr := &stderrReader{r: r, done: make(chan struct{})}
	go func() {
		defer close(sr.done)
		br := bufio.NewReader(r)
		for {
			line, err := readLine(br)
			if line = strings.TrimSpace(line); line != "" {
				s.log.Info("process stderr", "pid", pid, "line", s.redact(line))
			}
			if err != nil {
				return
			}
		}
	}()
	return sr
}

// finish waits up to d for the end of the standard error (every process
// holding it has exited), then closes it.
func (sr *stderrReader) finish(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sr.done:
	case <-t.C:
	}
	sr.r.Close()
	<-sr.done
}

// readLine reads one line, keeping at most maxLine bytes of it.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLine - len(b); len(chunk) > room {
			chunk, cut = chunk[:room], true
		}
		b = append(b, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := string(b)
		if cut {
			line += " [line cut]"
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return line, fmt.Errorf("read standard error: %w", err)
		}
		return line, err
	}
}

func (s *Supervisor[T]) redact(line string) string {
	for _, r := range s.cfg.Redact {
		line = strings.ReplaceAll(line, r, "[redacted]")
	}
	return line
}
