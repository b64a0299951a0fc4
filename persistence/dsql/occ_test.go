package dsql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func root(t *testing.T, s *Store, id string) infinity.ThreadID {
	t.Helper()
	tid := infinity.ThreadID(id)
	if err := s.CreateThread(t.Context(), infinity.ThreadInfo{ID: tid, Root: tid}); err != nil {
		t.Fatal(err)
	}
	return tid
}

func item(id string) infinity.Item { return infinity.Item{ID: id, Kind: infinity.KindUser, Text: id} }

// race runs one commit per worker, all with the same Expected, and returns
// their errors.
func race(t *testing.T, s *Store, id infinity.ThreadID, expected, workers int, tag string) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			<-start
			x := fmt.Sprintf("%s-w%d", tag, w)
			_, errs[w] = s.Commit(t.Context(), infinity.Commit{
				Thread: id, Expected: expected, Items: []infinity.Item{item(x)},
				Applied: []infinity.MessageID{infinity.MessageID(x)},
				Outbox:  []infinity.Outgoing{{ID: x, Invoke: &infinity.Invocation{Tool: "t"}}},
			})
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestSerializationFailures shows that racing commits do hit serialization
// failures (SQLSTATE 40001, what DSQL reports for OCC conflicts) when
// nothing is retried, and that with retries every loser reports
// ErrConflict instead.
func TestSerializationFailures(t *testing.T) {
	db := newDB(t, 8)
	noRetry := New(db, WithDialect(PostgreSQL), WithRetry(Retry{Attempts: 1}))
	retrying := New(db, WithDialect(PostgreSQL))
	const workers, rounds = 8, 6
	for _, tc := range []struct {
		name string
		s    *Store
	}{{"no retry", noRetry}, {"retry", retrying}} {
		id := root(t, tc.s, "occ-"+strings.ReplaceAll(tc.name, " ", "-"))
		serial := 0
		for round := range rounds {
			errs := race(t, tc.s, id, round, workers, fmt.Sprintf("r%d", round))
			wins := 0
			for _, err := range errs {
				var pg *pgconn.PgError
				switch {
				case err == nil:
					wins++
				case errors.Is(err, infinity.ErrConflict):
				case tc.s == noRetry && errors.Is(err, infinity.ErrRetryable) && errors.As(err, &pg) && pg.Code == codeSerialization:
					serial++
				default:
					t.Errorf("%s round %d: %v", tc.name, round, err)
				}
			}
			if wins != 1 {
				t.Fatalf("%s round %d: %d winners, want 1", tc.name, round, wins)
			}
		}
		if tc.s == noRetry && serial == 0 {
			t.Errorf("no serialization failure in %d racing rounds without retry", rounds)
		}
		t.Logf("%s: %d serialization failures reported", tc.name, serial)
		if n, err := tc.s.Len(t.Context(), id); err != nil || n != rounds {
			t.Errorf("%s: Len = %d, %v, want %d", tc.name, n, err, rounds)
		}
	}
}

// TestNoLostItems has workers that reload and retry on ErrConflict until
// each committed its share: every item is there exactly once, in a history
// whose positions match the lengths the commits returned.
func TestNoLostItems(t *testing.T) {
	s := newStore(t)
	id := root(t, s, "lost")
	const workers, each = 6, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := 0; k < each; {
				n, err := s.Len(t.Context(), id)
				if err != nil {
					t.Error(err)
					return
				}
				x := fmt.Sprintf("w%d-%d", w, k)
				_, err = s.Commit(t.Context(), infinity.Commit{Thread: id, Expected: n,
					Items: []infinity.Item{item(x + "-a"), item(x + "-b")}, Applied: []infinity.MessageID{infinity.MessageID(x)}})
				switch {
				case err == nil:
					k++
				case !errors.Is(err, infinity.ErrConflict):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	items, err := s.Items(t.Context(), id, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2*workers*each {
		t.Fatalf("%d items, want %d", len(items), 2*workers*each)
	}
	seen := map[string]bool{}
	for i := 0; i < len(items); i += 2 {
		a, b := items[i].ID, items[i+1].ID
		if seen[a] || a[len(a)-2:] != "-a" || b != a[:len(a)-2]+"-b" {
			t.Fatalf("items %d, %d: %s, %s (duplicate or split commit)", i, i+1, a, b)
		}
		seen[a] = true
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40001", Message: "change conflicts with another transaction, please retry: (OC000)"}, true},
		{&pgconn.PgError{Code: "40001", Message: "schema has been updated by another transaction, please retry: (OC001)"}, true},
		{fmt.Errorf("write: %w", &pgconn.PgError{Code: "23505"}), true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: "54000"}, false},
		{context.Canceled, false},
		{fmt.Errorf("commit: %w: %w", errAmbiguous, errors.New("eof")), false},
		{infinity.ErrConflict, false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// failingDB fails every transaction with err.
type failingDB struct {
	DB
	err   error
	calls int
}

func (f *failingDB) Begin(ctx context.Context) (pgx.Tx, error) { f.calls++; return nil, f.err }
func (f *failingDB) BeginTx(ctx context.Context, _ pgx.TxOptions) (pgx.Tx, error) {
	return f.Begin(ctx)
}

func TestRetryExhausted(t *testing.T) {
	f := &failingDB{err: &pgconn.PgError{Code: codeSerialization, Message: "(OC000)"}}
	s := New(f, WithRetry(Retry{Attempts: 3}))
	_, err := s.Commit(t.Context(), infinity.Commit{Thread: "t"})
	var pg *pgconn.PgError
	if !errors.Is(err, infinity.ErrRetryable) || !errors.As(err, &pg) || f.calls != 3 {
		t.Fatalf("Commit: %v after %d calls, want ErrRetryable wrapping 40001 after 3", err, f.calls)
	}
	f = &failingDB{err: &pgconn.PgError{Code: "42501"}}
	_, err = New(f).Commit(t.Context(), infinity.Commit{Thread: "t"})
	if errors.Is(err, infinity.ErrRetryable) || f.calls != 1 {
		t.Fatalf("Commit: %v after %d calls, want a plain error after 1", err, f.calls)
	}
}
