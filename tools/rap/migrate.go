package rap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/infinity-runtime/infinity"
)

// Instance is one configured tool server as loaded for a session: what a
// migration pairs a source server with its destination by.
type Instance struct {
	// Key is the server's key (Loader.Servers): a remote server's base
	// URL, a local server's name.
	Key string `json:"key"`
	// Name is the name its manifest gives (Manifest.Name).
	Name string `json:"name"`
	// URL is the base URL it answers at now: a remote server's, or a
	// local server's current address (it changes when the server is
	// started again).
	URL string `json:"url"`
	// NeedsMigration is the manifest's needsMigration.
	NeedsMigration bool `json:"needs_migration"`
}

// Instances loads the toolsets of the session rooted at root (starting
// the local servers, fetching what is not cached) and returns every server
// whose manifest loaded, in configuration order. The error is Load's: a
// server that did not load is left out and named there.
func (l *Loader) Instances(ctx context.Context, root infinity.ThreadID) ([]Instance, error) {
	set, lerr := l.Load(ctx, root)
	var out []Instance
	var errs []error
	for _, s := range l.servers {
		m, ok := set.Manifest(s.key)
		if !ok {
			continue
		}
		addr, release, err := s.acquire(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("rap server %s: %w", s.name, err))
			continue
		}
		release()
		out = append(out, Instance{Key: s.key, Name: m.Name, URL: addr, NeedsMigration: m.NeedsMigration})
	}
	return out, errors.Join(append([]error{lerr}, errs...)...)
}

// MigrateTo POSTs /migrate for the session rooted at root to every server
// whose manifest has needsMigration: true, and to no other (RAP §8), each
// with a destination_url of its own: dest returns it for a server that
// needs migration (its Instance, as Instances describes it). The requests
// run concurrently and MigrateTo waits for all of them; only ctx bounds
// them, as a migration may take long. An error from dest, like a manifest
// that cannot be loaded, aborts before any /migrate is sent; any server
// that did not answer 200 makes the error wrap ErrMigration, and the
// caller must then abort the migration. It returns the names of the
// servers that answered 200 (Instance.Key), in configuration order, even
// when others failed: their state has moved already.
func (n *Notifier) MigrateTo(ctx context.Context, root infinity.ThreadID, dest func(Instance) (string, error)) ([]string, error) {
	set, err := n.Loader.Load(ctx, root)
	type target struct {
		s    *server
		body []byte
	}
	var targets []target
	var errs []error
	for _, s := range n.Loader.servers {
		m, ok := set.Manifest(s.key)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("migrate %s: no manifest for %s, cannot tell whether it needs migration: %w", root, s.name, ErrMigration))
			continue
		case !m.NeedsMigration:
			continue
		}
		url, derr := dest(Instance{Key: s.key, Name: m.Name, URL: s.url, NeedsMigration: true})
		if derr != nil {
			errs = append(errs, fmt.Errorf("migrate %s at %s: %w: %w", root, s.name, derr, ErrMigration))
			continue
		}
		body, merr := json.Marshal(MigrateRequest{SessionID: string(root), DestinationURL: url})
		if merr != nil {
			errs = append(errs, fmt.Errorf("migrate %s at %s: %w: %w", root, s.name, merr, ErrMigration))
			continue
		}
		targets = append(targets, target{s, body})
	}
	if len(errs) > 0 {
		return nil, errors.Join(append(errs, err)...)
	}
	errs = make([]error, len(targets))
	moved := make([]bool, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			addr, release, err := t.s.acquire(ctx)
			if err != nil {
				errs[i] = fmt.Errorf("migrate %s at %s: %w: %w", root, t.s.name, err, ErrMigration)
				return
			}
			defer release()
			status, why, err := postJSON(ctx, n.client(), addr+"/migrate", t.body)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("migrate %s at %s: %w: %w", root, t.s.name, err, ErrMigration)
			case status != http.StatusOK:
				errs[i] = fmt.Errorf("migrate %s at %s: HTTP %d %q: %w", root, t.s.name, status, why, ErrMigration)
			default:
				moved[i] = true
			}
		})
	}
	wg.Wait()
	var done []string
	for i, t := range targets {
		if moved[i] {
			done = append(done, t.s.key)
		}
	}
	return slices.Clip(done), errors.Join(errs...)
}
