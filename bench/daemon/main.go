// Command daemon benchmarks the daemon's stack: the disk store
// (persistence/disk), the durable local sender (mailbox/local with the
// store's inbox) and the actors runtime, on the real system clock.
//
// Run it from the module root:
//
//	go run ./bench/daemon                       # every row, default sizes
//	go run ./bench/daemon -threads 20000 -sleepers 5000 -persisted 5000
//	go run ./bench/daemon -only 2,3             # some rows
//	go run ./bench/daemon -json rows.json -charts DIR   # also the rows as JSON and SVG charts in DIR
//	go run ./bench/daemon -from rows.json -charts DIR   # table and charts of a saved -json file, no run
//
// Each row runs in a child process of its own (the program re-executes
// itself with -only=N), in a fresh temporary directory under -dir that is
// removed afterwards, so one row's heap never pollutes another's RSS.
// Progress goes to stderr; a markdown table goes to stdout.
//
// The rows:
//
//  1. RSS of N (-threads) passivated threads. The threads are written
//     straight into the disk store (CreateThread, then one Commit of a user
//     item and a sleep_until_event_or_input call per thread, from many
//     goroutines so group commit batches the fsyncs) with the sender and
//     runtime open on top; no model slice runs. RSS is VmRSS from
//     /proc/self/status after runtime.GC and debug.FreeOSMemory.
//  2. Timer lateness: S (-sleepers) threads started through the runtime;
//     the scripted model's first reply calls sleep, spread over a window
//     (-sleep-base, -sleep-spread). The sender and its Deliverer are
//     wrapped: Send remembers each timed message's due time, Deliver
//     records now - due.
//  3. Idle CPU: S threads that sleep one hour, all passivated; process CPU
//     (getrusage utime+stime) over a 10 s wall window, as % of one core.
//  4. Restart to ready: P (-persisted) threads and P armed timers (one
//     hour ahead) written into home/store; then daemon.Open until it
//     returns (restore, re-arm, listen) plus the first Status call through
//     daemon.Dial.
//  5. Durable slices/s: K (-slices-threads) threads each get M
//     (-slices-msgs) user messages, one round at a time, through the
//     runtime; the scripted model answers with text. fsyncs per slice come
//     from disk.Store.Stats (they include the inbox Put of each input).
//  6. History on disk: H (-history-threads) threads × I items of B bytes
//     written straight into the disk store; then, in a fresh process, the
//     daemon's restart to ready, its RSS at rest, and its RSS after A
//     threads each ran one slice through the API (history.go).
//  7. Row 6 at a tenth of the threads, to show the figures do not grow
//     with the store.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/disk"
)

var (
	flagThreads   = flag.Int("threads", 1_000_000, "row 1: passivated threads")
	flagCache     = flag.Int64("cache", 0, "the store's block cache in bytes (0: the store's default)")
	flagSlices    = flag.Int("max-slices", 0, "actors.Config.MaxConcurrentSlices (0: the runtime default, 256)")
	flagSleepers  = flag.Int("sleepers", 100_000, "rows 2 and 3: concurrent sleepers")
	flagPersisted = flag.Int("persisted", 100_000, "row 4: persisted threads (each with one armed timer)")
	flagSlicesK   = flag.Int("slices-threads", 2_000, "row 5: threads")
	flagSlicesM   = flag.Int("slices-msgs", 5, "row 5: user messages per thread")
	flagBase      = flag.Duration("sleep-base", 30*time.Second, "row 2: shortest sleep (long enough for every sleeper to have started)")
	flagSpread    = flag.Duration("sleep-spread", 10*time.Second, "row 2: wake times are spread over this window after -sleep-base")
	flagWorkers   = flag.Int("workers", 512, "goroutines that build threads (group commit batches their fsyncs)")
	flagOnly      = flag.String("only", "", "comma list of rows to run (default all: 2,3,4,5,1)")
	flagDir       = flag.String("dir", os.TempDir(), "root for the rows' temporary directories")
	flagChild     = flag.Bool("child", false, "internal: run one row in this process and print it as JSON")
	flagProfile   = flag.String("cpuprofile", "", "rows 2, 3 and 5: write a CPU profile of the wake-up window (row 2), the idle window (row 3) or the slices (row 5) to this file")
	flagMemProf   = flag.String("memprofile", "", "row 2: write a heap profile (after a GC) to this file just before the first wake-up, and another to this file + \".after\" once every sleeper woke")
	flagTrace     = flag.String("trace", "", "row 2: write an execution trace (runtime/trace) of the wake-up window (-trace-for long) to this file")
	flagTraceFor  = flag.Duration("trace-for", 3*time.Second, "row 2: how long -trace records, from 0.5 s before the first due time")
	flagJSON      = flag.String("json", "", "write every row as a JSON line to this file")
	flagCharts    = flag.String("charts", "", "write SVG charts of the rows (wall.svg, throughput.svg, lateness.svg, rss.svg) into this directory; empty: no charts")
	flagFrom      = flag.String("from", "", "do not run: read the rows from this -json file, print their table and write -charts")
)

