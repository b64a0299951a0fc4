package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

const migrateLong = `Moves the session rooted at ROOT (the root thread and every thread below it,
with their history, state, subscriptions, pending choices, timers and waiting
messages) from this home's daemon to another daemon, and deletes it here.

The destination is named by --to URL (its base URL, such as
http://10.0.0.7:7711; it listens there with --allow-remote) and
--to-token-file FILE (a copy of its HOME/token), or, for a daemon of this
machine, by --to-home DIR (its home). The token is never given on the
command line.

The daemon moves the session itself, as RAP asks: it stops the tree (a slice
that runs finishes first; input sent meanwhile is refused with 503
"migrating", which callers retry), starts and connects the destination's
tool servers, sends /migrate to each tool server whose manifest sets
needsMigration (each told its own instance at the destination), moves the
data once all answered 200, then deletes the session here and lets the
destination run it: its timers fire there when they were due here.

If anything fails (the destination unreachable or too old, a /migrate, the
import), the move is called off: the session stays here and runs again, and
the error says why and which tool servers moved their state already. If the
command is interrupted, the daemon still finishes or calls off the move; a
daemon stopped part-way finishes or calls it off at its next start.`

func (a *app) migrateCommand() *cobra.Command {
	var (
		to, tokenFile, toHome string
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:               "migrate [flags] ROOT (--to URL --to-token-file FILE | --to-home DIR)",
		Short:             "move a session (a root and its tree) to another daemon",
		Long:              migrateLong,
		Args:              argsBetween(1, 1, "ROOT"),
		ValidArgsFunction: a.completeThreads(isRoot),
		RunE: func(cmd *cobra.Command, pos []string) error {
			req, err := migrateTarget(to, tokenFile, toHome)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			root := infinity.ThreadID(pos[0])
			m, err := c.Migrate(cmd.Context(), root, req)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), m)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "moved %s (%d thread(s), %d timer(s) and waiting message(s)) to %s\n", m.Root, len(m.Threads), m.Pending, m.To)
			for _, s := range m.Servers {
				fmt.Fprintf(out, "  tool server %s moved its state to %s\n", s.Server, s.DestinationURL)
			}
			if !m.Started {
				fmt.Fprintln(out, "the destination has the session but did not yet confirm it runs it; this daemon tells it again until it does")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the destination daemon's base URL (http://host:port)")
	cmd.Flags().StringVar(&tokenFile, "to-token-file", "", "a file holding the destination daemon's token (its HOME/token)")
	cmd.Flags().StringVar(&toHome, "to-home", "", "the home of a destination daemon on this machine (instead of --to and --to-token-file)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what moved as JSON")
	_ = cmd.RegisterFlagCompletionFunc("to", cobra.NoFileCompletions)
	_ = cmd.MarkFlagFilename("to-token-file")
	_ = cmd.MarkFlagDirname("to-home")
	return cmd
}

// isRoot keeps the root threads (completion).
func isRoot(v daemon.ThreadView) bool { return v.Parent == "" }

// migrateTarget reads the destination from the flags.
func migrateTarget(to, tokenFile, toHome string) (daemon.MigrateRequest, error) {
	switch {
	case toHome != "" && (to != "" || tokenFile != ""):
		return daemon.MigrateRequest{}, usagef("migrate: give --to-home, or --to with --to-token-file, not both")
	case toHome != "":
		home, err := filepath.Abs(toHome)
		if err != nil {
			return daemon.MigrateRequest{}, fmt.Errorf("migrate: --to-home: %w", err)
		}
		info, tok, err := daemon.Locate(home)
		if err != nil {
			return daemon.MigrateRequest{}, fmt.Errorf("migrate: --to-home: %w", missing(err))
		}
		return daemon.MigrateRequest{To: "http://" + info.Addr, Token: tok}, nil
	case to == "":
		return daemon.MigrateRequest{}, usagef("migrate: name the destination: --to URL with --to-token-file FILE, or --to-home DIR")
	case tokenFile == "":
		return daemon.MigrateRequest{}, usagef("migrate: --to needs --to-token-file FILE (a copy of the destination's HOME/token)")
	}
	to, err := daemon.DestinationURL(to)
	if err != nil {
		return daemon.MigrateRequest{}, usagef("migrate: --to: %v", err)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return daemon.MigrateRequest{}, fmt.Errorf("migrate: --to-token-file: %w", missing(err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return daemon.MigrateRequest{}, usagef("migrate: --to-token-file %s is empty", tokenFile)
	}
	return daemon.MigrateRequest{To: to, Token: tok}, nil
}
