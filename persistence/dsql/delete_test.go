package dsql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/jackc/pgx/v5"
)

// countingDB counts the transactions begun and, past failAfter (when set),
// fails to begin more, as a crashed process would.
type countingDB struct {
	DB
	begins    atomic.Int64
	failAfter int64
}

var errCrash = errors.New("crash")

func (c *countingDB) Begin(ctx context.Context) (pgx.Tx, error) {
	if n := c.begins.Add(1); c.failAfter > 0 && n > c.failAfter {
		return nil, errCrash
	}
	return c.DB.Begin(ctx)
}

func (c *countingDB) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	if n := c.begins.Add(1); c.failAfter > 0 && n > c.failAfter {
		return nil, errCrash
	}
	return c.DB.BeginTx(ctx, opts)
}

// closedTree builds a closed tree of 2+kids threads with data in every
// table: root, then kids children of the root, the first of which has a
// child of its own (created by a commit of that child, after its
// siblings). Every thread gets items (some in several chunks) over a few
// commits, applied ids, outbox entries and a summary. It returns the ids
// root first, depth first in creation order, and the rows the tree holds.
func closedTree(t *testing.T, s *Store, name string, kids, items int) ([]infinity.ThreadID, int) {
	t.Helper()
	ctx := t.Context()
	r := root(t, s, name)
	child := func(id string, parent infinity.ThreadID, order int) infinity.ThreadInfo {
		return infinity.ThreadInfo{ID: infinity.ThreadID(id), Parent: parent, Root: r, SpawnOrder: order, Agent: "sub"}
	}
	var create []infinity.ThreadInfo
	for k := range kids {
		create = append(create, child(fmt.Sprintf("%s-c%d", name, k), r, k))
	}
	if _, err := s.Commit(ctx, infinity.Commit{Thread: r, Create: create}); err != nil {
		t.Fatal(err)
	}
	first := create[0].ID
	grand := child(string(first)+"-g", first, 0)
	if _, err := s.Commit(ctx, infinity.Commit{Thread: first, Create: []infinity.ThreadInfo{grand}}); err != nil {
		t.Fatal(err)
	}
	ids := []infinity.ThreadID{r, first, grand.ID}
	for _, c := range create[1:] {
		ids = append(ids, c.ID)
	}
	for _, id := range ids {
		n := 0
		for k := 0; k < items; k += 5 {
			batch := make([]infinity.Item, min(5, items-k))
			for i := range batch {
				batch[i] = item(fmt.Sprintf("%s-%d", id, k+i))
			}
			m := infinity.MessageID(fmt.Sprintf("%s-m%d", id, k))
			c := infinity.Commit{Thread: id, Expected: n, Items: batch, Applied: []infinity.MessageID{m},
				Outbox: []infinity.Outgoing{{ID: string(m), Invoke: &infinity.Invocation{Tool: "t"}}}}
			if k > 0 {
				c.Summary = &infinity.Summary{Position: n, Covers: n, Text: "so far"}
			}
			if _, err := s.Commit(ctx, c); err != nil {
				t.Fatal(err)
			}
			n += len(batch)
		}
	}
	if _, err := s.Commit(ctx, infinity.Commit{Thread: r, Expected: items, Close: ids}); err != nil {
		t.Fatal(err)
	}
	rows := treeRows(t, s, ids)
	if rows <= len(ids) {
		t.Fatalf("the tree holds %d rows: no data", rows)
	}
	return ids, rows
}