// Row is one line of the table.
type Row struct {
	N     int    `json:"n"`
	Name  string `json:"name"`
	Value string `json:"value"`
	Goal  string `json:"goal"`
	Pass  bool   `json:"pass"`
	Notes string `json:"notes"`
	Err   string `json:"err,omitempty"`
	// Metrics are the row's figures as numbers, for the charts (keys in
	// charts.go).
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// metric records one of the row's figures for the charts.
func (r *Row) metric(key string, v float64) {
	if r.Metrics == nil {
		r.Metrics = map[string]float64{}
	}
	r.Metrics[key] = v
}

var discard = slog.New(slog.DiscardHandler)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func main() {
	flag.Parse()
	procs := actors.RaiseProcs() // as the infinity daemon command does
	if *flagMeasureHome != "" {
		if err := measureHistory(*flagMeasureHome); err != nil {
			fmt.Fprintln(os.Stderr, "measure:", err)
			os.Exit(1)
		}
		return
	}
	if *flagFrom != "" {
		results, err := readRows(*flagFrom)
		if err == nil {
			fmt.Printf("Rows from %s.\n\n", *flagFrom)
			printTable(os.Stdout, results)
			err = writeOutputs(results)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	rows := []int{2, 3, 4, 5, 7, 6, 1} // row 1 last: it is the biggest
	if *flagOnly != "" {
		rows = nil
		for _, s := range strings.Split(*flagOnly, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > 7 {
				fmt.Fprintf(os.Stderr, "-only: %q is not a row number 1-7\n", s)
				os.Exit(2)
			}
			rows = append(rows, n)
		}
	}
	if *flagChild {
		if len(rows) != 1 {
			fmt.Fprintln(os.Stderr, "-child needs exactly one row in -only")
			os.Exit(2)
		}
		r := runRow(rows[0])
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	var results []Row
	for _, n := range rows {
		results = append(results, runChild(n))
	}
	slices.SortFunc(results, func(a, b Row) int { return a.N - b.N })
	fmt.Printf("Machine: %d cores; GOMAXPROCS %d (actors.RaiseProcs, as the daemon runs).\n\n", runtime.NumCPU(), procs)
	printTable(os.Stdout, results)
	if err := writeOutputs(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// runChild runs one row in a fresh process of this program.
func runChild(n int) Row {
	args := []string{"-child", "-only", strconv.Itoa(n)}
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "only" && f.Name != "child" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	logf("row %d: starting child %s %s", n, os.Args[0], strings.Join(args, " "))
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var r Row
	if jerr := json.Unmarshal(bytes.TrimSpace(lastLine(out.Bytes())), &r); jerr != nil {
		msg := fmt.Sprintf("child failed: %v", err)
		if err == nil {
			msg = fmt.Sprintf("child printed no result: %v", jerr)
		}
		return Row{N: n, Name: rowNames[n], Err: msg}
	}
	return r
}

func lastLine(b []byte) []byte {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			last = append(last[:0], sc.Bytes()...)
		}
	}
	return last
}

var rowNames = map[int]string{
	1: "RSS, passivated threads (built through the stores, no model slice)",
	2: "Timer lateness, concurrent sleepers",
	3: "Idle CPU, sleepers armed (1 h), threads passivated",
	4: "Restart to ready (daemon.Open + first Status)",
	5: "Durable slices/s, disk store",
	6: "History on disk: restart and RSS (about 2 GB of text)",
	7: "History on disk: restart and RSS (a tenth of row 6)",
}

func printTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| # | row | measured | goal | result | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		res := "miss"
		if r.Pass {
			res = "pass"
		}
		if r.Err != "" {
			res, r.Value = "error", "—"
			r.Notes = strings.TrimSpace(r.Err + "; " + r.Notes)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", r.N, r.Name, r.Value, r.Goal, res,
			strings.ReplaceAll(r.Notes, "|", "/"))
	}
}

func runRow(n int) (r Row) {
	r = Row{N: n, Name: rowNames[n]}
	dir, err := os.MkdirTemp(*flagDir, fmt.Sprintf("infinity-bench-row%d-", n))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	defer func() {
		if p := recover(); p != nil {
			r.Err = fmt.Sprint("panic: ", p)
		}
	}()
	switch n {
	case 1:
		err = rowRSS(dir, &r)
	case 2:
		err = rowLateness(dir, &r)
	case 3:
		err = rowIdleCPU(dir, &r)
	case 4:
		err = rowRestart(dir, &r)
	case 5:
		err = rowSlices(dir, &r)
	case 6:
		err = rowHistory(dir, &r, *flagHistThreads)
	case 7:
		err = rowHistory(dir, &r, max(*flagHistThreads/10, 1))
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// ---- shared helpers ----

// stack is the daemon's stack without the HTTP API: the disk store, the
// durable local sender and the actors runtime.
type stack struct {
	store  *disk.Store
	sender *local.Sender
	rt     *actors.Runtime
}

func openStack(dir string, model infinity.ModelProvider, wrap func(actors.Deliverer) actors.Deliverer,
	wrapSender func(*local.Sender) infinity.InputSender, obs func(actors.Event)) (*stack, error) {
	opts := []disk.Option{disk.WithLogger(discard)}
	if *flagCache > 0 {
		opts = append(opts, disk.WithCacheSize(*flagCache))
	}
	store, err := disk.Open(filepath.Join(dir, "store"), opts...)
	if err != nil {
		return nil, err
	}
	s := &stack{store: store}
	s.rt, err = actors.New(actors.Config{
		Conversations: store.Conversations(),
		State:         store.State(),
		Model:         model,
		Sender: func(d actors.Deliverer) infinity.InputSender {
			if wrap != nil {
				d = wrap(d)
			}
			s.sender = local.New(d, local.WithInbox(store.Inbox()), local.WithLogger(discard))
			if wrapSender != nil {
				return wrapSender(s.sender)
			}
			return s.sender
		},
		Host:                protohost.New,
		Agents:              []actors.Agent{{Name: "bench"}},
		MaxConcurrentSlices: *flagSlices,
		Logger:              discard,
		Observer:            obs,
		AppliedOnly:         true, // as daemon.Open sets it
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	if _, err := s.sender.Restore(context.Background()); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *stack) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rerr := s.rt.Close(ctx)
	serr := s.store.Close()
	if rerr != nil {
		return rerr
	}
	return serr
}

// parallel runs f(i) for i in [0,n) on w goroutines and returns the first
// error.
func parallel(n, w int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range min(w, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// progress logs i of n every step.
func progress(what string, i, n, step int, start time.Time) {
	if i > 0 && i%step == 0 {
		el := time.Since(start)
		logf("  %s: %d/%d (%.0f/s)", what, i, n, float64(i)/el.Seconds())
	}
}

// writeThread creates a passivated thread straight in the stores: a user
// item and an open sleep_until_event_or_input call (what a waiting thread
// holds after its first slice). It returns the call id.
func writeThread(ctx context.Context, conv infinity.ConversationStore, id infinity.ThreadID, agent string, now time.Time) (string, error) {
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Agent: agent, Created: now}); err != nil {
		return "", err
	}
	msg := infinity.MessageID("m" + string(id))
	call := "c" + string(id)
	_, err := conv.Commit(ctx, infinity.Commit{
		Thread: id, Expected: 0,
		Items: []infinity.Item{
			{ID: string(msg), Kind: infinity.KindUser, Text: "wait for me", At: now},
			{ID: call, Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: call, Name: "sleep_until_event_or_input", Args: json.RawMessage(`{}`)}, At: now},
		},
		Applied: []infinity.MessageID{msg},
	})
	return call, err
}

func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

func settledRSS() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	return vmRSS()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func bucket(id infinity.ThreadID, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d)-1) * p)
	return d[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// waitPassive waits until every actor has passivated.
func waitPassive(ctx context.Context, rt *actors.Runtime) error {
	if err := rt.WaitIdle(ctx); err != nil {
		return err
	}
	for rt.Active() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d actors still active: %w", rt.Active(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// ---- row 1: RSS ----

func rowRSS(dir string, r *Row) error {
	n := *flagThreads
	r.Name = fmt.Sprintf("RSS, %d passivated threads (written through the stores: CreateThread + 1 Commit of 2 items each; no model slice)", n)
	r.Goal = "≤ 1 GiB"
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{Reply: scripted.Reply{Text: "ok"}}}})
	if err != nil {
		return err
	}
	base, _ := settledRSS()
	s, err := openStack(dir, model, nil, nil, nil)
	if err != nil {
		return err
	}
	defer s.close()
	ctx := context.Background()
	conv := s.store.Conversations()
	now := time.Now()
	start := time.Now()
	st0 := s.store.Stats()
	logf("row 1: building %d threads with %d workers", n, *flagWorkers)
	var done atomic.Int64
	err = parallel(n, *flagWorkers, func(int) error {
		_, err := writeThread(ctx, conv, infinity.NewThreadID(), "bench", now)
		progress("row 1 threads", int(done.Add(1)), n, 100_000, start)
		return err
	})
	if err != nil {
		return err
	}
	build := time.Since(start)
	st := s.store.Stats()
	logf("row 1: built in %s; %d records, %d fsyncs", build.Round(time.Millisecond), st.Records-st0.Records, st.Fsyncs-st0.Fsyncs)
	if err := waitPassive(ctx, s.rt); err != nil {
		return err
	}
	// Measure at rest: Flush writes the memtables to tables, as a
	// long-running daemon's store has done.
	cstart := time.Now()
	if err := s.store.Flush(); err != nil {
		return err
	}
	compact := time.Since(cstart)
	rss, err := settledRSS()
	if err != nil {
		return err
	}
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	r.Value = fmt.Sprintf("%s (%.0f B/thread)", mib(rss), float64(rss)/float64(n))
	r.metric(mThreads, float64(n))
	r.metric(mRSS, float64(rss)/(1<<20))
	r.Pass = rss <= 1<<30
	r.Notes = fmt.Sprintf("measured after a compaction (%s); build %s (%.0f threads/s, %d workers, %.1f records/fsync); heap in use %s; RSS of the empty stack %s; active actors %d, goroutines %d",
		compact.Round(time.Millisecond), build.Round(time.Millisecond), float64(n)/build.Seconds(), *flagWorkers,
		float64(st.Records-st0.Records)/float64(max(st.Fsyncs-st0.Fsyncs, 1)), mib(int64(mem.HeapInuse)), mib(base), s.rt.Active(), runtime.NumGoroutine())
	logf("row 1: %s", r.Value)
	return nil
}

// ---- rows 2 and 3: sleepers ----

// latencySender remembers the due time of every timed message it sends.
type latencySender struct {
	inner *local.Sender
	due   *sync.Map // infinity.MessageID -> time.Time
	timed *atomic.Int64
}

func (s latencySender) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	if !at.IsZero() {
		s.due.Store(msg.ID, at)
	}
	err := s.inner.Send(ctx, msg, at)
	if err == nil && !at.IsZero() {
		s.timed.Add(1)
	}
	return err
}

