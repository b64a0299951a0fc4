package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/infinity-runtime/infinity/tools/toolbox"
)

const toolsHelp = `Usage: infinity tools serve [--port N] [--host ADDR] [--base-url URL]

Run the example RAP tool server (package tools/toolbox) in the foreground
until Ctrl-C. Its tools:

  current_time       the time now in an IANA zone
  watch_webhook      a subscription: each POST to /hooks/{name} is an event
  timer_events       a subscription: an event every N seconds, count of them
  request_approval   asks the user (answer with "infinity answer")
  run_task           a long task that shows its progress as a view

It also serves an MCP server at /mcp with two synchronous tools,
word_count and convert_temperature.

Once it listens it prints one line on stdout, {"port":N}, so a script can
start it with --port 0 and read the port; logs go to stderr. An agent file
uses it with

  tools:
    rap: [http://127.0.0.1:N]
    mcp: [http://127.0.0.1:N/mcp]

Trigger a webhook subscription with
  curl -d 'disk 91% full' http://127.0.0.1:N/hooks/NAME

Flags:
`

func toolsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, toolsHelp)
		if len(args) == 0 {
			return fmt.Errorf("tools: missing subcommand (serve): %w", errUsage)
		}
		return nil
	}
	if args[0] != "serve" {
		fmt.Fprint(stderr, toolsHelp)
		return fmt.Errorf("tools: unknown subcommand %q (want serve): %w", args[0], errUsage)
	}
	f := newFlags("tools serve", toolsHelp, stderr)
	port := f.Int("port", 9300, "the port to listen on (0: any free port)")
	host := f.String("host", "127.0.0.1", "the address to listen on")
	base := f.String("base-url", "", "the URL the runtime reaches the server at, if not the address it dials (behind a proxy)")
	if _, err := f.parse(args[1:], 0, 0); err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("tools serve: --port %d: want 0..65535: %w", *port, errUsage)
	}
	if *base != "" {
		if u, err := url.Parse(*base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tools serve: --base-url %q: want an http or https URL with a host: %w", *base, errUsage)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("tools serve: %w", err)
	}
	box := toolbox.New(nil)
	box.BaseURL = *base
	box.Log = slog.New(slog.NewTextHandler(stderr, nil))
	srv := &http.Server{Handler: box, ReadHeaderTimeout: 10 * time.Second}
	ready, _ := json.Marshal(map[string]int{"port": ln.Addr().(*net.TCPAddr).Port})
	fmt.Fprintf(stdout, "%s\n", ready)
	box.Log.Info("tool server listening", "addr", ln.Addr().String(), "manifest", "http://"+ln.Addr().String()+"/.well-known/rap-toolset")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		box.Close()
		return fmt.Errorf("tools serve: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	box.Close() // ends running calls: their subscriptions stop
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("tools serve: %w", err)
	}
	return nil
}
