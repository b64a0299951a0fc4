// Command sleepsignal is Infinity's side of the sleep-and-signal benchmark
// (issue 7): N agent threads each sleep a random 1–2 s on a durable timer,
// then wait for one external input and answer it.
//
//	go run ./bench/sleepsignal                      # N=1000,10000, 3 runs, durable + memory + idle CPU
//	go run ./bench/sleepsignal -n 1000 -runs 1 -idle=false
//	go run ./bench/sleepsignal -peers bench/peers   # also the peers' rows
//	go run ./bench/sleepsignal -json rows.json -charts DIR   # also DIR/wall.svg, lateness.svg, rss.svg, idle.svg
//	go run ./bench/sleepsignal -from rows.json -charts DIR   # table and charts of a saved -json file, no run
//
// Every run of every configuration runs in a child process of its own (the
// program re-executes itself with -child), so peak RSS is per run. The
// table goes to stdout, progress to stderr. See README.md for the metrics.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity/actors"
)

var (
	flagN        = flag.String("n", "1000,10000", "comma list of entity counts")
	flagRuns     = flag.Int("runs", 3, "runs per configuration (medians are reported)")
	flagVariants = flag.String("variants", "durable,memory", "Infinity variants: durable (disk store + durable local sender), memory (memory stores, no inbox)")
	flagJSON     = flag.String("json", "", "write every row as a JSON line to this file")
	flagCSV      = flag.String("csv", "", "write every row to this CSV file")
	flagCharts   = flag.String("charts", "", "write SVG charts of the table (wall.svg, lateness.svg, rss.svg, idle.svg) into this directory; empty: no charts")
	flagFrom     = flag.String("from", "", "do not run: read the rows from this -json file, print their table and write -charts/-csv")
	flagOnly     = flag.String("only", "", "comma list of systems to run (infinity-durable, infinity-memory, goworkflows, temporal); default all selected by -variants and -systems")
	flagIdle     = flag.Bool("idle", true, "also run the idle-CPU configuration (one run per variant and N)")
	flagPeers    = flag.String("peers", "", "directory of the peers program (bench/peers); empty skips the peers")
	flagSystems  = flag.String("systems", "goworkflows,temporal", "peer systems to run with -peers")
	flagDir      = flag.String("dir", os.TempDir(), "parent of the runs' temporary directories")
	flagSleepMin = flag.Duration("sleep-min", time.Second, "shortest sleep")
	flagSleepMax = flag.Duration("sleep-max", 2*time.Second, "longest sleep")
	flagIdleTime = flag.Duration("idle-sleep", 20*time.Minute, "idle configuration: every entity's sleep")
	flagIdleWin  = flag.Duration("idle-window", 30*time.Second, "idle configuration: CPU sampling window")
	flagTimeout  = flag.Duration("timeout", 10*time.Minute, "give up on a run after this long")
	flagWorkers  = flag.Int("workers", 256, "goroutines that start threads and send inputs")
	flagChild    = flag.String("child", "", "internal: run one configuration (durable or memory) in this process and print its row")
	flagRun      = flag.Int("run", 1, "internal: the run number of -child")
	flagIdleRun  = flag.Bool("idle-run", false, "internal: -child runs the idle configuration")
	flagProfile  = flag.String("cpuprofile", "", "write a CPU profile of every run to FILE.<system>.<n>.<run|idle>")
	flagMemProf  = flag.String("memprofile", "", "write a heap profile (allocations and in use, at the end) of every run to FILE.<system>.<n>.<run|idle>")
)

