package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
)

// Row is one run of one configuration: the JSON line this program and the
// peers program (bench/peers) both print. Idle-configuration rows set Idle
// and IdleCPUPct and leave the workload metrics zero.
type Row struct {
	System      string             `json:"system"`
	N           int                `json:"n"`
	Run         int                `json:"run"`
	Idle        bool               `json:"idle,omitempty"`
	WallS       float64            `json:"wall_s"`
	LateP50Ms   float64            `json:"late_p50_ms"`
	LateP90Ms   *float64           `json:"late_p90_ms,omitempty"` // Infinity's rows only (bench/peers does not report it)
	LateP99Ms   float64            `json:"late_p99_ms"`
	LateMaxMs   float64            `json:"late_max_ms"`
	ResumeP50Ms float64            `json:"resume_p50_ms"`
	ResumeP99Ms float64            `json:"resume_p99_ms"`
	PeakRSSMB   map[string]float64 `json:"peak_rss_mb"`
	IdleCPUPct  *float64           `json:"idle_cpu_pct,omitempty"`
	DiskBytes   int64              `json:"disk_bytes"`
	Error       string             `json:"error"`
}

// Systems.
const (
	sysDurable = "infinity-durable"
	sysMemory  = "infinity-memory"
)

// rssTotal is the sum of the peak RSS of every process of the row.
func (r Row) rssTotal() float64 {
	var t float64
	for _, v := range r.PeakRSSMB {
		t += v
	}
	return t
}

// rssLabel lists the processes' peak RSS, "bench 55.1".
func (r Row) rssLabel() string {
	var s string
	for _, k := range slices.Sorted(maps.Keys(r.PeakRSSMB)) {
		if s != "" {
			s += " + "
		}
		s += fmt.Sprintf("%s %.1f", k, r.PeakRSSMB[k])
	}
	return s
}

func writeJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
	}
	return nil
}

var csvHeader = []string{"system", "n", "run", "idle", "wall_s", "late_p50_ms", "late_p99_ms", "late_max_ms",
	"resume_p50_ms", "resume_p99_ms", "peak_rss_mb", "peak_rss_detail", "idle_cpu_pct", "disk_bytes", "error"}

func writeCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, r := range rows {
		idle := ""
		if r.IdleCPUPct != nil {
			idle = f(*r.IdleCPUPct)
		}
		cw.Write([]string{r.System, strconv.Itoa(r.N), strconv.Itoa(r.Run), strconv.FormatBool(r.Idle), f(r.WallS),
			f(r.LateP50Ms), f(r.LateP99Ms), f(r.LateMaxMs), f(r.ResumeP50Ms), f(r.ResumeP99Ms),
			f(r.rssTotal()), r.rssLabel(), idle, strconv.FormatInt(r.DiskBytes, 10), r.Error})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}
