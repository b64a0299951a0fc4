// Command infinity is the Infinity runtime's command line: the local daemon,
// the commands that talk to it, and an offline demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/infinity-runtime/infinity/daemon"
)

const usage = `infinity: a runtime for long-lived LLM agents

Usage:
  infinity <command> [flags] [arguments]

The daemon:
  daemon          run the daemon in the foreground (Ctrl-C stops it)
  daemon start    start the daemon in the background
  daemon stop     stop the background daemon
  daemon status   show whether a daemon runs, and what it holds

Agents and threads (these talk to the daemon):
  run AGENT [MESSAGE]   start a root thread from an agent file or a bundled example
  send THREAD MESSAGE   send user input to a thread
  ls                    list threads with their status and tokens
  tree [THREAD]         show thread trees
  logs [-f] THREAD      print (and follow) a thread's transcript
  close THREAD          close a thread and everything below it
  rm THREAD             delete a closed tree for good (history, state, timers)
  compact THREAD        summarise a thread's history now (compaction)
  answer THREAD CHOICE  answer a thread's pending user choice
  export [-o FILE]      write every thread to sessions.json (readable JSON)
  import FILE           load threads from a sessions.json export
  ui                    open the daemon's web UI in the browser

The cloud mode:
  cloud <command>        talk to a deployed stack (or cloud-local's): start, send,
                         logs, ls, tree, dlq, migrate ("infinity cloud --help")
  cloud-local [MESSAGE]  run the Lambda handlers on local stand-ins for SQS,
                         DynamoDB, Aurora DSQL and EventBridge Scheduler

Other:
  demo         run the offline demo in-process (no daemon, no API key, no network)
  tools serve  run the example RAP tool server (time, webhooks, timers, approvals, progress)
  version      print the version
  help         show this help, or "infinity help <command>"

State lives in ~/.infinity (override with --home or INFINITY_HOME).
Run "infinity <command> --help" for a command's flags.
`

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "infinity:", explain(err))
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// command is one subcommand.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

var commands = map[string]command{
	"demo":        demo,
	"daemon":      daemonCmd,
	"run":         runCmd,
	"send":        sendCmd,
	"ls":          lsCmd,
	"tree":        treeCmd,
	"logs":        logsCmd,
	"close":       closeCmd,
	"rm":          rmCmd,
	"compact":     compactCmd,
	"answer":      answerCmd,
	"cloud-local": cloudLocalCmd,
	"cloud":       cloudCmd,
	"export":      exportCmd,
	"import":      importCmd,
	"tools":       toolsCmd,
	"ui":          uiCmd,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		fmt.Fprintln(stdout, "infinity", version)
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 {
			if c, ok := commands[rest[0]]; ok {
				return c(ctx, append(rest[1:], "--help"), stdout, stdout)
			}
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	c, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "infinity: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
	return c(ctx, rest, stdout, stderr)
}

// flags is a subcommand's flag set with the shared --home flag.
type flags struct {
	*flag.FlagSet
	home string
}

func newFlags(name, help string, stderr io.Writer) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.SetOutput(stderr)
	f.StringVar(&f.home, "home", "", "the state directory (default $INFINITY_HOME, else ~/.infinity)")
	f.Usage = func() {
		fmt.Fprint(stderr, help)
		if strings.Contains(help, "Flags:") {
			f.PrintDefaults()
		}
	}
	return f
}

// parse parses flags anywhere among the arguments ("logs THREAD -f" as
// well as "logs -f THREAD") and checks the number of positional ones.
func (f *flags) parse(args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, err
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < minArgs:
		f.Usage()
		return nil, fmt.Errorf("%s: missing arguments: %w", f.Name(), errUsage)
	case maxArgs >= 0 && len(pos) > maxArgs:
		f.Usage()
		return nil, fmt.Errorf("%s: unexpected argument %q: %w", f.Name(), pos[maxArgs], errUsage)
	}
	return pos, nil
}

// homeDir resolves the state directory.
func (f *flags) homeDir() (string, error) {
	h := f.home
	if h == "" {
		h = os.Getenv("INFINITY_HOME")
	}
	if h == "" {
		u, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory to keep state in (set INFINITY_HOME or --home): %w", err)
		}
		h = filepath.Join(u, ".infinity")
	}
	return filepath.Abs(h)
}

// client dials the daemon of the resolved home.
func (f *flags) client() (*daemon.Client, error) {
	home, err := f.homeDir()
	if err != nil {
		return nil, err
	}
	c, _, err := daemon.Dial(home)
	return c, err
}

// connect parses the arguments and dials the daemon.
func (f *flags) connect(args []string, minArgs, maxArgs int) ([]string, *daemon.Client, error) {
	pos, err := f.parse(args, minArgs, maxArgs)
	if err != nil {
		return nil, nil, err
	}
	c, err := f.client()
	return pos, c, err
}

// explain adds the next step to an API error.
func explain(err error) string {
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
