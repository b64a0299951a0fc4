package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/infinity-runtime/infinity/bench/internal/charts"
)

// chartFiles turns the table's medians into charts: wall time, timer
// lateness (p50/p90/p99/max) and peak RSS per system and N, and idle CPU
// when there are idle rows. A chart with nothing to show is left out.
func chartFiles(rows []Row) []charts.File {
	sums := summarize(rows)
	var systems []string
	var ns []int
	for _, s := range sums {
		if !slices.Contains(systems, s.system) {
			systems = append(systems, s.system)
		}
		if !slices.Contains(ns, s.n) {
			ns = append(ns, s.n)
		}
	}
	slices.Sort(ns)
	find := func(sys string, n int) (summary, bool) {
		for _, s := range sums {
			if s.system == sys && s.n == n {
				return s, true
			}
		}
		return summary{}, false
	}
	// bySystem is one series per N over the systems.
	bySystem := func(value func(summary) (float64, bool)) ([]charts.Series, bool) {
		var series []charts.Series
		some := false
		for _, n := range ns {
			vals := make([]float64, len(systems))
			for i, sys := range systems {
				vals[i] = math.NaN()
				if s, ok := find(sys, n); ok {
					if v, ok := value(s); ok {
						vals[i], some = v, true
					}
				}
			}
			series = append(series, charts.Series{Name: "N = " + charts.Thousands(n), Values: vals})
		}
		return series, some
	}
	ran := func(f func(summary) float64) func(summary) (float64, bool) {
		return func(s summary) (float64, bool) { return f(s), s.runs > 0 }
	}
	var files []charts.File
	if series, ok := bySystem(ran(func(s summary) float64 { return s.wall })); ok {
		files = append(files, charts.File{Name: "wall.svg", Table: charts.Table{
			Title: "Sleep-and-signal: wall time (first start to last answer)", Unit: "wall time, s",
			Categories: systems, Series: series}})
	}
	var late []charts.Series
	for _, s := range sums {
		if s.runs > 0 {
			late = append(late, charts.Series{Name: fmt.Sprintf("%s, N = %s", s.system, charts.Thousands(s.n)),
				Values: []float64{s.p50, s.p90, s.p99, s.mx}})
		}
	}
	if len(late) > 0 {
		files = append(files, charts.File{Name: "lateness.svg", Table: charts.Table{
			Title: "Sleep-and-signal: timer lateness (thread resumed − timer due)", Unit: "lateness, ms",
			Categories: []string{"p50", "p90", "p99", "max"}, Series: late, Kind: charts.Lines}})
	}
	if series, ok := bySystem(ran(func(s summary) float64 { return s.rss })); ok {
		files = append(files, charts.File{Name: "rss.svg", Table: charts.Table{
			Title: "Sleep-and-signal: peak RSS (all of a system's processes)", Unit: "peak RSS, MB",
			Categories: systems, Series: series}})
	}
	if series, ok := bySystem(func(s summary) (float64, bool) { return s.idle, s.hasIdle }); ok {
		files = append(files, charts.File{Name: "idle.svg", Table: charts.Table{
			Title: "Sleep-and-signal: idle CPU (every thread asleep, timers armed)", Unit: "CPU, % of one core",
			Categories: systems, Series: series}})
	}
	return files
}

// writeCharts writes the charts of rows into dir (nothing when dir is
// empty) and logs their paths.
func writeCharts(dir string, rows []Row) error {
	if dir == "" {
		return nil
	}
	files := chartFiles(rows)
	if len(files) == 0 {
		logf("charts: no successful rows, nothing to draw")
		return nil
	}
	paths, err := charts.WriteAll(dir, files)
	if err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	for _, p := range paths {
		logf("charts: wrote %s", p)
	}
	return nil
}

// readRows reads the JSON lines of a -json file.
func readRows(path string) ([]Row, error) { return charts.ReadRows[Row](path) }
