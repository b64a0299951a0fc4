package main

import (
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const uiLong = `Opens the daemon's web UI in the browser: thread trees with live statuses,
transcripts, input, user choices, authorization links, tools' views, costs,
and a timeline of each tree.

The link holds a one-time code (never the daemon's token) that works once,
within two minutes; the browser then keeps a session for twelve hours or
until it signs out or the daemon stops. The browser is handed a file in the
home (HOME/ui-open.html, readable by you only) that leads to the link, so
the code never shows in the process list. With --print the link is printed
instead, for a browser that reaches the daemon some other way (such as an
SSH tunnel to the same port); --json prints it with its expiry as JSON. The
browser is $BROWSER when set, else the system's opener (xdg-open, open).`

// uiOpenFile is the page, in the home, that leads the browser to the link.
const uiOpenFile = "ui-open.html"

func (a *app) uiCommand() *cobra.Command {
	var printOnly, asJSON bool
	cmd := &cobra.Command{
		Use:               "ui [flags]",
		Short:             "open the daemon's web UI in the browser",
		Long:              uiLong,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			c, err := a.client()
			if err != nil {
				return err
			}
			code, err := c.UICode(ctx)
			if err != nil {
				return fmt.Errorf("ui: %w", err)
			}
			switch {
			case printOnly && asJSON:
				return printJSON(stdout, code)
			case printOnly:
				fmt.Fprintln(stdout, code.URL)
				return nil
			}
			home, err := a.homeDir()
			if err != nil {
				return err
			}
			page := filepath.Join(home, uiOpenFile)
			body := `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Infinity</title>` +
				`<meta http-equiv="refresh" content="0; url=` + html.EscapeString(code.URL) + `">` +
				`<p>Opening the Infinity web UI…</p>`
			if err := os.WriteFile(page, []byte(body), 0o600); err != nil {
				return fmt.Errorf("ui: %w", err)
			}
			if err := openBrowser(page); err != nil {
				// The browser may have spent the code before failing: a fresh one.
				if code, err2 := c.UICode(ctx); err2 == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "infinity: could not open a browser (%v); open this link within two minutes:\n", err)
					if asJSON {
						return printJSON(stdout, map[string]any{"opened": false, "url": code.URL, "expires": code.Expires})
					}
					fmt.Fprintln(stdout, code.URL)
					return nil
				}
				return fmt.Errorf("ui: could not open a browser: %w (infinity ui --print prints a link)", err)
			}
			if asJSON {
				return printJSON(stdout, map[string]any{"opened": true, "page": page})
			}
			fmt.Fprintln(stdout, "opened the web UI in the browser (the link works once, within two minutes)")
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the link instead of opening a browser")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (with --print: the link and its expiry)")
	return cmd
}

// openBrowser opens target (a file or URL) with $BROWSER or the system's
// opener.
func openBrowser(target string) error {
	var cmd *exec.Cmd
	switch b := strings.Fields(os.Getenv("BROWSER")); {
	case len(b) > 0:
		cmd = exec.Command(b[0], append(b[1:], target)...)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", target)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", target)
	default:
		cmd = exec.Command("xdg-open", target)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done: // openers hand the target over and exit
		if err != nil {
			return fmt.Errorf("%s: %w", cmd.Path, err)
		}
		return nil
	case <-time.After(5 * time.Second): // a browser run directly keeps running
		return nil
	}
}