// Close lets the runtime close the wrapped sender.
func (s latencySender) Close() { s.inner.Close() }

// Poll lets the runtime drive the wrapped sender's timers, as it drives
// the daemon's (actors.Poller).
func (s latencySender) Poll() { s.inner.Poll() }

// latencyDeliverer records when each message was delivered; the row
// joins these with the due times afterwards, so that the measurement adds
// only a slice append (no lookup in a map of every pending timer) to the
// sender's timer goroutine, which delivers the due messages one after the
// other.
type latencyDeliverer struct {
	inner actors.Deliverer
	mu    *sync.Mutex
	got   *[]delivery
	due   *sync.Map // for -trace: a late delivery is logged into the trace
}

// delivery is one Deliver call: the message and when it came.
type delivery struct {
	id   infinity.MessageID
	at   time.Time
	took time.Duration // the runtime's Deliver (the tick's next delivery waits for it)
}

func (d latencyDeliverer) Deliver(msg infinity.InputMessage) error {
	now := time.Now()
	err := d.inner.Deliver(msg)
	took := time.Since(now)
	if trace.IsEnabled() {
		if v, ok := d.due.Load(msg.ID); ok {
			if late := now.Sub(v.(time.Time)); late > 5*time.Millisecond {
				trace.Log(context.Background(), "late", strconv.FormatInt(int64(late), 10))
			}
		}
	}
	d.mu.Lock()
	*d.got = append(*d.got, delivery{msg.ID, now, took})
	d.mu.Unlock()
	return err
}

