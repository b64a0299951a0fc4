// Command serve starts one PostgreSQL, one DynamoDB Local and one fauxqs
// server for a whole test run, and names Debian's Chromium for the browser
// tests (installing what they need and is missing,
// as it says on stderr), writes the environment variables that point
// the tests at them to the file named by -env (as "export NAME=value"
// lines, written last, so a non-empty file means ready), and stops them all
// on SIGINT or SIGTERM. scripts/test runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/infinity-runtime/infinity/internal/emulators"
)

func main() {
	envFile := flag.String("env", "", "write the environment to this file when every server is ready")
	flag.Parse()
	if *envFile == "" {
		fmt.Fprintln(os.Stderr, "serve: -env FILE is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	kinds := []emulators.Kind{emulators.Postgres, emulators.DynamoDB, emulators.SQS, emulators.Chromium}
	names := []string{emulators.EnvPostgres, emulators.EnvDynamoDB, emulators.EnvSQS, emulators.EnvChromium}
	// The test suite installs what is missing (its README says so), and
	// this log says what.
	servers, err := emulators.Start(ctx, emulators.Options{Install: true, Progress: os.Stderr}, kinds...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	var env strings.Builder
	for i, s := range servers {
		fmt.Fprintf(&env, "export %s=%q\n", names[i], s.Endpoint)
	}
	if err := os.WriteFile(*envFile, []byte(env.String()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return
	}
	<-ctx.Done()
}
