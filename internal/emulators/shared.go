package emulators

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Start starts one server of each kind, in parallel, and returns them in
// the order of kinds. It first checks what they need: what is missing is
// installed when o.Install allows it and otherwise fails Start with an
// ErrNotInstalled error that lists all of it. On error nothing is left
// running. "infinity cloud-local" (through package cloudlocal), the test
// suite's servers (serve) and the tests' helpers (package emutest) share it.
func Start(ctx context.Context, o Options, kinds ...Kind) ([]*Server, error) {
	starts := make([]func(context.Context) (*Server, error), len(kinds))
	for i, k := range kinds {
		switch k {
		case Postgres:
			starts[i] = startPostgres
		case DynamoDB:
			starts[i] = startDynamoDB
		case SQS:
			starts[i] = startSQS
		case Chromium:
			starts[i] = func(context.Context) (*Server, error) { return &Server{Kind: Chromium, Endpoint: chromiumBin}, nil }
		default:
			return nil, fmt.Errorf("emulators: unknown emulator %q", k)
		}
	}
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	if missing := check(dir, kinds); len(missing) > 0 {
		if !o.Install {
			return nil, &notInstalledError{missing: missing, hint: o.InstallHint}
		}
		if err := install(ctx, o, dir, missing); err != nil {
			return nil, err
		}
	}
	servers := make([]*Server, len(kinds))
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, start := range starts {
		wg.Go(func() { servers[i], errs[i] = start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range servers {
			s.Stop()
		}
		return nil, err
	}
	return servers, nil
}

// notInstalledError lists what the emulators need and is not installed.
type notInstalledError struct {
	missing []need
	hint    string
}

func (e *notInstalledError) Error() string {
	var b strings.Builder
	b.WriteString("the emulators need what is not installed here:")
	for _, n := range e.missing {
		fmt.Fprintf(&b, "\n  %s: %s", n.what, n.how)
	}
	if e.hint != "" {
		b.WriteString("\n" + e.hint)
	}
	return b.String()
}

func (e *notInstalledError) Is(target error) bool { return target == ErrNotInstalled }
