package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// The exit status of every command, decided by exitCode from the error
// the command returned (errors.Is and errors.As only).
const (
	exitOK          = 0   // done
	exitError       = 1   // any other error
	exitUsage       = 2   // unknown command or flag, missing or extra argument, bad flag value
	exitNotFound    = 3   // no such thread, agent file, example or file
	exitNoDaemon    = 4   // no daemon runs for the home, or it went away
	exitFailed      = 5   // the followed thread (run --follow, logs -f) failed
	exitInterrupted = 130 // interrupted (Ctrl-C, SIGTERM)
)

// exitCodes is the table of exit statuses, as the help and the README
// show it.
const exitCodes = `Exit status:
  0    done
  1    an error not listed below
  2    usage: an unknown command or flag, a missing or extra argument, a bad
       flag value
  3    not found: no such thread, agent file, bundled example or file
  4    no daemon: none runs for the home, it refused the connection, or it
       went away while a command followed a thread
  5    the thread failed: "run --follow" or "logs -f" saw it end failed
  130  interrupted (Ctrl-C or SIGTERM); the commands that run until they
       are interrupted (daemon, tools serve, cloud-local without MESSAGE)
       stop cleanly with 0`

var (
	// errUsage is wrapped by every usage error (see usageError).
	errUsage = errors.New("usage")
	// errNotFound: what the user named does not exist.
	errNotFound = errors.New("not found")
	// errDaemonGone: the daemon went away while a command followed a
	// thread.
	errDaemonGone = errors.New("daemon went away")
	// errThreadFailed: the followed thread ended failed.
	errThreadFailed = errors.New("thread failed")
	// errInterrupted is the cause of the context main cancels on SIGINT or
	// SIGTERM; a test cancels run's context with it to simulate Ctrl-C.
	errInterrupted = errors.New("interrupted")
)

// usageError is a command used the wrong way. It is errUsage (errors.Is)
// and unwraps to its cause.
type usageError struct {
	err error
	// cmd is the command's path ("infinity logs"), for the hint to its
	// help; run fills it in.
	cmd string
	// shown says the usage was printed already: no hint then.
	shown bool
}

func (e *usageError) Error() string        { return e.err.Error() }
func (e *usageError) Unwrap() error        { return e.err }
func (e *usageError) Is(target error) bool { return target == errUsage }

// usagef makes a usage error (%w wraps as in fmt.Errorf).
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// notFoundError marks an error as errNotFound, keeping its cause.
type notFoundError struct{ err error }

func (e *notFoundError) Error() string        { return e.err.Error() }
func (e *notFoundError) Unwrap() error        { return e.err }
func (e *notFoundError) Is(target error) bool { return target == errNotFound }

// missing marks the error of a file the user named as not found when the
// file does not exist.
func missing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &notFoundError{err}
	}
	return err
}

// exitCode is the exit status for what a command returned.
func exitCode(err error) int {
	var ae *daemon.APIError
	isAPI := errors.As(err, &ae)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errThreadFailed):
		return exitFailed
	case errors.Is(err, daemon.ErrNoDaemon), errors.Is(err, errDaemonGone),
		isAPI && ae.Code == daemon.CodeUnavailable:
		return exitNoDaemon
	case errors.Is(err, errNotFound), errors.Is(err, infinity.ErrNotFound),
		isAPI && ae.Code == daemon.CodeNotFound:
		return exitNotFound
	}
	return exitError
}

// report prints a command's error on w as main does ("infinity: " and the
// message with its hint; a usage error adds where its help is) and returns
// the exit status.
func report(err error, w io.Writer) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	msg := explain(err)
	fmt.Fprintln(w, "infinity:", msg)
	if ue, ok := errors.AsType[*usageError](err); ok && !ue.shown {
		path := ue.cmd
		if path == "" {
			path = "infinity"
		}
		if strings.Contains(msg, "\n") {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", path)
	}
	return code
}

// explain adds the next step to an API error.
func explain(err error) string {
	if errors.Is(err, errDaemonGone) {
		return err.Error() + " (start it again with \"infinity daemon start\")"
	}
	var ae *daemon.APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	hint := map[string]string{
		daemon.CodeNotFound:     "list threads with \"infinity ls --all\"",
		daemon.CodeClosed:       "closed threads take no input; start a new one with \"infinity run\"",
		daemon.CodeUnauthorized: "the token in the home does not match the daemon's; check --home / INFINITY_HOME",
		daemon.CodeUnavailable:  "start it again with \"infinity daemon start\"",
	}[ae.Code]
	if hint == "" {
		return ae.Message
	}
	return ae.Message + " (" + hint + ")"
}

// daemonGone is the error of a command (named by what) that followed a
// thread when the daemon went away (err).
func daemonGone(what string, err error) error {
	if err == nil || errors.Is(err, daemon.ErrNoDaemon) {
		return fmt.Errorf("%s: %w", what, errDaemonGone)
	}
	return fmt.Errorf("%s: %w: %v", what, errDaemonGone, err)
}

// streamBroke reports whether a followed stream's error says the daemon
// went away: the connection reset or cut short, or no daemon to dial.
func streamBroke(err error) bool {
	var ne net.Error
	return errors.Is(err, daemon.ErrNoDaemon) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.As(err, &ne)
}
