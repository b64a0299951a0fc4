package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

func TestGoWorkflowsSmall(t *testing.T) {
	cfg := defaultConfig()
	cfg.n = 20
	cfg.minSleep, cfg.maxSleep = 100*time.Millisecond, 300*time.Millisecond
	cfg.timeout = time.Minute
	row := runOnce(context.Background(), cfg)
	if row.Error != "" {
		t.Fatalf("run failed: %s", row.Error)
	}
	t.Logf("%s", summary(row))
	if row.WallS <= 0 || row.LateMax < row.LateP50 || row.ResumeP99 <= 0 || row.PeakRSSMB["worker"] <= 0 {
		t.Fatalf("implausible row: %+v", row)
	}
	if row.LateP50 < 0 {
		t.Fatalf("timer woke early: %+v", row)
	}
}

// TestSynchronousPragma checks that the DSN pragma used for go-workflows'
// backend really sets synchronous=FULL with modernc.org/sqlite.
func TestSynchronousPragma(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "x.db")+"?_pragma=synchronous(FULL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA synchronous").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Fatalf("synchronous = %d, want 2 (FULL)", v)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if got := pct(xs, 50); got != 3 {
		t.Fatalf("p50 = %v", got)
	}
	if got := pct(xs, 100); got != 5 {
		t.Fatalf("max = %v", got)
	}
}
