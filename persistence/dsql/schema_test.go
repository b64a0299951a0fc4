package dsql

import (
	"strings"
	"testing"
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
