package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/infinity-runtime/infinity/bench/internal/charts"
)

// Keys of Row.Metrics.
const (
	mThreads        = "threads"          // the row's threads (row 2, 3: sleepers)
	mRSS            = "rss_mib"          // row 1: RSS at rest; rows 6, 7: after the restart
	mRSSActive      = "rss_active_mib"   // rows 6, 7: after the slices
	mIdle           = "idle_cpu_pct"     // row 3
	mReady          = "ready_s"          // rows 4, 6, 7: restart to ready
	mOpen           = "open_s"           // rows 4, 6, 7: daemon.Open alone
	mSlices         = "slices"           // rows 5, 6, 7
	mSlicesPerS     = "slices_per_s"     // rows 5, 6, 7
	mFsyncsPerSlice = "fsyncs_per_slice" // row 5
)

// lateQuantiles are row 2's lateness figures (q 1: the maximum).
var lateQuantiles = []struct {
	name, key string
	q         float64
}{
	{"p50", "late_p50_ms", 0.50},
	{"p90", "late_p90_ms", 0.90},
	{"p99", "late_p99_ms", 0.99},
	{"p99.9", "late_p999_ms", 0.999},
	{"max", "late_max_ms", 1},
}

// chartFiles draws the rows' Metrics: restart to ready (rows 4, 6, 7),
// slices per second (rows 5, 6, 7), timer lateness (row 2) and RSS (rows
// 1, 6, 7). Rows that failed or carry no metrics are left out, and so is
// a chart none of whose rows is there. Row 3 (idle CPU) is one number and
// stays in the table.
func chartFiles(rows []Row) []charts.File {
	get := func(r Row, key string) float64 {
		if v, ok := r.Metrics[key]; ok {
			return v
		}
		return math.NaN()
	}
	threads := func(r Row) string { return charts.Thousands(int(get(r, mThreads))) }
	var files []charts.File

	var cats []string
	var ready []float64
	for _, r := range rows {
		if r.Err != "" || r.Metrics[mReady] == 0 {
			continue
		}
		switch r.N {
		case 4:
			cats = append(cats, fmt.Sprintf("row 4\n%s threads + timers", threads(r)))
		case 6, 7:
			cats = append(cats, fmt.Sprintf("row %d\n%s threads with history", r.N, threads(r)))
		default:
			continue
		}
		ready = append(ready, get(r, mReady))
	}
	if len(cats) > 0 {
		files = append(files, charts.File{Name: "wall.svg", Table: charts.Table{
			Title: "Daemon: restart to ready (daemon.Open + first Status)", Unit: "time, s",
			Categories: cats, Series: []charts.Series{{Name: "restart to ready", Values: ready}}}})
	}

	cats = nil
	var rate []float64
	for _, r := range rows {
		if r.Err != "" || r.Metrics[mSlicesPerS] == 0 {
			continue
		}
		switch r.N {
		case 5:
			cats = append(cats, fmt.Sprintf("row 5: in process\n%s threads × %d messages", threads(r), int(math.Round(get(r, mSlices)/get(r, mThreads)))))
		case 6, 7:
			cats = append(cats, fmt.Sprintf("row %d: via the HTTP API\n%s slices on %s threads\nwith history", r.N, charts.Thousands(int(get(r, mSlices))), threads(r)))
		default:
			continue
		}
		rate = append(rate, get(r, mSlicesPerS))
	}
	if len(cats) > 0 {
		files = append(files, charts.File{Name: "throughput.svg", Table: charts.Table{
			Title: "Daemon: durable slices per second", Unit: "slices/s",
			Categories: cats, Series: []charts.Series{{Name: "slices/s", Values: rate}}}})
	}

	for _, r := range rows {
		if _, ok := r.Metrics[lateQuantiles[0].key]; r.N != 2 || r.Err != "" || !ok {
			continue
		}
		var names []string
		var vals []float64
		for _, q := range lateQuantiles {
			names, vals = append(names, q.name), append(vals, get(r, q.key))
		}
		files = append(files, charts.File{Name: "lateness.svg", Table: charts.Table{
			Title: fmt.Sprintf("Daemon row 2: timer lateness, %s sleepers (delivered − due)", threads(r)), Unit: "lateness, ms",
			Kind: charts.Lines, Categories: names, Series: []charts.Series{{Name: "row 2", Values: vals}}}})
	}

	cats = nil
	var rest, active []float64
	for _, r := range rows {
		if r.Err != "" || r.Metrics[mRSS] == 0 {
			continue
		}
		switch r.N {
		case 1:
			cats = append(cats, fmt.Sprintf("row 1\n%s passivated threads", threads(r)))
		case 6, 7:
			cats = append(cats, fmt.Sprintf("row %d\n%s threads with history", r.N, threads(r)))
		default:
			continue
		}
		rest, active = append(rest, get(r, mRSS)), append(active, get(r, mRSSActive))
	}
	if len(cats) > 0 {
		series := []charts.Series{{Name: "at rest (rows 6, 7: after the restart)", Values: rest}}
		for _, v := range active {
			if !math.IsNaN(v) {
				series = append(series, charts.Series{Name: "after the slices (rows 6, 7)", Values: active})
				break
			}
		}
		files = append(files, charts.File{Name: "rss.svg", Table: charts.Table{
			Title: "Daemon: RSS (after runtime.GC + debug.FreeOSMemory)", Unit: "RSS, MiB",
			Categories: cats, Series: series, Scale: charts.Linear}})
	}
	return files
}

// writeOutputs writes the -json file and the -charts.
func writeOutputs(rows []Row) error {
	if *flagJSON != "" {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("write json: %w", err)
			}
		}
		if err := os.WriteFile(*flagJSON, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
	}
	if *flagCharts == "" {
		return nil
	}
	files := chartFiles(rows)
	if len(files) == 0 {
		logf("charts: no row with figures to draw")
		return nil
	}
	paths, err := charts.WriteAll(*flagCharts, files)
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
