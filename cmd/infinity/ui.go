package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

const uiUsage = `Usage: infinity ui [flags]

Opens the daemon's web UI in the browser: thread trees with live statuses,
transcripts, input, user choices, authorization links, tools' views, costs,
and a timeline of each tree.

The link holds a one-time code (never the daemon's token) that works once,
within two minutes; the browser then keeps a session cookie for seven days.
With --print the link is printed instead of opened, for a browser that
reaches the daemon some other way (such as an SSH tunnel to the same port).
The browser is $BROWSER when set, else the system's opener (xdg-open, open).

Flags:
`

func uiCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("ui", uiUsage, stderr)
	printOnly := f.Bool("print", false, "print the link instead of opening a browser")
	_, c, err := f.connect(args, 0, 0)
	if err != nil {
		return err
	}
	code, err := c.UICode(ctx)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	if *printOnly {
		fmt.Fprintln(stdout, code.URL)
		return nil
	}
	if err := openBrowser(code.URL); err != nil {
		fmt.Fprintf(stderr, "infinity: could not open a browser (%v); open this link within two minutes:\n", err)
		fmt.Fprintln(stdout, code.URL)
		return nil
	}
	fmt.Fprintln(stdout, "opened the web UI in the browser (the link works once, within two minutes)")
	return nil
}

// openBrowser opens url with $BROWSER or the system's opener.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch b := os.Getenv("BROWSER"); {
	case b != "":
		parts := strings.Fields(b)
		cmd = exec.Command(parts[0], append(parts[1:], url)...)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", url)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done: // openers hand the link over and exit
		if err != nil {
			return fmt.Errorf("%s: %w", cmd.Path, err)
		}
		return nil
	case <-time.After(5 * time.Second): // a browser run directly keeps running
		return nil
	}
}
