// Command serve starts one PostgreSQL, one DynamoDB Local and one fauxqs
// server for a whole test run, writes the environment variables that point
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
	"sync"
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

	starts := []struct {
		env   string
		start func(context.Context) (*emulators.Server, error)
	}{
		{emulators.EnvPostgres, emulators.StartPostgres},
		{emulators.EnvDynamoDB, emulators.StartDynamoDB},
		{emulators.EnvSQS, emulators.StartSQS},
	}
	// The npm installs share a lock; do them once before starting in
	// parallel.
	if _, err := emulators.InstallNode(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	servers := make([]*emulators.Server, len(starts))
	errs := make([]error, len(starts))
	var wg sync.WaitGroup
	for i, s := range starts {
		wg.Go(func() { servers[i], errs[i] = s.start(ctx) })
	}
	wg.Wait()
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	var env strings.Builder
	for i, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			return
		}
		fmt.Fprintf(&env, "export %s=%q\n", starts[i].env, servers[i].Endpoint)
	}
	if err := os.WriteFile(*envFile, []byte(env.String()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return
	}
	<-ctx.Done()
}
