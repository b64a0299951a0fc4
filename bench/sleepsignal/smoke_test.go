package main

import (
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
