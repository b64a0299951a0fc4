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

	"github.com/spf13/cobra"

	"github.com/infinity-runtime/infinity/tools/toolbox"
)

const toolsServeLong = `Runs the example RAP tool server (package tools/toolbox) in the foreground
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
  curl -d 'disk 91% full' http://127.0.0.1:N/hooks/NAME`

func (a *app) toolsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "tools",
		Short:             "run the example RAP tool server (tools serve)",
		Long:              `Tool servers for agents: "infinity tools serve" runs the example RAP tool server (time, webhooks, timers, approvals, progress) and an MCP server.`,
		Args:              subcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              groupRun,
		Annotations:       group,
	}
	cmd.AddCommand(a.toolsServeCommand())
	return cmd
}

func (a *app) toolsServeCommand() *cobra.Command {
	var (
		port       int
		host, base string
	)
	cmd := &cobra.Command{
		Use:               "serve [flags]",
		Short:             "run the example RAP tool server (time, webhooks, timers, approvals, progress)",
		Long:              toolsServeLong,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.toolsServe(cmd.Context(), port, host, base, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVar(&port, "port", 9300, "the port to listen on (0: any free port)")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "the address to listen on")
	cmd.Flags().StringVar(&base, "base-url", "", "the URL the runtime reaches the server at, if not the address it dials (behind a proxy)")
	for _, name := range []string{"port", "host", "base-url"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	return cmd
}

func (a *app) toolsServe(ctx context.Context, port int, host, base string, stdout, stderr io.Writer) error {
	if port < 0 || port > 65535 {
		return usagef("tools serve: --port %d: want 0..65535", port)
	}
	if base != "" {
		if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("tools serve: --base-url %q: want an http or https URL with a host", base)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("tools serve: %w", err)
	}
	box := toolbox.New(nil)
	box.BaseURL = base
	box.Log = slog.New(slog.NewTextHandler(stderr, nil))
	srv := &http.Server{Handler: box, ReadHeaderTimeout: 10 * time.Second}
	ready, _ := json.Marshal(map[string]int{"port": ln.Addr().(*net.TCPAddr).Port})
	fmt.Fprintf(stdout, "%s\n", ready)
	box.Log.Info("tool server listening", "addr", ln.Addr().String(), "manifest", "http://"+ln.Addr().String()+"/.well-known/rap-toolset")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.serving = true
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
