package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the durable and memory variants with 50 entities and
// short sleeps through the same code as the benchmark, and the idle
// configuration with a short window.
func TestSmoke(t *testing.T) {
	for _, durable := range []bool{true, false} {
		cfg := config{durable: durable, n: 50, run: 1, dir: t.TempDir(), sleepMin: 100 * time.Millisecond,
			sleepMax: 200 * time.Millisecond, timeout: time.Minute, workers: 16}
		t.Run(cfg.system(), func(t *testing.T) {
			r := runConfig(cfg)
			if r.Error != "" {
				t.Fatalf("run failed: %s", r.Error)
			}
			t.Logf("%+v", r)
			switch {
			case r.System != cfg.system() || r.N != 50:
				t.Errorf("row labelled %s n=%d", r.System, r.N)
			case r.WallS < 0.1 || r.WallS > 30:
				t.Errorf("wall %.3f s: want between the shortest sleep and 30 s", r.WallS)
			case r.LateP50Ms < 0 || r.LateP50Ms > r.LateP99Ms || r.LateP99Ms > r.LateMaxMs || r.LateMaxMs > 10_000:
				t.Errorf("lateness p50/p99/max %.2f/%.2f/%.2f ms", r.LateP50Ms, r.LateP99Ms, r.LateMaxMs)
			case r.ResumeP50Ms <= 0 || r.ResumeP50Ms > r.ResumeP99Ms || r.ResumeP99Ms > 10_000:
				t.Errorf("input→resume p50/p99 %.2f/%.2f ms", r.ResumeP50Ms, r.ResumeP99Ms)
			case r.PeakRSSMB["bench"] <= 0:
				t.Errorf("peak RSS %v", r.PeakRSSMB)
			case durable && r.DiskBytes <= 0:
				t.Errorf("durable run wrote %d bytes", r.DiskBytes)
			}
		})
	}
	t.Run("idle", func(t *testing.T) {
		cfg := config{durable: true, n: 50, run: 1, dir: t.TempDir(), idle: true, idleSleep: 20 * time.Minute,
			idleWindow: 200 * time.Millisecond, timeout: time.Minute, workers: 16}
		r := runConfig(cfg)
		if r.Error != "" {
			t.Fatalf("idle run failed: %s", r.Error)
		}
		if !r.Idle || r.IdleCPUPct == nil || *r.IdleCPUPct < 0 {
			t.Fatalf("idle row %+v", r)
		}
	})
}

func TestTable(t *testing.T) {
	pct := 0.05
	rows := []Row{
		{System: sysDurable, N: 10_000, Run: 1, WallS: 4, LateP99Ms: 10, PeakRSSMB: map[string]float64{"bench": 90}},
		{System: sysDurable, N: 10_000, Run: 2, WallS: 6, LateP99Ms: 30, PeakRSSMB: map[string]float64{"bench": 95}},
		{System: sysDurable, N: 10_000, Run: 1, Idle: true, IdleCPUPct: &pct, PeakRSSMB: map[string]float64{"bench": 50}},
		{System: "temporal", N: 10_000, Run: 1, WallS: 250, LateP99Ms: 2000, PeakRSSMB: map[string]float64{"server": 450, "worker": 66}},
	}
	s := summarize(rows)
	if len(s) != 2 || s[0].wall != 5 || s[0].p99 != 20 || !s[0].hasIdle || s[1].rss != 516 {
		t.Fatalf("summaries %+v", s)
	}
	var b stringsBuilder
	printTable(&b, rows)
	for _, want := range []string{"5.000 (goal ≤ 5 ✓)", "0.050 (goal < 0.1 ✓)", "50.0×", "server 450.0 + worker 66.0"} {
		if !b.contains(want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

type stringsBuilder struct{ strings.Builder }

func (b *stringsBuilder) contains(s string) bool { return strings.Contains(b.String(), s) }

// TestCharts saves rows with -json's writer, reads them back as -from
// does and draws their charts.
func TestCharts(t *testing.T) {
	pct, p90 := 0.02, 3.5
	rows := []Row{
		{System: sysDurable, N: 1_000, Run: 1, WallS: 2.1, LateP50Ms: 0.2, LateP90Ms: &p90, LateP99Ms: 5, LateMaxMs: 9, PeakRSSMB: map[string]float64{"bench": 38}},
		{System: sysDurable, N: 10_000, Run: 1, WallS: 2.6, LateP50Ms: 0.3, LateP90Ms: &p90, LateP99Ms: 22, LateMaxMs: 48, PeakRSSMB: map[string]float64{"bench": 91}},
		{System: sysDurable, N: 10_000, Run: 1, Idle: true, IdleCPUPct: &pct},
		{System: "temporal", N: 1_000, Run: 1, WallS: 47, LateP50Ms: 349, LateP99Ms: 825, LateMaxMs: 1076, PeakRSSMB: map[string]float64{"server": 232, "worker": 42}},
		{System: "temporal", N: 10_000, Run: 1, Error: "timed out"},
	}
	dir := t.TempDir()
	saved := filepath.Join(dir, "rows.json")
	f, err := os.Create(saved)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(f, rows); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := readRows(saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) || got[0].LateP90Ms == nil || *got[0].LateP90Ms != p90 || got[3].LateP90Ms != nil {
		t.Fatalf("read back %+v", got)
	}
	files := chartFiles(got)
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"wall.svg", "lateness.svg", "rss.svg", "idle.svg"}) {
		t.Fatalf("charts %v", names)
	}
	wall := files[0].Table
	if !slices.Equal(wall.Categories, []string{sysDurable, "temporal"}) || wall.Series[1].Name != "N = 10,000" ||
		wall.Series[1].Values[0] != 2.6 || !math.IsNaN(wall.Series[1].Values[1]) {
		t.Errorf("wall chart %+v", wall)
	}
	if late := files[1].Table.Series; len(late) != 3 || !math.IsNaN(late[2].Values[1]) || late[0].Values[1] != p90 {
		t.Errorf("lateness series %+v", late)
	}
	if err := writeCharts(filepath.Join(dir, "charts"), got); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "charts", "lateness.svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "p90", "temporal, N = 1,000", "infinity-durable, N = 10,000"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("lateness.svg lacks %q", want)
		}
	}
	if _, err := readRows(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("readRows of a missing file: no error")
	}
}
