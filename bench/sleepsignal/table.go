package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
)

func numCPU() int { return runtime.NumCPU() }

// summary is the medians of one (system, N) over its successful runs.
type summary struct {
	system              string
	n, runs, failed     int
	wall, p50, p99, mx  float64
	p90                 float64 // NaN when no run reported it
	r50, r99, rss, disk float64
	rssBy               map[string]float64
	idle                float64
	hasIdle, idleFailed bool
	errs                []string
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(rows []Row) []summary {
	type key struct {
		sys string
		n   int
	}
	groups := map[key][]Row{}
	var order []key
	for _, r := range rows {
		k := key{r.System, r.N}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []summary
	for _, k := range order {
		s := summary{system: k.sys, n: k.n, rssBy: map[string]float64{}}
		var wall, p50, p90, p99, mx, r50, r99, rss, disk []float64
		by := map[string][]float64{}
		for _, r := range groups[k] {
			if r.Error != "" {
				s.errs = append(s.errs, r.Error)
				if r.Idle {
					s.idleFailed = true
				} else {
					s.failed++
				}
				continue
			}
			if r.Idle {
				if r.IdleCPUPct != nil {
					s.idle, s.hasIdle = *r.IdleCPUPct, true
				}
				continue
			}
			s.runs++
			wall, p50, p99, mx = append(wall, r.WallS), append(p50, r.LateP50Ms), append(p99, r.LateP99Ms), append(mx, r.LateMaxMs)
			if r.LateP90Ms != nil {
				p90 = append(p90, *r.LateP90Ms)
			}
			r50, r99, rss = append(r50, r.ResumeP50Ms), append(r99, r.ResumeP99Ms), append(rss, r.rssTotal())
			disk = append(disk, float64(r.DiskBytes))
			for p, v := range r.PeakRSSMB {
				by[p] = append(by[p], v)
			}
		}
		s.wall, s.p50, s.p99, s.mx = median(wall), median(p50), median(p99), median(mx)
		s.p90 = math.NaN()
		if len(p90) > 0 {
			s.p90 = median(p90)
		}
		s.r50, s.r99, s.rss, s.disk = median(r50), median(r99), median(rss), median(disk)
		for p, v := range by {
			s.rssBy[p] = median(v)
		}
		out = append(out, s)
	}
	return out
}

// goal is a goal the issue names for (system, N, metric).
type goal struct {
	limit  float64
	strict bool // < rather than ≤
}

func goalFor(s summary, metric string) (goal, bool) {
	if s.system != sysDurable {
		return goal{}, false
	}
	switch {
	case s.n == 10_000 && metric == "wall":
		return goal{limit: 5}, true
	case s.n == 1_000 && metric == "wall":
		return goal{limit: 2.5}, true
	case s.n == 10_000 && metric == "p99":
		return goal{limit: 20}, true
	case s.n == 10_000 && metric == "rss":
		return goal{limit: 100}, true
	case s.n == 10_000 && metric == "idle":
		return goal{limit: 0.1, strict: true}, true
	}
	return goal{}, false
}

func cell(s summary, metric string, v float64, format string) string {
	out := fmt.Sprintf(format, v)
	g, ok := goalFor(s, metric)
	if !ok {
		return out
	}
	pass := v <= g.limit
	op := "≤"
	if g.strict {
		pass, op = v < g.limit, "<"
	}
	mark := "✓"
	if !pass {
		mark = "✗"
	}
	return fmt.Sprintf("%s (goal %s %g %s)", out, op, g.limit, mark)
}

func printTable(w io.Writer, rows []Row) {
	sums := summarize(rows)
	fmt.Fprintln(w, "| system | N | runs | wall s | lateness p50 ms | lateness p99 ms | lateness max ms | input→resume p50 ms | input→resume p99 ms | peak RSS MB | idle CPU % of a core | written MB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range sums {
		idle := "—"
		if s.hasIdle {
			idle = cell(s, "idle", s.idle, "%.3f")
		} else if s.idleFailed {
			idle = "error"
		}
		rss := cell(s, "rss", s.rss, "%.1f")
		if len(s.rssBy) > 1 {
			var parts []string
			for _, p := range slices.Sorted(maps.Keys(s.rssBy)) {
				parts = append(parts, fmt.Sprintf("%s %.1f", p, s.rssBy[p]))
			}
			rss += " (" + strings.Join(parts, " + ") + ")"
		}
		runs := fmt.Sprint(s.runs)
		if s.failed > 0 {
			runs += fmt.Sprintf(" (%d failed)", s.failed)
		}
		if s.runs == 0 {
			fmt.Fprintf(w, "| %s | %d | %s | — | — | — | — | — | — | — | %s | — |\n", s.system, s.n, runs, idle)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.2f | %s | %.2f | %.2f | %.2f | %s | %s | %.1f |\n",
			s.system, s.n, runs, cell(s, "wall", s.wall, "%.3f"), s.p50, cell(s, "p99", s.p99, "%.2f"), s.mx,
			s.r50, s.r99, rss, idle, s.disk/1e6)
	}
	printRatios(w, sums)
	for _, s := range sums {
		for _, e := range dedupe(s.errs) {
			fmt.Fprintf(w, "\nerror %s N=%d: %s\n", s.system, s.n, e)
		}
	}
}

// printRatios prints peer/Infinity (durable) per metric.
func printRatios(w io.Writer, sums []summary) {
	base := map[int]summary{}
	for _, s := range sums {
		if s.system == sysDurable && s.runs > 0 {
			base[s.n] = s
		}
	}
	header := false
	for _, s := range sums {
		b, ok := base[s.n]
		if !ok || s.runs == 0 || strings.HasPrefix(s.system, "infinity-") {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nRatio peer / infinity-durable (higher is worse for the peer):")
			fmt.Fprintln(w, "\n| system | N | wall | lateness p50 | lateness p99 | lateness max | input→resume p50 | input→resume p99 | peak RSS | idle CPU | written |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
			header = true
		}
		idle := "—"
		if s.hasIdle && b.hasIdle {
			idle = ratio(s.idle, b.idle)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.system, s.n,
			ratio(s.wall, b.wall), ratio(s.p50, b.p50), ratio(s.p99, b.p99), ratio(s.mx, b.mx),
			ratio(s.r50, b.r50), ratio(s.r99, b.r99), ratio(s.rss, b.rss), idle, ratio(s.disk, b.disk))
	}
}

func ratio(peer, inf float64) string {
	if inf <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f×", peer/inf)
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
