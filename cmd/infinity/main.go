// Command infinity is the Infinity runtime's command line: today it runs
// the offline demo; the daemon and its client commands come next.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `infinity: a runtime for long-lived LLM agents

Usage:
  infinity <command> [flags]

Commands:
  demo       run an offline multi-thread agent to completion (no API key, no network)
  version    print the version
  help       show this help, or "infinity help <command>"

Planned (not built yet; they fail with an error that says so):
  daemon, run, send, ls, tree, logs, close, answer

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
		fmt.Fprintln(os.Stderr, "infinity:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

var planned = map[string]string{
	"daemon": "the local daemon", "run": "starting agents through the daemon", "send": "sending input through the daemon",
	"ls": "listing threads", "tree": "showing a thread tree", "logs": "following a transcript",
	"close": "closing a thread", "answer": "answering a user choice",
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "demo":
		return demo(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "infinity", version)
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 && rest[0] == "demo" {
			return demo(ctx, []string{"--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	default:
		if what, ok := planned[cmd]; ok {
			return fmt.Errorf("%s: %s is not built yet (it comes with the local daemon); try \"infinity demo\"", cmd, what)
		}
		fmt.Fprintf(stderr, "infinity: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}