// sleeperModel answers a thread's first message with a sleep of
// base + spread*k/buckets seconds (k from a hash of the thread id) and the
// wake-up with text.
func sleeperModel(base, spread time.Duration) (*scripted.Provider, error) {
	const buckets = 100
	rules := []scripted.Rule{{Name: "woke", When: scripted.Match{Last: "tool_result"}, Reply: scripted.Reply{Text: "awake"}}}
	for k := range buckets {
		secs := (base + spread*time.Duration(k)/buckets).Seconds()
		rules = append(rules, scripted.Rule{
			Name:  fmt.Sprintf("sleep%d", k),
			If:    func(req infinity.CompletionRequest) bool { return bucket(req.Thread, buckets) == k },
			Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "sleep", Args: json.RawMessage(fmt.Sprintf(`{"seconds":%g}`, secs))}}},
		})
	}
	return scripted.New(scripted.Script{Rules: rules})
}

type sleepers struct {
	*stack
	first time.Time // the earliest due time, set by openSleepers
	due   sync.Map
	mu    sync.Mutex
	got   []delivery // every Deliver call, in order
	woken atomic.Int64
	// timed counts timed messages sent (timers armed), also those that
	// fired already: a start still running at the first due time must
	// not wait for Pending() to reach n.
	timed atomic.Int64
}

