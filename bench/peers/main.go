// Command peers runs the sleep-and-signal workload (issue 7) against
// go-workflows and Temporal and prints one JSON row per run.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func main() {
	cfg := defaultConfig()
	runs := flag.Int("runs", 1, "number of runs (each in a fresh child process)")
	asJSON := flag.Bool("json", false, "print one JSON object per run per line")
	child := flag.Bool("child", false, "internal: run once in this process")
	flag.StringVar(&cfg.system, "system", cfg.system, "goworkflows or temporal")
	flag.IntVar(&cfg.n, "n", cfg.n, "number of workflows")
	flag.IntVar(&cfg.run, "run", cfg.run, "internal: run number")
	flag.BoolVar(&cfg.idle, "idle", false, "idle configuration: sleep 20 min, measure CPU over 30 s")
	flag.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "per-run timeout")
	flag.StringVar(&cfg.temporalBin, "temporal-bin", "", "internal: path of the temporal CLI")
	flag.Parse()

	if *child {
		emit(runOnce(context.Background(), cfg), true)
		return
	}
	var setupErr error
	if cfg.system == "temporal" && cfg.temporalBin == "" {
		cfg.temporalBin, setupErr = ensureTemporal(context.Background())
		if setupErr != nil {
			logf("%v; skipping Temporal", setupErr)
		}
	}
	for r := 1; r <= *runs; r++ {
		cfg.run = r
		row := Row{System: cfg.system, N: cfg.n, Run: r, Idle: cfg.idle, PeakRSSMB: map[string]float64{}}
		if setupErr != nil {
			row.Error = setupErr.Error()
		} else {
			row = runChild(cfg)
		}
		logf("run %d: %s", r, summary(row))
		emit(row, *asJSON)
	}
}

// runChild runs one measurement in a fresh process so that peak RSS and
// CPU belong to that run alone.
func runChild(cfg config) Row {
	fail := Row{System: cfg.system, N: cfg.n, Run: cfg.run, Idle: cfg.idle, PeakRSSMB: map[string]float64{}}
	self, err := os.Executable()
	if err != nil {
		fail.Error = fmt.Sprintf("find executable: %v", err)
		return fail
	}
	args := []string{"-child", "-system", cfg.system, "-n", strconv.Itoa(cfg.n), "-run", strconv.Itoa(cfg.run),
		"-timeout", cfg.timeout.String(), "-temporal-bin", cfg.temporalBin}
	if cfg.idle {
		args = append(args, "-idle")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	runErr := cmd.Run()
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var row Row
		if json.Unmarshal(sc.Bytes(), &row) == nil && row.System != "" {
			return row
		}
	}
	fail.Error = fmt.Sprintf("child run produced no row: %v", runErr)
	return fail
}

func emit(row Row, asJSON bool) {
	if !asJSON {
		fmt.Println(summary(row))
		return
	}
	b, err := json.Marshal(row)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peers: marshal row: %v\n", err)
		return
	}
	fmt.Println(string(b))
}

func summary(r Row) string {
	if r.Error != "" {
		return fmt.Sprintf("%s n=%d run=%d error: %s", r.System, r.N, r.Run, r.Error)
	}
	if r.Idle {
		return fmt.Sprintf("%s n=%d run=%d idle: asleep after %.2fs, cpu %.3f%% of a core, rss %v MB, disk %d B",
			r.System, r.N, r.Run, r.WallS, r.IdleCPU, r.PeakRSSMB, r.DiskBytes)
	}
	return fmt.Sprintf("%s n=%d run=%d wall %.2fs late p50/p99/max %.1f/%.1f/%.1f ms resume p50/p99 %.1f/%.1f ms rss %v MB disk %d B",
		r.System, r.N, r.Run, r.WallS, r.LateP50, r.LateP99, r.LateMax, r.ResumeP50, r.ResumeP99, r.PeakRSSMB, r.DiskBytes)
}