// treeRows counts the rows of the threads in every table.
func treeRows(t *testing.T, s *Store, ids []infinity.ThreadID) int {
	t.Helper()
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = string(id)
	}
	total := 0
	for _, q := range []string{`SELECT count(*) FROM threads WHERE id = ANY($1::text[]) OR root = ANY($1::text[])`,
		`SELECT count(*) FROM items WHERE thread_id = ANY($1::text[])`,
		`SELECT count(*) FROM applied WHERE thread_id = ANY($1::text[])`,
		`SELECT count(*) FROM outbox WHERE thread_id = ANY($1::text[])`,
		`SELECT count(*) FROM summaries WHERE thread_id = ANY($1::text[])`} {
		var n int
		if err := s.db.QueryRow(t.Context(), q, strs).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// limited returns a store on s's database that deletes at most rows rows
// per transaction, and its transaction counter.
func limited(s *Store, rows int, failAfter int64) (*Store, *countingDB) {
	db := &countingDB{DB: s.db, failAfter: failAfter}
	return New(db, WithDialect(PostgreSQL), WithLimits(Limits{Rows: rows})), db
}

// TestDeleteTreeOneTransaction deletes a tree that just fits in one
// transaction in one, and one a row larger in two.
func TestDeleteTreeOneTransaction(t *testing.T) {
	s := newStore(t)
	for _, extra := range []int{0, 1} {
		ids, rows := closedTree(t, s, fmt.Sprint("fit", extra), 2, 7)
		d, db := limited(s, rows-extra, 0)
		got, err := d.DeleteTree(t.Context(), ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("DeleteTree = %v, want %v", got, ids)
		}
		if want := int64(1 + extra); db.begins.Load() != want {
			t.Errorf("a tree of %d rows, limit %d: %d transactions, want %d", rows, rows-extra, db.begins.Load(), want)
		}
		if n := treeRows(t, s, ids); n != 0 {
			t.Errorf("%d rows left", n)
		}
	}
}

// TestDeleteTreeChunked deletes trees larger than one transaction allows,
// one with more threads than a transaction deletes too: every row goes,
// in transactions of at most the limit, and the ids come back root first,
// depth first in creation order.
func TestDeleteTreeChunked(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		name              string
		kids, items, rows int
	}{
		{"deep-threads", 3, 23, 10},    // threads emptied over several transactions
		{"many-threads", 12, 2, 5},     // 14 threads, 5 per transaction
		{"one-row-at-a-time", 2, 3, 1}, // the smallest limit still progresses
		{"large-limit", 4, 12, 3000},   // one transaction
	} {
		ids, rows := closedTree(t, s, tc.name, tc.kids, tc.items)
		d, db := limited(s, tc.rows, 0)
		got, err := d.DeleteTree(t.Context(), ids[0])
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("%s: DeleteTree = %v, want %v", tc.name, got, ids)
		}
		// Each transaction but the last deletes the limit exactly; the
		// last deletes what is left.
		want := int64(1)
		if rows > tc.rows {
			want = int64((rows-1)/tc.rows + 1)
		}
		if got := db.begins.Load(); got != want {
			t.Errorf("%s: %d rows, limit %d: %d transactions, want %d", tc.name, rows, tc.rows, got, want)
		}
		if n := treeRows(t, s, ids); n != 0 {
			t.Errorf("%s: %d rows left", tc.name, n)
		}
		if _, err := s.Thread(t.Context(), ids[0]); !errors.Is(err, infinity.ErrNotFound) {
			t.Errorf("%s: Thread after DeleteTree: %v", tc.name, err)
		}
		root(t, s, string(ids[0])) // the id is free again
	}
}