func openSleepers(dir string, base, spread time.Duration) (*sleepers, error) {
	model, err := sleeperModel(base, spread)
	if err != nil {
		return nil, err
	}
	sl := &sleepers{first: time.Now().Add(base)}
	sl.stack, err = openStack(dir, model,
		func(d actors.Deliverer) actors.Deliverer {
			return latencyDeliverer{inner: d, mu: &sl.mu, got: &sl.got, due: &sl.due}
		},
		func(s *local.Sender) infinity.InputSender {
			return latencySender{inner: s, due: &sl.due, timed: &sl.timed}
		},
		func(ev actors.Event) {
			if ev.Kind == actors.EventItem && ev.Item.Kind == infinity.KindAssistant && ev.Item.Text == "awake" {
				sl.woken.Add(1)
			}
		})
	return sl, err
}

// start starts n threads through the runtime and waits until each has run
// its first slice (and armed its timer).
func (sl *sleepers) start(ctx context.Context, n int, row int) (time.Duration, error) {
	t0 := time.Now()
	var done atomic.Int64
	err := parallel(n, *flagWorkers, func(i int) error {
		_, err := sl.rt.Start(ctx, actors.StartOptions{Text: "sleep, please"})
		progress(fmt.Sprintf("row %d starts", row), int(done.Add(1)), n, 20_000, t0)
		return err
	})
	if err != nil {
		return 0, err
	}
	for {
		armed := int(sl.timed.Load())
		if armed >= n {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			return 0, fmt.Errorf("only %d of %d timers armed after 10 min", armed, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0), nil
}

func rowLateness(dir string, r *Row) error {
	n := *flagSleepers
	base, spread := *flagBase, *flagSpread
	r.Name = fmt.Sprintf("Timer lateness p50/p99, %d concurrent sleepers (sleep %s–%s, system clock, disk store + durable local sender)", n, base, base+spread)
	r.Goal = "p99 ≤ 5 ms"
	sl, err := openSleepers(dir, base, spread)
	if err != nil {
		return err
	}
	defer sl.close()
	// Room for every start and wake-up delivery, so that the recording
	// never copies a large slice on the timer goroutine.
	sl.mu.Lock()
	sl.got = make([]delivery, 0, 2*n+1024)
	sl.mu.Unlock()
	ctx := context.Background()
	logf("row 2: starting %d sleepers", n)
	startDur, err := sl.start(ctx, n, 2)
	if err != nil {
		return err
	}
	logf("row 2: all %d started and armed in %s; waiting for wake-ups", n, startDur.Round(time.Millisecond))
	if err := profileWakeups(time.Until(sl.first.Add(-500 * time.Millisecond))); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	deadline := time.Now().Add(base + spread + 2*time.Minute)
	for {
		got := int(sl.woken.Load())
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d sleepers woke", got, n)
		}
		time.Sleep(time.Second)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := sl.rt.WaitIdle(wctx); err != nil {
		return err
	}
	runtime.ReadMemStats(&ms1)
	if err := writeHeapProfile(*flagMemProf, ".after", false); err != nil {
		return err
	}
	// The first delivery of each timed message counts (as before, when
	// the deliverer looked the due time up and deleted it).
	sl.mu.Lock()
	got := slices.Clone(sl.got)
	sl.mu.Unlock()
	var late, took []time.Duration
	bySec := map[int][]time.Duration{}
	for _, d := range got {
		if v, ok := sl.due.LoadAndDelete(d.id); ok {
			late = append(late, d.at.Sub(v.(time.Time)))
			took = append(took, d.took)
			sec := int(v.(time.Time).Sub(sl.first) / time.Second)
			bySec[sec] = append(bySec[sec], d.at.Sub(v.(time.Time)))
		}
	}
	slices.Sort(took)
	for sec := range 60 {
		if l := bySec[sec]; len(l) > 0 {
			slices.Sort(l)
			logf("row 2: due in second %d: %d timers, p50 %s p99 %s max %s", sec, len(l), ms(percentile(l, 0.5)), ms(percentile(l, 0.99)), ms(l[len(l)-1]))
		}
	}
	if len(late) < n {
		return fmt.Errorf("only %d of %d timers delivered", len(late), n)
	}
	slices.Sort(late)
	p50, p99, mx := percentile(late, 0.50), percentile(late, 0.99), late[len(late)-1]
	r.Value = fmt.Sprintf("p50 %s, p99 %s", ms(p50), ms(p99))
	r.metric(mThreads, float64(n))
	for _, q := range lateQuantiles {
		d := mx
		if q.q < 1 {
			d = percentile(late, q.q)
		}
		r.metric(q.key, float64(d)/float64(time.Millisecond))
	}
	r.Pass = p99 <= 5*time.Millisecond
	r.Notes = fmt.Sprintf("%d timers; p99.9 %s, max %s, min %s; the runtime's Deliver took p99 %s, max %s; starting all took %s (before the first due time: %v); %d threads woke and answered; during the wake-ups %d GC cycles, %.1f KiB allocated per wake-up, heap %s after",
		len(late), ms(percentile(late, 0.999)), ms(mx), ms(late[0]), ms(percentile(took, 0.99)), ms(took[len(took)-1]), startDur.Round(time.Millisecond), startDur < base, sl.woken.Load(),
		ms1.NumGC-ms0.NumGC, float64(ms1.TotalAlloc-ms0.TotalAlloc)/1024/float64(n), mib(int64(ms1.HeapAlloc)))
	logf("row 2: %s (%s)", r.Value, r.Notes)
	return nil
}

// profileWakeups waits for wait and starts the CPU profile (-cpuprofile)
// and an execution trace (-trace, -trace-for long) of the wake-up window,
// after a heap profile (-memprofile); the caller
// stops the CPU profile.
func profileWakeups(wait time.Duration) error {
	if *flagProfile == "" && *flagTrace == "" && *flagMemProf == "" {
		return nil
	}
	time.Sleep(max(wait, 0))
	if err := writeHeapProfile(*flagMemProf, "", true); err != nil {
		return err
	}
	if *flagProfile != "" {
		if err := startCPUProfile(*flagProfile); err != nil {
			return err
		}
	}
	if *flagTrace != "" {
		f, err := os.Create(*flagTrace)
		if err != nil {
			return err
		}
		if err := trace.Start(f); err != nil {
			return err
		}
		time.AfterFunc(*flagTraceFor, func() { trace.Stop(); f.Close() })
	}
	return nil
}

// startCPUProfile starts a CPU profile into path (pprof.StopCPUProfile
// ends it; the file is closed with the process).
func startCPUProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f)
}