func main() {
	flag.Parse()
	procs := actors.RaiseProcs() // Infinity's side runs as the daemon does
	ns, err := parseNs(*flagN)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *flagChild != "" {
		cfg := configFor(*flagChild == "durable", ns[0], *flagRun, *flagIdleRun)
		stop := startProfile(cfg)
		r := runConfig(cfg)
		stop()
		writeMemProfile(cfg)
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	if *flagFrom != "" {
		rows, err := readRows(*flagFrom)
		if err == nil {
			fmt.Printf("Rows from %s.\n\n", *flagFrom)
			printTable(os.Stdout, rows)
			err = writeOutputs(rows)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	load0 := loadAvg()
	var rows []Row
	for _, v := range split(*flagVariants) {
		if v != "durable" && v != "memory" {
			fmt.Fprintf(os.Stderr, "-variants: unknown variant %q\n", v)
			os.Exit(2)
		}
		if !selected("infinity-" + v) {
			continue
		}
		for _, n := range ns {
			for run := 1; run <= *flagRuns; run++ {
				rows = append(rows, runChild(v, n, run, false))
			}
			if *flagIdle {
				rows = append(rows, runChild(v, n, 1, true))
			}
		}
	}
	var notes []string
	if *flagPeers != "" {
		prow, note := runPeers(*flagPeers, split(*flagSystems), ns, *flagRuns, *flagIdle)
		rows = append(rows, prow...)
		notes = append(notes, note...)
	}
	fmt.Printf("Machine: %d cores; load average %s before, %s after; Infinity runs with GOMAXPROCS %d (actors.RaiseProcs, as the daemon does).\n\n", numCPU(), load0, loadAvg(), procs)
	printTable(os.Stdout, rows)
	for _, n := range notes {
		fmt.Println(n)
	}
	if err := writeOutputs(rows); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// writeOutputs writes the -json and -csv files and the -charts.
func writeOutputs(rows []Row) error {
	if err := writeFiles(rows); err != nil {
		return err
	}
	return writeCharts(*flagCharts, rows)
}

// startProfile starts the -cpuprofile of one child run; stop ends it.
func startProfile(cfg config) (stop func()) {
	if *flagProfile == "" {
		return func() {}
	}
	what := strconv.Itoa(cfg.run)
	if cfg.idle {
		what = "idle"
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d.%s", *flagProfile, cfg.system(), cfg.n, what))
	if err != nil {
		logf("cpuprofile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		logf("cpuprofile: %v", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// writeMemProfile writes the -memprofile of one child run.
func writeMemProfile(cfg config) {
	if *flagMemProf == "" {
		return
	}
	what := strconv.Itoa(cfg.run)
	if cfg.idle {
		what = "idle"
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d.%s", *flagMemProf, cfg.system(), cfg.n, what))
	if err != nil {
		logf("memprofile: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		logf("memprofile: %v", err)
	}
}

func configFor(durable bool, n, run int, idle bool) config {
	return config{durable: durable, n: n, run: run, dir: *flagDir, sleepMin: *flagSleepMin, sleepMax: *flagSleepMax,
		idle: idle, idleSleep: *flagIdleTime, idleWindow: *flagIdleWin, timeout: *flagTimeout, workers: *flagWorkers}
}

// runChild runs one configuration in a fresh process of this program.
func runChild(variant string, n, run int, idle bool) Row {
	sys := "infinity-" + variant
	args := []string{"-child", variant, "-n", strconv.Itoa(n), "-run", strconv.Itoa(run), "-idle-run=" + strconv.FormatBool(idle)}
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "child", "n", "run", "idle-run":
		default:
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	what := fmt.Sprintf("run %d", run)
	if idle {
		what = "idle"
	}
	logf("%s n=%d %s: starting child", sys, n, what)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var r Row
	if jerr := json.Unmarshal(lastLine(out.Bytes()), &r); jerr != nil {
		msg := fmt.Sprintf("child failed: %v", err)
		if err == nil {
			msg = fmt.Sprintf("child printed no row: %v", jerr)
		}
		return Row{System: sys, N: n, Run: run, Idle: idle, Error: msg}
	}
	return r
}

// lastLine is the last non-empty line of b.
func lastLine(b []byte) []byte {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			last = append(last[:0], l...)
		}
	}
	return last
}

func writeFiles(rows []Row) error {
	write := func(name string, f func(*os.File) error) error {
		if name == "" {
			return nil
		}
		out, err := os.Create(name)
		if err != nil {
			return err
		}
		if err := f(out); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	if err := write(*flagJSON, func(f *os.File) error { return writeJSON(f, rows) }); err != nil {
		return err
	}
	return write(*flagCSV, func(f *os.File) error { return writeCSV(f, rows) })
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseNs(s string) ([]int, error) {
	var ns []int
	for _, p := range split(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-n: %q is not a positive count", p)
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("-n: no counts")
	}
	return ns, nil
}

// selected says whether -only lets system run.
func selected(system string) bool {
	if *flagOnly == "" {
		return true
	}
	for _, s := range split(*flagOnly) {
		if s == system {
			return true
		}
	}
	return false
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