// TestDeleteTreeResumes interrupts a chunked deletion after every possible
// transaction: the root is still there, closed, with a connected part of
// its tree, and DeleteTree again finishes the work.
func TestDeleteTreeResumes(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		name        string
		kids, items int
		limit       int
	}{
		{"data", 2, 11, 8},   // every thread id comes back from the second call
		{"threads", 9, 1, 4}, // thread rows go in several transactions
	} {
		for crash := int64(1); ; crash++ {
			name := fmt.Sprintf("%s-%d", tc.name, crash)
			ids, rows := closedTree(t, s, name, tc.kids, tc.items)
			d, _ := limited(s, tc.limit, crash)
			_, err := d.DeleteTree(t.Context(), ids[0])
			if err == nil {
				if crash*int64(tc.limit) < int64(rows) {
					t.Fatalf("%s: DeleteTree of %d rows succeeded in %d transactions of %d", name, rows, crash, tc.limit)
				}
				break
			}
			if !errors.Is(err, errCrash) {
				t.Fatalf("%s: %v", name, err)
			}
			info, err := s.Thread(t.Context(), ids[0])
			if err != nil || !info.Closed {
				t.Fatalf("%s: the root after a crash: %+v, %v", name, info, err)
			}
			var left []infinity.ThreadID
			for _, id := range ids {
				if _, err := s.Thread(t.Context(), id); errors.Is(err, infinity.ErrNotFound) {
					continue
				}
				// What is left hangs together: every ancestor is there.
				lin, err := s.Lineage(t.Context(), id)
				if err != nil || lin[0].ID != ids[0] {
					t.Fatalf("%s: Lineage(%s) after a crash: %v, %v", name, id, lin, err)
				}
				left = append(left, id)
			}
			if n := treeRows(t, s, ids); n == 0 || n >= rows {
				t.Fatalf("%s: %d of %d rows left after %d transactions", name, n, rows, crash)
			}
			d, _ = limited(s, tc.limit, 0)
			got, err := d.DeleteTree(t.Context(), ids[0])
			if err != nil {
				t.Fatalf("%s: DeleteTree after a crash: %v", name, err)
			}
			if !slices.Equal(got, left) {
				t.Errorf("%s: DeleteTree after a crash = %v, want %v", name, got, left)
			}
			if tc.kids+2 <= tc.limit && len(left) != len(ids) {
				t.Errorf("%s: thread rows went before the last transaction: %v left of %v", name, left, ids)
			}
			if n := treeRows(t, s, ids); n != 0 {
				t.Errorf("%s: %d rows left", name, n)
			}
		}
	}
}

// TestDeleteTreeRacingCommit races a deletion with commits to an open
// child of the closed root that add items and spawn threads: whichever
// wins, nothing of the tree is left behind.
func TestDeleteTreeRacingCommit(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for round := range 8 {
		r := root(t, s, fmt.Sprint("race", round))
		kid := infinity.ThreadInfo{ID: r + "-kid", Parent: r, Root: r}
		if _, err := s.Commit(ctx, infinity.Commit{Thread: r, Create: []infinity.ThreadInfo{kid}, Close: []infinity.ThreadID{r}}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			var err error
			for k := 0; err == nil && k < 20; k++ {
				spawn := infinity.ThreadInfo{ID: infinity.ThreadID(fmt.Sprintf("%s-g%d", kid.ID, k)), Parent: kid.ID, Root: r}
				_, err = s.Commit(ctx, infinity.Commit{Thread: kid.ID, Expected: k, Items: []infinity.Item{item(fmt.Sprint(k))},
					Create: []infinity.ThreadInfo{spawn}})
			}
			done <- err
		}()
		ids, err := s.DeleteTree(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if cerr := <-done; cerr != nil && !errors.Is(cerr, infinity.ErrNotFound) {
			t.Fatalf("the racing commit: %v", cerr)
		}
		t.Logf("round %d: deleted %d threads", round, len(ids))
		if len(ids) < 2 || ids[0] != r || ids[1] != kid.ID {
			t.Fatalf("DeleteTree = %v", ids)
		}
		if n := treeRows(t, s, []infinity.ThreadID{r, kid.ID}); n != 0 {
			t.Fatalf("round %d: %d rows left", round, n)
		}
		var orphans int
		if err := s.db.QueryRow(ctx, `SELECT count(*) FROM items WHERE thread_id LIKE $1`, string(r)+"%").Scan(&orphans); err != nil || orphans != 0 {
			t.Fatalf("round %d: %d orphaned items (%v)", round, orphans, err)
		}
	}
}

func TestPreorder(t *testing.T) {
	tree := []treeRow{{"r", "", 0}, {"b", "r", 1}, {"a", "r", 0}, {"a2", "a", 1}, {"a1", "a", 0}, {"b1", "b", 0},
		{"lost", "gone", 0}, {"x", "y", 0}, {"y", "x", 0}}
	got := preorder("r", tree)
	want := []string{"r", "a", "a1", "a2", "b", "b1", "lost", "x", "y"}
	if !slices.Equal(got, want) {
		t.Fatalf("preorder = %v, want %v", got, want)
	}
}
