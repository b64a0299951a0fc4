// Command infinity is the Infinity runtime's command line: the local daemon,
// the commands that talk to it, and an offline demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/infinity-runtime/infinity/daemon"
)

const rootLong = `infinity: a runtime for long-lived LLM agents

The daemon keeps threads, timers and waiting messages under its home; the
agent and thread commands talk to it. State lives in ~/.infinity (override
with --home or INFINITY_HOME). Flags go anywhere among the arguments, in
GNU style (--flag, --flag=value, -f). "infinity completion --help" shows how
to set up shell completion. On a terminal, statuses are coloured and
tables fit its width; --color=never (--no-color, or NO_COLOR set to
anything) turns the colour off, --color=always on.

` + exitCodes

// Command groups of the root's help.
const (
	groupDaemon  = "daemon"
	groupThreads = "threads"
	groupCloud   = "cloud"
	groupOther   = "other"
)

// The commands show in the order they are added (the help's groups
// follow the old usage text), not sorted.
func init() { cobra.EnableCommandSorting = false }

func main() {
	ctx, stop := interruptible()
	code := report(run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// interruptible returns a context cancelled on SIGINT or SIGTERM with a
// cause that is errInterrupted.
func interruptible() (context.Context, context.CancelFunc) {
	sig, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.Background())
	unhook := context.AfterFunc(sig, func() { cancel(fmt.Errorf("%w (%w)", errInterrupted, context.Cause(sig))) })
	return ctx, func() {
		unhook()
		stopSignals()
		cancel(nil)
	}
}

// app is one invocation's state shared by its commands.
type app struct {
	home string // --home
	// color and noColor are --color and --no-color (styleOf).
	color   colorMode
	noColor bool
	// serving is set by a command that runs until it is interrupted: an
	// interrupt ends it cleanly.
	serving bool
}

// run runs the command line args with a fresh command tree. A ctx
// cancelled with the cause errInterrupted (as main's is on Ctrl-C) makes
// it return an error that is errInterrupted.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &app{}
	root := a.newRoot(stdout, stderr)
	if args == nil {
		args = []string{} // not nil: cobra would read os.Args
	}
	if err := helpOfUnknown(args); err != nil {
		return err
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	// An interrupted command exits 130, unless it runs until interrupted
	// (it stops cleanly with 0) or failed for a reason of its own while
	// stopping (that error is shown).
	if cause := context.Cause(ctx); ctx.Err() != nil && errors.Is(cause, errInterrupted) {
		if err != nil && a.serving && !errors.Is(err, context.Canceled) && !errors.Is(err, errInterrupted) {
			return err // a command that runs until interrupted failed while it stopped
		}
		if err != nil || !a.serving {
			return cause
		}
	}
	if ue, ok := errors.AsType[*usageError](err); ok && ue.cmd == "" && cmd != nil {
		ue.cmd = cmd.CommandPath()
	}
	return err
}

// newRoot builds the command tree.
func (a *app) newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:                        "infinity",
		Short:                      "a runtime for long-lived LLM agents",
		Long:                       rootLong,
		Version:                    buildVersion().String(),
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			helpTo(cmd, cmd.ErrOrStderr())
			return &usageError{err: errors.New("name a command"), shown: true}
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		Annotations:       group,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("infinity {{.Version}}\n")
	// A command that only holds subcommands shows no usage line of its own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .Annotations.group)}}", 1))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: fmt.Errorf("%s%w", prefix(c), err), cmd: c.CommandPath()}
	})
	root.PersistentFlags().StringVar(&a.home, "home", "", "the state directory (default $INFINITY_HOME, else ~/.infinity)")
	if a.color == "" {
		a.color = colorAuto
	}
	root.PersistentFlags().Var(&a.color, "color", "colour the statuses: --color=auto (on a terminal, unless NO_COLOR is set or TERM=dumb), --color=always or --color=never (with =: a bare --color means always)")
	root.PersistentFlags().Lookup("color").NoOptDefVal = string(colorAlways)
	root.PersistentFlags().BoolVar(&a.noColor, "no-color", false, "no colour (--color=never)")
	_ = root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]cobra.Completion{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	root.AddGroup(
		&cobra.Group{ID: groupDaemon, Title: "The daemon:"},
		&cobra.Group{ID: groupThreads, Title: "Agents and threads (these talk to the daemon):"},
		&cobra.Group{ID: groupCloud, Title: "The cloud mode:"},
		&cobra.Group{ID: groupOther, Title: "Other:"},
	)
	add := func(id string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = id
			root.AddCommand(c)
		}
	}
	add(groupDaemon, a.daemonCommand())
	add(groupThreads, a.runCommand(), a.sendCommand(), a.lsCommand(), a.treeCommand(), a.logsCommand(),
		a.closeCommand(), a.rmCommand(), a.compactCommand(), a.answerCommand(), a.budgetCommand(), a.exportCommand(),
		a.importCommand(), a.migrateCommand(), a.uiCommand())
	add(groupCloud, a.cloudCommand(), a.cloudLocalCommand())
	add(groupOther, a.demoCommand(), a.replayCommand(), a.toolsCommand(), a.versionCommand())
	root.SetHelpCommand(helpCommand())
	root.SetHelpCommandGroupID(groupOther)
	root.SetCompletionCommandGroupID(groupOther)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "print the shell completion script (bash, zsh, fish, powershell)"
			c.Args, c.RunE, c.Annotations = subcommandArgs, groupRun, group
			for _, sub := range c.Commands() {
				sub.Args = argsBetween(0, 0)
			}
		}
	}
	return root
}

