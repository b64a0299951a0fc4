package main

import "math"

// Row is one run's result; the JSON schema is shared with the Infinity-side
// harness, which merges these lines.
type Row struct {
	System    string             `json:"system"`
	N         int                `json:"n"`
	Run       int                `json:"run"`
	Idle      bool               `json:"idle,omitempty"`
	WallS     float64            `json:"wall_s"`
	LateP50   float64            `json:"late_p50_ms"`
	LateP99   float64            `json:"late_p99_ms"`
	LateMax   float64            `json:"late_max_ms"`
	ResumeP50 float64            `json:"resume_p50_ms"`
	ResumeP99 float64            `json:"resume_p99_ms"`
	PeakRSSMB map[string]float64 `json:"peak_rss_mb"`
	IdleCPU   float64            `json:"idle_cpu_pct"`
	DiskBytes int64              `json:"disk_bytes"`
	Error     string             `json:"error"`
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
