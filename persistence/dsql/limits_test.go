package dsql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func countRows(t *testing.T, s *Store, table string, id infinity.ThreadID) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(t.Context(), "SELECT count(*) FROM "+table+" WHERE thread_id = $1", string(id)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLargeItem stores an item and an outgoing entry over DSQL's 1 MiB
// column limit: they are split across rows and come back whole.
func TestLargeItem(t *testing.T) {
	s := newStore(t)
	id := root(t, s, "large")
	big := item("big")
	big.Text = strings.Repeat("é€x", 200_000) // 1.2 MB of multi-byte text: pieces split inside runes
	out := infinity.Outgoing{ID: "o1", Message: &infinity.InputMessage{ID: "m", GroupID: id, Content: infinity.TextContent(big.Text)}}
	c := infinity.Commit{Thread: id, Items: []infinity.Item{item("a"), big, item("b")}, Outbox: []infinity.Outgoing{out}}
	if _, err := s.Commit(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "items", id); n != 2+2 {
		t.Errorf("%d item rows, want 4 (the big item in 2 pieces)", n)
	}
	if n := countRows(t, s, "outbox", id); n != 2 {
		t.Errorf("%d outbox rows, want 2", n)
	}
	for _, r := range [][2]int{{0, -1}, {2, 3}} {
		got, err := s.Items(t.Context(), id, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		hi := r[1]
		if hi < 0 {
			hi = 3
		}
		if len(got) != hi-r[0] {
			t.Fatalf("Items%v: %d items", r, len(got))
		}
		for i, it := range got {
			if want := c.Items[r[0]+i]; it.ID != want.ID || it.Text != want.Text {
				t.Errorf("Items%v[%d]: %s (%d bytes of text), want %s (%d)", r, i, it.ID, len(it.Text), want.ID, len(want.Text))
			}
		}
	}
	o, err := s.Outbox(t.Context(), id)
	if err != nil || len(o) != 1 || o[0].Message.Content.Text != big.Text {
		t.Fatalf("Outbox: %d entries, %v", len(o), err)
	}
	if err := s.MarkSent(t.Context(), id, "o1"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "outbox", id); n != 0 {
		t.Errorf("%d outbox rows after MarkSent, want 0", n)
	}
}

// TestSmallChunks splits every payload into many pieces.
func TestSmallChunks(t *testing.T) {
	s := newStore(t, WithLimits(Limits{Rows: 3000, Bytes: 10 << 20, Chunk: 7}))
	id := root(t, s, "small")
	var all []infinity.Item
	for k := range 5 {
		items := []infinity.Item{item(fmt.Sprintf("u%d", k)), item(fmt.Sprintf("a%d", k))}
		if _, err := s.Commit(t.Context(), infinity.Commit{Thread: id, Expected: len(all), Items: items,
			Outbox: []infinity.Outgoing{{ID: fmt.Sprint(k), Invoke: &infinity.Invocation{Tool: "sleep"}}}}); err != nil {
			t.Fatal(err)
		}
		all = append(all, items...)
	}
	for from := range len(all) + 1 {
		got, err := s.Items(t.Context(), id, from, from+3)
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range got {
			if it.ID != all[from+i].ID {
				t.Errorf("Items(%d,%d)[%d] = %s, want %s", from, from+3, i, it.ID, all[from+i].ID)
			}
		}
	}
	if o, err := s.Outbox(t.Context(), id); err != nil || len(o) != 5 || o[4].ID != "4" {
		t.Fatalf("Outbox: %v, %v", o, err)
	}
}

// TestTransactionLimits refuses commits past DSQL's per-transaction rows
// and bytes with ErrInvalid, writing nothing, after the state checks.
func TestTransactionLimits(t *testing.T) {
	s := newStore(t)
	id := root(t, s, "limits")
	many := make([]infinity.Item, 3000)
	for i := range many {
		many[i] = item(fmt.Sprint(i))
	}
	huge := item("huge")
	huge.Text = strings.Repeat("x", 11<<20)
	for _, tc := range []struct {
		what string
		c    infinity.Commit
		want error
		msg  string
	}{
		{"3000 items", infinity.Commit{Thread: id, Items: many}, infinity.ErrInvalid, "limit 3000"},
		{"3000 applied", infinity.Commit{Thread: id, Applied: appliedIDs(3000)}, infinity.ErrInvalid, "limit 3000"},
		{"11 MiB item", infinity.Commit{Thread: id, Items: []infinity.Item{item("a"), huge}}, infinity.ErrInvalid, "largest item 1"},
		{"stale and too big", infinity.Commit{Thread: id, Expected: 5, Items: many}, infinity.ErrConflict, "expected length 5"},
	} {
		_, err := s.Commit(t.Context(), tc.c)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.what, err, tc.want, tc.msg)
		}
	}
	if n, err := s.Len(t.Context(), id); n != 0 || err != nil || countRows(t, s, "items", id) != 0 || countRows(t, s, "applied", id) != 0 {
		t.Fatalf("refused commits wrote something: Len %d, %v", n, err)
	}
	// Just below the row limit goes through in one transaction.
	if _, err := s.Commit(t.Context(), infinity.Commit{Thread: id, Items: many[:2990]}); err != nil {
		t.Fatal(err)
	}
}

func appliedIDs(n int) []infinity.MessageID {
	out := make([]infinity.MessageID, n)
	for i := range out {
		out[i] = infinity.MessageID(fmt.Sprint("m", i))
	}
	return out
}

// TestLargeSummary stores a summary over DSQL's 1 MiB column limit in
// pieces; a later summary at the same position replaces it, every piece.
func TestLargeSummary(t *testing.T) {
	s := newStore(t)
	id := root(t, s, "large-summary")
	if _, err := s.Commit(t.Context(), infinity.Commit{Thread: id, Items: []infinity.Item{item("a"), item("b")}}); err != nil {
		t.Fatal(err)
	}
	big := &infinity.Summary{Position: 2, Covers: 2, Text: strings.Repeat("é€x", 400_000)} // 2.4 MB: 3 pieces
	if _, err := s.Commit(t.Context(), infinity.Commit{Thread: id, Expected: 2, Summary: big}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "summaries", id); n != 3 {
		t.Errorf("%d summary rows, want 3", n)
	}
	got, err := s.Summary(t.Context(), id, 3)
	if err != nil || got == nil || got.Text != big.Text || got.Covers != 2 || got.Position != 2 {
		t.Fatalf("Summary: %v (%v)", got != nil && got.Text == big.Text, err)
	}
	small := &infinity.Summary{Position: 2, Covers: 1, Text: "short"}
	if _, err := s.Commit(t.Context(), infinity.Commit{Thread: id, Expected: 2, Summary: small}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "summaries", id); n != 1 {
		t.Errorf("%d summary rows after the replacement, want 1", n)
	}
	got, err = s.Summary(t.Context(), id, 3)
	if err != nil || got == nil || got.Text != "short" || got.Covers != 1 {
		t.Fatalf("Summary after the replacement: %+v, %v", got, err)
	}
}
