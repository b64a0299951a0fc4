package dsql

import (
	"context"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is the part of a connection pool the store uses; *pgxpool.Pool
// satisfies it. It must be safe for concurrent use.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store is an infinity.ConversationStore kept in Aurora DSQL (or
// PostgreSQL). The schema must exist: run Migrate once at deploy or start.
type Store struct {
	db      DB
	dialect Dialect
	limits  Limits
	retry   Retry
}

var _ infinity.ConversationStore = (*Store)(nil)

// Limits are the per-transaction and per-column limits a commit must stay
// within. The defaults are DSQL's.
type Limits struct {
	// Rows is the most rows one transaction may write.
	Rows int
	// Bytes is the most payload bytes one transaction may write.
	Bytes int
	// Chunk is the largest payload stored in one row; larger payloads are
	// split into several rows.
	Chunk int
}

// DefaultLimits are Aurora DSQL's limits (3000 rows and 10 MiB per
// transaction, 1 MiB per column), with room left for keys and row overhead.
var DefaultLimits = Limits{Rows: 3000, Bytes: 10<<20 - 64<<10, Chunk: 1<<20 - 4<<10}

// Retry bounds how often a transaction that hit a serialization failure or
// a transient connection error is tried again.
type Retry struct {
	Attempts int           // tries in all, at least 1
	Base     time.Duration // first backoff; it doubles, with full jitter
	Max      time.Duration // largest backoff
}

// DefaultRetry is the retry policy of New.
var DefaultRetry = Retry{Attempts: 10, Base: 5 * time.Millisecond, Max: 500 * time.Millisecond}

// Option configures a Store.
type Option func(*Store)

// WithDialect says what the store talks to (DSQL by default). On PostgreSQL
// transactions run at REPEATABLE READ, DSQL's only isolation level.
func WithDialect(d Dialect) Option { return func(s *Store) { s.dialect = d } }

// WithLimits replaces DefaultLimits; zero fields keep their default.
func WithLimits(l Limits) Option {
	return func(s *Store) {
		if l.Rows > 0 {
			s.limits.Rows = l.Rows
		}
		if l.Bytes > 0 {
			s.limits.Bytes = l.Bytes
		}
		if l.Chunk > 0 {
			s.limits.Chunk = l.Chunk
		}
	}
}

// WithRetry replaces DefaultRetry.
func WithRetry(r Retry) Option { return func(s *Store) { s.retry = r } }

// New returns a store using db, whose schema Migrate created.
func New(db DB, opts ...Option) *Store {
	s := &Store{db: db, dialect: DSQL, limits: DefaultLimits, retry: DefaultRetry}
	for _, o := range opts {
		o(s)
	}
	if s.retry.Attempts < 1 {
		s.retry.Attempts = 1
	}
	return s
}

// begin starts a read-write transaction at the isolation DSQL uses.
func (s *Store) begin(ctx context.Context) (pgx.Tx, error) {
	if s.dialect == PostgreSQL {
		return s.db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	}
	return s.db.Begin(ctx)
}
