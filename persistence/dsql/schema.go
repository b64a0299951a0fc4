package dsql

import (
	"context"
	"fmt"
)

// Dialect is the database a store or a migration talks to.
type Dialect int

// Dialects.
const (
	// DSQL is Amazon Aurora DSQL: indexes are built with CREATE INDEX ASYNC.
	DSQL Dialect = iota
	// PostgreSQL is plain PostgreSQL (the tests' stand-in for DSQL).
	PostgreSQL
)

func (d Dialect) String() string {
	if d == PostgreSQL {
		return "postgresql"
	}
	return "dsql"
}

// migration is one DDL statement; each runs in a transaction of its own.
type migration struct {
	version int
	name    string
	ddl     func(Dialect) string
}

func fixed(sql string) func(Dialect) string { return func(Dialect) string { return sql } }

// indexDDL builds an index: asynchronously on DSQL, where a synchronous
// CREATE INDEX is refused.
func indexDDL(name, on string) func(Dialect) string {
	return func(d Dialect) string {
		if d == DSQL {
			return "CREATE INDEX ASYNC IF NOT EXISTS " + name + " ON " + on
		}
		return "CREATE INDEX IF NOT EXISTS " + name + " ON " + on
	}
}

// migrations, in order. Append only: a released version never changes.
var migrations = []migration{
	{1, "threads", fixed(`CREATE TABLE IF NOT EXISTS threads (
	id            VARCHAR(128) PRIMARY KEY,
	parent        VARCHAR(128) NOT NULL,
	root          VARCHAR(128) NOT NULL,
	ancestors     TEXT NOT NULL,
	spawn_order   BIGINT NOT NULL,
	spawn_call_id TEXT NOT NULL,
	kind          SMALLINT NOT NULL,
	agent         TEXT NOT NULL,
	closed        BOOLEAN NOT NULL,
	created       TIMESTAMPTZ NOT NULL,
	child_idx     BIGINT NOT NULL,
	children      BIGINT NOT NULL,
	length        BIGINT NOT NULL,
	outbox_seq    BIGINT NOT NULL
)`)},
	{2, "threads_parent", indexDDL("threads_parent", "threads (parent, child_idx)")},
	{3, "items", fixed(`CREATE TABLE IF NOT EXISTS items (
	thread_id VARCHAR(128) NOT NULL,
	idx       BIGINT NOT NULL,
	chunk     INTEGER NOT NULL,
	chunks    INTEGER NOT NULL,
	payload   BYTEA NOT NULL,
	PRIMARY KEY (thread_id, idx, chunk)
)`)},
	{4, "applied", fixed(`CREATE TABLE IF NOT EXISTS applied (
	thread_id VARCHAR(128) NOT NULL,
	msg_id    TEXT NOT NULL,
	PRIMARY KEY (thread_id, msg_id)
)`)},
	{5, "outbox", fixed(`CREATE TABLE IF NOT EXISTS outbox (
	thread_id VARCHAR(128) NOT NULL,
	id        TEXT NOT NULL,
	chunk     INTEGER NOT NULL,
	seq       BIGINT NOT NULL,
	chunks    INTEGER NOT NULL,
	payload   BYTEA NOT NULL,
	PRIMARY KEY (thread_id, id, chunk)
)`)},
	// Per-thread models and compaction summaries. Rows older than these
	// columns hold NULL there, read as "" and false.
	{6, "threads_model", fixed(`ALTER TABLE threads ADD COLUMN IF NOT EXISTS model TEXT`)},
	{7, "threads_compacted", fixed(`ALTER TABLE threads ADD COLUMN IF NOT EXISTS compacted BOOLEAN`)},
	{8, "summaries", fixed(`CREATE TABLE IF NOT EXISTS summaries (
	thread_id VARCHAR(128) NOT NULL,
	pos       BIGINT NOT NULL,
	chunk     INTEGER NOT NULL,
	chunks    INTEGER NOT NULL,
	payload   BYTEA NOT NULL,
	PRIMARY KEY (thread_id, pos, chunk)
)`)},
	// DeleteTree finds a tree's threads by their root.
	{9, "threads_root", indexDDL("threads_root", "threads (root)")},
}

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// Migrate brings the schema up to date; run it once at deploy or start.
// Each DDL statement runs in its own transaction and is recorded in
// schema_migrations by a separate one (DSQL mixes neither DDL with DML nor
// two DDL statements). Every statement is idempotent, so running Migrate
// again, or after a crash between a DDL and its record, is harmless.
//
// On DSQL indexes are built asynchronously: queries work before they are
// ready, only slower.
func Migrate(ctx context.Context, db DB, d Dialect) error {
	if _, err := db.Exec(ctx, createMigrations); err != nil {
		return fmt.Errorf("migrate %s: schema_migrations: %w", d, err)
	}
	done := map[int]bool{}
	rows, err := db.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate %s: read versions: %w", d, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("migrate %s: read versions: %w", d, err)
		}
		done[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate %s: read versions: %w", d, err)
	}
	rows.Close()
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		if _, err := db.Exec(ctx, m.ddl(d)); err != nil {
			return fmt.Errorf("migrate %s: %d %s: %w", d, m.version, m.name, err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING`,
			m.version, m.name); err != nil {
			return fmt.Errorf("migrate %s: record %d %s: %w", d, m.version, m.name, err)
		}
	}
	return nil
}
