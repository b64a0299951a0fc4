package rap

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

// MigrateTo gives each server that needs migration its own destination,
// reports the servers that moved even when another failed, and sends
// nothing when a server has no destination; Instances describes the
// servers as a destination offers them.
func TestMigrateTo(t *testing.T) {
	ctx := context.Background()
	a := raptest.New(t, raptest.WithNeedsMigration(), raptest.WithName("a"), raptest.WithPrefix("a_"))
	b := raptest.New(t, raptest.WithNeedsMigration(), raptest.WithName("b"), raptest.WithPrefix("b_"))
	no := raptest.New(t, raptest.WithName("no"), raptest.WithPrefix("n_"))
	rt := newRuntime(t, a.URL, b.URL, no.URL)
	n := &Notifier{Log: quiet, Loader: NewLoader(rt.cfg), Client: http.DefaultClient}

	ins, err := n.Loader.Instances(ctx, "r1")
	if err != nil || len(ins) != 3 || ins[0] != (Instance{Key: a.URL, Name: "a", URL: a.URL, NeedsMigration: true}) || ins[2].NeedsMigration {
		t.Fatalf("instances %+v, %v", ins, err)
	}
	dest := func(in Instance) (string, error) { return "http://dest/" + in.Name, nil }

	t.Run("103 104 105 only needsMigration servers, each its own destination_url", func(t *testing.T) {
		moved, err := n.MigrateTo(ctx, "r1", dest)
		if err != nil || !slices.Equal(moved, []string{a.URL, b.URL}) {
			t.Fatalf("moved %v, %v", moved, err)
		}
		if m := a.Migrations(); len(m) != 1 || m[0].DestinationURL != "http://dest/a" || m[0].SessionID != "r1" {
			t.Fatalf("a: %+v", m)
		}
		if m := b.Migrations(); len(m) != 1 || m[0].DestinationURL != "http://dest/b" {
			t.Fatalf("b: %+v", m)
		}
		if len(no.Migrations()) != 0 {
			t.Fatal("/migrate to a server without needsMigration")
		}
	})
	t.Run("108 one failure fails the migration; the servers that moved are named", func(t *testing.T) {
		b.SetMigrateStatus(500)
		defer b.SetMigrateStatus(0)
		moved, err := n.MigrateTo(ctx, "r2", dest)
		if !errors.Is(err, ErrMigration) || !slices.Equal(moved, []string{a.URL}) {
			t.Fatalf("moved %v, %v", moved, err)
		}
	})
	t.Run("108 a server without a destination aborts before any /migrate", func(t *testing.T) {
		before := len(a.Migrations())
		moved, err := n.MigrateTo(ctx, "r3", func(in Instance) (string, error) {
			if in.Name == "b" {
				return "", errors.New("no b there")
			}
			return "http://dest", nil
		})
		if !errors.Is(err, ErrMigration) || len(moved) != 0 || len(a.Migrations()) != before {
			t.Fatalf("moved %v, %v, a got %d", moved, err, len(a.Migrations())-before)
		}
	})
}

// RAP §8: a server whose manifest cannot be loaded aborts the migration
// before any server is told to move.
func TestMigrateToWithAServerDown(t *testing.T) {
	yes := raptest.New(t, raptest.WithNeedsMigration())
	down := raptest.New(t, raptest.WithPrefix("d_"))
	down.SetDiscoveryDown(true)
	rt := newRuntime(t, yes.URL, down.URL)
	n := &Notifier{Log: quiet, Loader: NewLoader(rt.cfg), Client: http.DefaultClient}
	moved, err := n.MigrateTo(context.Background(), "r", func(Instance) (string, error) { return "http://dest", nil })
	if !errors.Is(err, ErrMigration) || len(moved) != 0 || len(yes.Migrations()) != 0 {
		t.Fatalf("moved %v, err %v, migrations %d", moved, err, len(yes.Migrations()))
	}
}