// helpCommand is "infinity help [command]".
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: `show this help, or a command's ("infinity help logs")`,
		Long:  `Shows the help of the command named (a path such as "cloud logs"), or infinity's.`,
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if (sub.IsAvailableCommand() || sub == c) && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error { return helpOf(c.Root(), args) },
	}
}

// helpOf prints the help of the command args name below cmd.
func helpOf(cmd *cobra.Command, args []string) error {
	target, rest, err := cmd.Find(args)
	if err != nil {
		return usagef("%w", err)
	}
	if len(rest) > 0 {
		return unknownCommand(target, rest[0])
	}
	return target.Help()
}

// helpTo prints cmd's help on w.
func helpTo(cmd *cobra.Command, w io.Writer) {
	out := cmd.OutOrStdout()
	cmd.SetOut(w)
	_ = cmd.Help()
	cmd.SetOut(out)
}

// unknownCommand is the usage error of a name that is no subcommand of
// cmd, with the names it may be a typo of.
func unknownCommand(cmd *cobra.Command, name string) error {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return &usageError{err: errors.New(msg), cmd: cmd.CommandPath()}
}

// helpOfUnknown finds a mistyped command asked for its help ("infinity lgs
// --help", "infinity daemon strat -h"): cobra would show the parent's help
// and exit 0, and a script would take the typo for a command. It reads the
// command line with a tree of its own, so the real one parses it afresh.
func helpOfUnknown(args []string) error {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		return nil // a completion request: its words are the line being typed
	}
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[:i] // after --, -h is an argument
	}
	if !slices.ContainsFunc(args, func(a string) bool { return a == "--help" || a == "-h" }) {
		return nil
	}
	c, rest, err := (&app{}).newRoot(io.Discard, io.Discard).Find(args)
	if err != nil || !c.HasSubCommands() {
		return nil
	}
	c.InitDefaultHelpFlag()
	if c.ParseFlags(rest) != nil {
		return nil // the flag error shows when the command runs
	}
	if words := c.Flags().Args(); len(words) > 0 && words[0] != "help" {
		return unknownCommand(c, words[0])
	}
	return nil
}

// group annotates a command that only holds subcommands (its RunE is
// groupRun).
var group = map[string]string{"group": "true"}

// subcommandArgs checks the arguments of a command with subcommands: none,
// or "help" and a subcommand.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 || args[0] == "help" {
		return nil
	}
	return unknownCommand(cmd, args[0])
}

// groupRun runs a command that only holds subcommands: "help [command]"
// shows a help, and nothing is a usage error after the group's help.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return helpOf(cmd, args[1:])
	}
	helpTo(cmd, cmd.ErrOrStderr())
	return &usageError{err: fmt.Errorf("%s: name a command", cmdName(cmd)), shown: true}
}

// cmdName is the command's path without the program's name ("daemon
// start").
func cmdName(c *cobra.Command) string {
	if !c.HasParent() {
		return c.Name()
	}
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}

// prefix is what a command's error messages start with ("logs: ").
func prefix(c *cobra.Command) string {
	if !c.HasParent() {
		return ""
	}
	return cmdName(c) + ": "
}

// argsBetween checks the number of positional arguments: at least min (the
// first min of names name them) and at most max (max < 0: any number).
func argsBetween(min, max int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usagef("%smissing %s", prefix(cmd), strings.Join(names[len(args):min], " and "))
		case max >= 0 && len(args) > max:
			return usagef("%sunexpected argument %q", prefix(cmd), args[max])
		}
		return nil
	}
}

// homeDir resolves the state directory.
func (a *app) homeDir() (string, error) {
	h := a.home
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
func (a *app) client() (*daemon.Client, error) {
	home, err := a.homeDir()
	if err != nil {
		return nil, err
	}
	c, _, err := daemon.Dial(home)
	return c, err
}
