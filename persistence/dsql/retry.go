package dsql

import (
	"context"
	"errors"
	"fmt"
	"github.com/infinity-runtime/infinity/internal/backoff"
	"io"
	"net"
	"strings"

	"github.com/infinity-runtime/infinity"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes the store reacts to.
const (
	codeSerialization = "40001" // DSQL reports OCC conflicts (OC000, OC001) with it
	codeDeadlock      = "40P01"
	codeUnique        = "23505"
)

// errAmbiguous marks a COMMIT whose outcome is unknown (the connection broke
// while it was under way): trying again could report a conflict for a
// commit that in fact went through, so it is not retried here.
var errAmbiguous = errors.New("commit outcome unknown")

// retryable reports whether trying the whole transaction again may
// succeed: a serialization failure (on DSQL, an optimistic-concurrency
// conflict), a deadlock, a unique violation caused by a concurrent insert
// (the next try's checks name it properly), or a connection-level failure
// that happened before the transaction could commit.
func retryable(err error) bool {
	if errors.Is(err, errAmbiguous) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case codeSerialization, codeDeadlock, codeUnique:
			return true
		}
		return strings.HasPrefix(pg.Code, "08") // class 08: connection exception
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// do runs fn until it succeeds, fails for good or the retry budget is
// spent; then the error is wrapped with infinity.ErrRetryable. It adds no
// context of its own: fn's errors carry it, or the caller adds it.
func (s *Store) do(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range s.retry.Attempts {
		if attempt > 0 {
			if werr := s.backoff(ctx, attempt); werr != nil {
				return fmt.Errorf("%w (while retrying %w)", werr, err)
			}
		}
		if err = fn(); err == nil || !retryable(err) {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errAmbiguous):
		return fmt.Errorf("%w: %w", infinity.ErrRetryable, err)
	case retryable(err):
		return fmt.Errorf("%w after %d attempts: %w", infinity.ErrRetryable, s.retry.Attempts, err)
	}
	return err
}

// backoff sleeps before retry attempt-1 (internal/backoff's jittered
// exponential wait), or returns the context's error.
func (s *Store) backoff(ctx context.Context, attempt int) error {
	return backoff.Sleep(ctx, backoff.Delay(s.retry.Base, s.retry.Max, attempt-1))
}

// inTx runs fn in one transaction, committing if it returns nil. Domain
// errors from fn pass through unchanged.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	// Rollback after Commit is a no-op; its error says nothing new.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) {
			// The server refused the commit (on DSQL, an OCC conflict is
			// reported here): nothing was written.
			return fmt.Errorf("%s: commit: %w", op, err)
		}
		return fmt.Errorf("%s: commit: %w: %w", op, errAmbiguous, err)
	}
	return nil
}
