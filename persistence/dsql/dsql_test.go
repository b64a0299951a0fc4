package dsql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
	"github.com/infinity-runtime/infinity/persistence/storetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// newDB returns a pool whose connections use a fresh schema, migrated.
func newDB(t *testing.T, conns int) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(emutest.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = int32(conns)
	cfg := pc.ConnConfig
	schema := fmt.Sprintf("s_%016x", rand.Uint64())
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			_ = c.Close(context.Background())
		}
	})
	cfg.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool, PostgreSQL); err != nil {
		t.Fatal(err)
	}
	return pool
}

func newStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	return New(newDB(t, 8), append([]Option{WithDialect(PostgreSQL)}, opts...)...)
}

func TestConversationStore(t *testing.T) {
	storetest.RunConversation(t, func(t *testing.T) infinity.ConversationStore { return newStore(t) })
}

func TestTreeDeletion(t *testing.T) {
	storetest.RunTreeDeletion(t, func(t *testing.T) infinity.ConversationStore { return newStore(t) })
}
