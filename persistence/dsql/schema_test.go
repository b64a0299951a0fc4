package dsql

import (
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func TestMigrateTwice(t *testing.T) {
	db := newDB(t, 2) // migrated once
	for range 2 {
		if err := Migrate(t.Context(), db, PostgreSQL); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(migrations) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations))
	}
	// A lost record (a crash between a DDL and its record) is harmless too.
	if _, err := db.Exec(t.Context(), "DELETE FROM schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(t.Context(), db, PostgreSQL); err != nil {
		t.Fatal(err)
	}
	s := New(db, WithDialect(PostgreSQL))
	root(t, s, "after-migrate")
}

// TestDDL checks the statements are DSQL-safe: one statement each, async
// indexes on DSQL only, nothing DSQL lacks.
func TestDDL(t *testing.T) {
	for _, m := range migrations {
		for _, d := range []Dialect{DSQL, PostgreSQL} {
			sql := strings.ToUpper(m.ddl(d))
			if strings.Contains(sql, ";") || strings.Contains(sql, "REFERENCES") || strings.Contains(sql, "SERIAL") ||
				strings.Contains(sql, "SEQUENCE") || strings.Contains(sql, "TEMP") {
				t.Errorf("%d %s (%s): not DSQL-safe: %s", m.version, m.name, d, sql)
			}
			if strings.Contains(sql, "CREATE INDEX") && strings.Contains(sql, "ASYNC") != (d == DSQL) {
				t.Errorf("%d %s (%s): %s", m.version, m.name, d, sql)
			}
		}
	}
}

// TestUpgrade runs the migrations of version 6 on (per-thread models and
// summaries) over a schema of version 5 that holds a thread: its new
// columns are NULL and read as "" and false, and it takes summaries.
func TestUpgrade(t *testing.T) {
	db := newDB(t, 2)
	ctx := t.Context()
	for _, sql := range []string{
		"DROP TABLE summaries",
		"ALTER TABLE threads DROP COLUMN model",
		"ALTER TABLE threads DROP COLUMN compacted",
		"DELETE FROM schema_migrations WHERE version > 5",
		`INSERT INTO threads (id, parent, root, ancestors, spawn_order, spawn_call_id, kind, agent, closed, created,
			child_idx, children, length, outbox_seq) VALUES ('old', '', 'old', '', 0, '', 0, 'a', false, now(), 0, 0, 0, 0)`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := Migrate(ctx, db, PostgreSQL); err != nil {
		t.Fatal(err)
	}
	s := New(db, WithDialect(PostgreSQL))
	info, err := s.Thread(ctx, "old")
	if err != nil || info.Model != "" || info.Compacted || info.Agent != "a" {
		t.Fatalf("Thread(old) = %+v, %v", info, err)
	}
	if sum, err := s.Summary(ctx, "old", 1); sum != nil || err != nil {
		t.Fatalf("Summary(old) = %+v, %v; want nil", sum, err)
	}
	kid := infinity.ThreadInfo{ID: "old-kid", Parent: "old", Root: "old", Model: "p/m"}
	c := infinity.Commit{Thread: "old", Items: []infinity.Item{item("u")}, Create: []infinity.ThreadInfo{kid},
		Summary: &infinity.Summary{Text: "nothing yet"}}
	if _, err := s.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	lin, err := s.Lineage(ctx, kid.ID)
	if err != nil || len(lin) != 2 || !lin[0].Compacted || lin[1].Compacted || lin[1].Model != "p/m" || lin[0].Model != "" {
		t.Fatalf("Lineage(old-kid) = %+v, %v", lin, err)
	}
	if sum, err := s.Summary(ctx, "old", 1); err != nil || sum == nil || sum.Text != "nothing yet" {
		t.Fatalf("Summary(old) = %+v, %v", sum, err)
	}
}