// writeHeapProfile writes the heap profile to path+suffix (nothing when
// path is empty), after a collection when gc is set. Row 2 writes one
// before the wake-ups (after a GC: what the sleepers hold) and one after
// (".after", no GC: compare the two with pprof -diff_base and
// -sample_index=alloc_space for what the wake-ups allocated).
func writeHeapProfile(path, suffix string, gc bool) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		return err
	}
	if gc {
		runtime.GC()
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func rowIdleCPU(dir string, r *Row) error {
	n := *flagSleepers
	const window = 10 * time.Second
	r.Name = fmt.Sprintf("Idle CPU over %s, %d sleepers armed (1 h), threads passivated", window, n)
	r.Goal = "< 0.5% of one core"
	sl, err := openSleepers(dir, time.Hour, 0)
	if err != nil {
		return err
	}
	defer sl.close()
	ctx := context.Background()
	logf("row 3: starting %d sleepers (1 h)", n)
	startDur, err := sl.start(ctx, n, 3)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := waitPassive(wctx, sl.rt); err != nil {
		return err
	}
	// Return the start phase's garbage to the OS first: otherwise the Go
	// scavenger does it in the background during the window (measured:
	// ~2-3% of a core with 100,000 sleepers), which is a transient, not
	// idle cost.
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(time.Second)
	logf("row 3: %d armed, %d active; measuring %s", sl.sender.Pending(), sl.rt.Active(), window)
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(window)
	c1, t1 := cpuTime(), time.Now()
	pct := 100 * float64(c1-c0) / float64(t1.Sub(t0))
	r.Value = fmt.Sprintf("%.3f%% (%s CPU in %s)", pct, (c1 - c0).Round(time.Microsecond), t1.Sub(t0).Round(time.Millisecond))
	r.Pass = pct < 0.5
	r.metric(mThreads, float64(n))
	r.metric(mIdle, pct)
	r.Notes = fmt.Sprintf("measured after runtime.GC + debug.FreeOSMemory + 1 s; %d timers armed, %d active actors, %d goroutines; starting took %s", sl.sender.Pending(), sl.rt.Active(), runtime.NumGoroutine(), startDur.Round(time.Millisecond))
	logf("row 3: %s", r.Value)
	return nil
}

// ---- row 4: restart ----

func rowRestart(dir string, r *Row) error {
	n := *flagPersisted
	r.Name = fmt.Sprintf("Restart to ready, %d persisted threads + %d armed timers (daemon.Open + first Status via daemon.Dial)", n, n)
	r.Goal = "≤ 2 s"
	home := filepath.Join(dir, "home")
	ctx := context.Background()
	store, err := disk.Open(filepath.Join(home, "store"), disk.WithLogger(discard))
	if err != nil {
		return err
	}
	logf("row 4: writing %d threads and timers", n)
	now := time.Now()
	at := now.Add(time.Hour)
	t0 := time.Now()
	var done atomic.Int64
	err = parallel(n, *flagWorkers, func(int) error {
		id := infinity.NewThreadID()
		call, err := writeThread(ctx, store.Conversations(), id, "demo", now)
		if err != nil {
			return err
		}
		msg := infinity.InputMessage{ID: infinity.MessageID(infinity.DeriveID("wake_", string(id), call)), GroupID: id,
			Content: infinity.ResultContent(call, "Slept for 3600 seconds.")}
		if _, err := store.Inbox().Put(ctx, msg, at); err != nil {
			return err
		}
		progress("row 4 threads", int(done.Add(1)), n, 20_000, t0)
		return nil
	})
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	size := dirSize(filepath.Join(home, "store"))
	logf("row 4: written in %s (store %s); restarting", time.Since(t0).Round(time.Millisecond), mib(size))
	runtime.GC()

	// The same replay alone, for the breakdown.
	t := time.Now()
	st, err := disk.Open(filepath.Join(home, "store"), disk.WithLogger(discard))
	if err != nil {
		return err
	}
	replay := time.Since(t)
	st.Close()
	st = nil
	runtime.GC()

	start := time.Now()
	d, err := daemon.Open(ctx, daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: discard, Version: "bench"})
	if err != nil {
		return err
	}
	opened := time.Since(start)
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- d.Serve(sctx) }()
	c, _, err := daemon.Dial(home)
	if err != nil {
		stop()
		<-served
		return err
	}
	sv, err := c.Status(ctx)
	ready := time.Since(start)
	stop()
	if serr := <-served; err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if sv.Threads != n || sv.Waiting != n {
		return fmt.Errorf("status after restart: %d threads, %d waiting; want %d and %d", sv.Threads, sv.Waiting, n, n)
	}
	r.Value = fmt.Sprintf("%.3f s", ready.Seconds())
	r.metric(mThreads, float64(n))
	r.metric(mReady, ready.Seconds())
	r.metric(mOpen, opened.Seconds())
	r.Pass = ready <= 2*time.Second
	r.Notes = fmt.Sprintf("daemon.Open %.3f s (of which a bare disk.Open takes ≈%.3f s), first Status %.3f s; store %s on disk; status saw %d threads, %d waiting, %d active",
		opened.Seconds(), replay.Seconds(), (ready - opened).Seconds(), mib(size), sv.Threads, sv.Waiting, sv.Active)
	logf("row 4: %s (%s)", r.Value, r.Notes)
	return nil
}

