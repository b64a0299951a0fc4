package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCharts saves rows as -json does, reads them back as -from does and
// draws their charts. It runs no benchmark row.
func TestCharts(t *testing.T) {
	rows := []Row{
		{N: 1, Name: "RSS", Metrics: map[string]float64{mThreads: 1e6, mRSS: 221}},
		{N: 2, Name: "lateness", Metrics: map[string]float64{mThreads: 1e5, "late_p50_ms": 0.05, "late_p90_ms": 0.4, "late_p99_ms": 1.86, "late_p999_ms": 7.66, "late_max_ms": 18.08}},
		{N: 3, Name: "idle", Metrics: map[string]float64{mThreads: 1e5, mIdle: 0.28}},
		{N: 4, Name: "restart", Metrics: map[string]float64{mThreads: 1e5, mReady: 0.669, mOpen: 0.668}},
		{N: 5, Name: "slices", Metrics: map[string]float64{mThreads: 2000, mSlices: 10000, mSlicesPerS: 19657, mFsyncsPerSlice: 0.079}},
		{N: 6, Name: "history", Err: "child failed"},
		{N: 7, Name: "history", Metrics: map[string]float64{mThreads: 2000, mReady: 0.244, mRSS: 78.8, mRSSActive: 180.5, mSlices: 1000, mSlicesPerS: 291}},
		{N: 8, Name: "an old row without metrics"},
	}
	dir := t.TempDir()
	*flagJSON, *flagCharts = filepath.Join(dir, "rows.json"), filepath.Join(dir, "charts")
	defer func() { *flagJSON, *flagCharts = "", "" }()
	if err := writeOutputs(rows); err != nil {
		t.Fatal(err)
	}
	got, err := readRows(*flagJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) || got[1].Metrics["late_p999_ms"] != 7.66 || got[5].Err == "" {
		t.Fatalf("read back %+v", got)
	}
	files := chartFiles(got)
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"wall.svg", "throughput.svg", "lateness.svg", "rss.svg"}) {
		t.Fatalf("charts %v", names)
	}
	if c := files[0].Table.Categories; len(c) != 2 || !strings.HasPrefix(c[0], "row 4") || !strings.HasPrefix(c[1], "row 7") {
		t.Errorf("wall categories %q", c)
	}
	if c := files[1].Table.Categories; len(c) != 2 || !strings.Contains(c[0], "2,000 threads × 5 messages") {
		t.Errorf("throughput categories %q", c)
	}
	if s := files[3].Table.Series; len(s) != 2 || !math.IsNaN(s[1].Values[0]) || s[1].Values[1] != 180.5 {
		t.Errorf("rss series %+v", s)
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, "charts", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "Daemon") {
			t.Errorf("%s is not the chart", name)
		}
	}
	if _, err := readRows(filepath.Join(dir, "charts", "wall.svg")); err == nil {
		t.Error("readRows of an SVG: no error")
	}
}