// ---- row 5: slices/s ----

func rowSlices(dir string, r *Row) error {
	k, m := *flagSlicesK, *flagSlicesM
	r.Name = fmt.Sprintf("Durable slices/s, disk store: %d threads × %d user messages (scripted text reply)", k, m)
	r.Goal = "≤ 1 fsync per slice"
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{Reply: scripted.Reply{Text: "ok"}}}})
	if err != nil {
		return err
	}
	var slicesDone atomic.Int64
	s, err := openStack(dir, model, nil, nil, func(ev actors.Event) {
		if ev.Kind == actors.EventItem && ev.Item.Kind == infinity.KindAssistant {
			slicesDone.Add(1)
		}
	})
	if err != nil {
		return err
	}
	defer s.close()
	ctx := context.Background()
	st0 := s.store.Stats()
	t0 := time.Now()
	ids := make([]infinity.ThreadID, k)
	logf("row 5: %d threads × %d messages", k, m)
	if *flagProfile != "" {
		if err := startCPUProfile(*flagProfile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := parallel(k, *flagWorkers, func(i int) error {
		id, err := s.rt.Start(ctx, actors.StartOptions{Text: "hello 0"})
		ids[i] = id
		return err
	}); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := s.rt.WaitIdle(wctx); err != nil {
		return err
	}
	for round := 1; round < m; round++ {
		text := fmt.Sprintf("hello %d", round)
		if err := parallel(k, *flagWorkers, func(i int) error {
			_, err := s.rt.Send(ctx, ids[i], text)
			return err
		}); err != nil {
			return err
		}
		if err := s.rt.WaitIdle(wctx); err != nil {
			return err
		}
		logf("  row 5: round %d/%d done, %d slices", round+1, m, slicesDone.Load())
	}
	el := time.Since(t0)
	st := s.store.Stats()
	sl := slicesDone.Load()
	fs := st.Fsyncs - st0.Fsyncs
	perSlice := float64(fs) / float64(max(sl, 1))
	r.Value = fmt.Sprintf("%.0f slices/s; %.3f fsyncs/slice", float64(sl)/el.Seconds(), perSlice)
	r.metric(mThreads, float64(k))
	r.metric(mSlices, float64(sl))
	r.metric(mSlicesPerS, float64(sl)/el.Seconds())
	r.metric(mFsyncsPerSlice, perSlice)
	r.Goal = "≥ 25000 slices/s; ≤ 1 fsync per slice"
	r.Pass = perSlice <= 1 && float64(sl)/el.Seconds() >= 25000
	r.Notes = fmt.Sprintf("%d slices in %s; %d fsyncs, %d durable batches (%.1f batches/fsync, %.1f batches/slice), %s of write-ahead log written; fsyncs include the inbox Put of every input (CreateThread and Send)",
		sl, el.Round(time.Millisecond), fs, st.Records-st0.Records, float64(st.Records-st0.Records)/float64(max(fs, 1)),
		float64(st.Records-st0.Records)/float64(max(sl, 1)), mib(st.Bytes-st0.Bytes))
	if want := int64(k * m); sl != want {
		r.Notes += fmt.Sprintf("; %d slices for %d messages", sl, want)
	}
	logf("row 5: %s (%s)", r.Value, r.Notes)
	return nil
}
