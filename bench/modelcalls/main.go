// Command modelcalls measures many threads waiting on a slow model at once,
// on the daemon's stack (embedded.Open: the disk store, the durable local
// sender, the actor host): N threads each make one model call to a local
// OpenAI-compatible server that answers after a delay (streamed), while
// unrelated threads sleep on durable timers due during the run.
//
// Run it from the module root:
//
//	go run ./bench/modelcalls                       # 10,000 calls of 2 s, 1,000 sleepers
//	go run ./bench/modelcalls -threads 2000 -max-calls 500
//
// The model server runs in a child process (this program with -serve), so
// the 2 × N connections are split between two processes' file limits. It
// counts the requests it has open at once and answers 429 to none. The
// runtime bounds model calls in flight with -max-calls
// (actors.Config.MaxConcurrentSlices workers stay at -workers). Progress
// goes to stderr; a markdown table goes to stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/openai"
	"github.com/infinity-runtime/infinity/models/scripted"
)

func main() {
	serve := flag.Bool("serve", false, "run the slow model server (the child process)")
	delay := flag.Duration("delay", 2*time.Second, "how long the model takes to answer")
	threads := flag.Int("threads", 10000, "threads that each make one model call")
	maxCalls := flag.Int("max-calls", 10000, "model calls in flight at most (actors.Config.MaxModelCalls)")
	workers := flag.Int("workers", 256, "the host's workers (actors.Config.MaxConcurrentSlices)")
	sleepers := flag.Int("sleepers", 1000, "unrelated threads sleeping on timers due during the run")
	starters := flag.Int("starters", 64, "goroutines starting the threads (their durable writes share fsyncs; more than about 128 only adds CPU contention: see the README)")
	rpm := flag.Int("rpm", 0, "a rate limit on the model (requests per minute; 0: none); the server then answers 429 beyond it (with two seconds of burst)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.BoolVar(&warmup, "warmup", false, "first run a wave of as many threads, not measured, as a daemon that has run a while has its memory already (fresh memory is what costs most on a small VM: see the README)")
	flag.BoolVar(&memStats, "memstats", false, "sample the Go heap and stacks in use during the run, and print their peak (each sample stops the world briefly)")
	flag.BoolVar(&netH2C, "nethttp-h2c", false, "with -h2c, serve the model with net/http's HTTP/2 server rather than the bench's own (which costs the shared cores less; see the README)")
	flag.BoolVar(&h2c, "h2c", true, "speak HTTP/2 without TLS between the runtime and the model server, as providers' APIs multiplex calls on HTTP/2 over TLS (-h2c=false: HTTP/1.1, a connection per call in flight)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/modelcalls:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench/modelcalls:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	if *serve {
		err = serveModel(*delay, *rpm)
	} else {
		err = run(*threads, *maxCalls, *workers, *sleepers, *starters, *rpm, *delay, *cpuProfile)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench/modelcalls:", err)
		os.Exit(1)
	}
}

// h2c, netH2C, memStats and warmup are the -h2c, -nethttp-h2c, -memstats
// and -warmup flags.
var h2c, netH2C, memStats, warmup bool

// serveModel answers /v1/chat/completions after delay with a streamed
// reply, prints its address, and serves /stats (peak open requests,
// requests, 429s) until stdin closes.
func serveModel(delay time.Duration, rpm int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var open, peak, total, throttled atomic.Int64
	var (
		bucketMu sync.Mutex
		bucket   = float64(rpm) / 30 // two seconds' worth
		filled   = time.Now()
		first    time.Time
		last     time.Time
	)
	// The reply's events, encoded once: the first is flushed on its own,
	// the rest follow in one write, so the answer streams without the
	// server spending a write per event (its CPU is the runtime's too: the
	// two share the machine's cores).
	firstEvent := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"slow","choices":[` + choice(`{"role":"assistant","content":"Done."}`, "null") + `],"usage":null}` + "\n\n")
	rest := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"slow","choices":[` + choice(`{}`, `"stop"`) + `],"usage":null}` + "\n\n" +
		`data: {"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"slow","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}}` + "\n\n" +
		"data: [DONE]\n\n")
	admit := func() bool {
		bucketMu.Lock()
		defer bucketMu.Unlock()
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		last = now
		if rpm == 0 {
			return true
		}
		bucket = min(float64(rpm)/30, bucket+now.Sub(filled).Minutes()*float64(rpm))
		filled = now
		if bucket < 1 {
			return false
		}
		bucket--
		return true
	}
	started := func() {
		n := open.Add(1)
		total.Add(1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
	}
	const throttledBody = `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded","param":null}}`
	complete := func(w http.ResponseWriter, r *http.Request) {
		if !admit() {
			throttled.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, throttledBody)
			return
		}
		started()
		defer open.Add(-1)
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(firstEvent)
		w.(http.Flusher).Flush()
		_, _ = w.Write(rest)
	}
	reset := func() {
		bucketMu.Lock()
		first, last = time.Time{}, time.Time{}
		bucketMu.Unlock()
		peak.Store(open.Load())
		total.Store(0)
		throttled.Store(0)
	}
	stats := func(w http.ResponseWriter) {
		bucketMu.Lock()
		span := last.Sub(first)
		bucketMu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]int64{"peak": peak.Load(), "total": total.Load(), "throttled": throttled.Load(), "span_ms": span.Milliseconds(), "cpu_ms": cpuTime().Milliseconds()})
	}
	// Two routes, matched by hand: a ServeMux's pattern matching was a
	// tenth of this server's CPU.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
			complete(w, r)
		case r.Method == http.MethodGet && r.URL.Path == "/stats":
			stats(w)
		case r.Method == http.MethodPost && r.URL.Path == "/reset":
			reset()
		default:
			http.NotFound(w, r)
		}
	})}
	modelAddr := ln.Addr().String()
	switch {
	case h2c && netH2C:
		// HTTP/2 without TLS, as a provider's API multiplexes calls on
		// HTTP/2 over TLS: a few connections carry every stream.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1000}
	case h2c:
		// The same protocol from h2Server, which costs the shared cores
		// far less; net/http serves only /stats, on a port of its own.
		mln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer mln.Close()
		modelAddr = mln.Addr().String()
		h2 := &h2Server{delay: delay, first: firstEvent, rest: rest, throttle: []byte(throttledBody),
			admit: func() bool {
				if admit() {
					return true
				}
				throttled.Add(1)
				return false
			},
			started: started,
			ended:   func() { open.Add(-1) },
		}
		go h2.serve(mln)
	}
	go srv.Serve(ln)
	fmt.Println(modelAddr, ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes it to stop this
	return srv.Close()
}

func choice(delta, finish string) string {
	return `{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}`
}

// serverStats reads the model server's counters.
func serverStats(addr string) (map[string]int64, error) {
	resp, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]int64
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func run(threads, maxCalls, workers, sleepers, starters, rpm int, delay time.Duration, cpuProfile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-serve", "-delay", delay.String(), "-rpm", strconv.Itoa(rpm), "-h2c=" + strconv.FormatBool(h2c), "-nethttp-h2c=" + strconv.FormatBool(netH2C)}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile+".server")
	}
	child := exec.Command(self, args...)
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the model server: %w", err)
	}
	addrs := strings.Fields(addr)
	if len(addrs) != 2 {
		return fmt.Errorf("the model server said %q, not its two addresses", addr)
	}
	addr, statsAddr := addrs[0], addrs[1]

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = threads, threads
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	model, err := openai.New(openai.Config{BaseURL: "http://" + addr + "/v1", APIKey: "bench",
		Models: []infinity.ModelInfo{{ID: "slow", ContextWindow: 100000, MaxOutput: 1024}}, HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1})
	if err != nil {
		return err
	}
	sleeperModel, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{Name: "woke", When: scripted.Match{Last: "tool_result"}, Reply: scripted.Reply{Text: "Woke."}},
		{Name: "sleep", When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "sleep", Args: json.RawMessage(`{"seconds": 3}`)}}}},
	}})
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "infinity-bench-modelcalls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var (
		mu   sync.Mutex
		late []time.Duration
	)
	callers := make(map[infinity.ThreadID]*wave, threads)
	var callersMu sync.RWMutex
	cfg := actors.Config{
		Agents: []actors.Agent{
			{Name: "caller", Provider: model, ProviderName: "openai", Model: "slow"},
			{Name: "sleeper", Provider: sleeperModel, ProviderName: "scripted"},
		},
		Model:               model,
		MaxModelCalls:       maxCalls,
		ModelLimits:         limits(rpm),
		MaxConcurrentSlices: workers,
		Logger:              slog.New(slog.DiscardHandler),
		Observer: func(ev actors.Event) {
			if ev.Kind != actors.EventItem || ev.Item.Kind != infinity.KindAssistant {
				return
			}
			callersMu.RLock()
			w := callers[ev.Thread]
			callersMu.RUnlock()
			if w != nil && w.answered.Add(1) == int64(w.n) {
				close(w.done)
			}
		},
	}
	ctx := context.Background()
	rt, err := embedded.Open(ctx, dir, embedded.Options{Config: cfg, Sender: []local.Option{local.WithLateness(func(d time.Duration) {
		mu.Lock()
		late = append(late, d)
		mu.Unlock()
	})}})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	// runWave starts n threads (ids prefix0, prefix1, …) that each call
	// the model and waits until every one is answered.
	runWave := func(prefix string, n int) (*wave, error) {
		w := &wave{n: n, done: make(chan struct{})}
		ids := make([]infinity.ThreadID, n)
		callersMu.Lock()
		for i := range ids {
			ids[i] = infinity.ThreadID(prefix + strconv.Itoa(i))
			callers[ids[i]] = w
		}
		callersMu.Unlock()
		cpu0 := cpuTime()
		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		errc := make(chan error, 1)
		for range starters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					if _, err := rt.Start(ctx, actors.StartOptions{Agent: "caller", Text: "Answer.", ID: ids[i]}); err != nil {
						select {
						case errc <- err:
						default:
						}
						return
					}
				}
			})
		}
		wg.Wait()
		w.started = time.Since(start)
		select {
		case err := <-errc:
			return nil, err
		default:
		}
		fmt.Fprintf(os.Stderr, "all started in %s\n", w.started.Round(time.Millisecond))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		timeout := time.After(10*delay + time.Minute)
		for {
			select {
			case <-w.done:
				w.wall, w.cpu = time.Since(start), cpuTime()-cpu0
				fmt.Fprintf(os.Stderr, "all %d answered in %s\n", n, w.wall.Round(time.Millisecond))
				if memStats {
					fmt.Fprintf(os.Stderr, "at the peak: stacks %d MB, heap %d MB\n", w.mem.StackInuse>>20, w.mem.HeapInuse>>20)
				}
				return w, nil
			case <-tick.C:
				hs, mc := rt.HostStats(), rt.ModelCalls()
				w.host.Queued = max(w.host.Queued, hs.Queued)
				w.host.Working = max(w.host.Working, hs.Working)
				w.host.Detached = max(w.host.Detached, hs.Detached)
				w.calls.InFlight = max(w.calls.InFlight, mc.InFlight)
				w.calls.Waiting = max(w.calls.Waiting, mc.Waiting)
				if memStats {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if ms.StackInuse+ms.HeapInuse > w.mem.StackInuse+w.mem.HeapInuse {
						w.mem = ms
					}
				}
			case <-timeout:
				return nil, fmt.Errorf("only %d of %d threads answered", w.answered.Load(), n)
			}
		}
	}
	if warmup {
		// A daemon that has run a while has its memory already: a first
		// wave, not measured, leaves this process in that state.
		fmt.Fprintf(os.Stderr, "warming up: %d threads that each call the model (not measured)\n", threads)
		if _, err := runWave("w", threads); err != nil {
			return err
		}
		if err := resetServer(statsAddr); err != nil {
			return err
		}
	}
	serverCPU0 := int64(0)
	if st, err := serverStats(statsAddr); err == nil {
		serverCPU0 = st["cpu_ms"]
	}
	fmt.Fprintf(os.Stderr, "starting %d sleepers (3 s timers)\n", sleepers)
	for i := range sleepers {
		if _, err := rt.Start(ctx, actors.StartOptions{Agent: "sleeper", Text: "Sleep.", ID: infinity.ThreadID("s" + strconv.Itoa(i))}); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "starting %d threads that each call the model (%s per answer)\n", threads, delay)
	w, err := runWave("c", threads)
	if err != nil {
		return err
	}
	// The sleepers' timers are due 3 s after they started.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(late)
		mu.Unlock()
		if n >= sleepers || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := serverStats(statsAddr)
	if err != nil {
		return err
	}
	mu.Lock()
	slices.Sort(late)
	pct := func(q float64) string {
		if len(late) == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f ms", float64(late[min(len(late)-1, int(q*float64(len(late))))])/1e6)
	}
	lat := fmt.Sprintf("p50 %s, p99 %s, max %s (%d timers)", pct(0.5), pct(0.99), pct(1), len(late))
	mu.Unlock()
	warm := ""
	if warmup {
		warm = fmt.Sprintf(" Measured after a first wave of %d such threads (-warmup).", threads)
	}
	fmt.Printf("\nMachine: %d cores. %d threads × 1 model call answering after %s; %d sleepers; MaxModelCalls %d, MaxConcurrentSlices %d.%s\n\n",
		runtime.NumCPU(), threads, delay, sleepers, maxCalls, workers, warm)
	fmt.Println("| what | measured |")
	fmt.Println("|---|---|")
	fmt.Printf("| wall, first start to last answer | %.2f s (starting took %.2f s) |\n", w.wall.Seconds(), w.started.Seconds())
	fmt.Printf("| model requests open at once (server) | %d (limit %d); %d requests, %d answered 429 |\n", st["peak"], maxCalls, st["total"], st["throttled"])
	if rpm > 0 && st["total"] > 1 {
		got := float64(st["total"]-1) / (float64(st["span_ms"]) / 60000)
		fmt.Printf("| requests per minute, first to last (limit %d) | %.0f (%+.1f %%) |\n", rpm, got, (got/float64(rpm)-1)*100)
	}
	fmt.Printf("| runtime: model calls in flight / waiting, peak | %d / %d |\n", w.calls.InFlight, w.calls.Waiting)
	fmt.Printf("| host: workers / detached slices / queued runs, peak | %d / %d / %d |\n", w.host.Working, w.host.Detached, w.host.Queued)
	fmt.Printf("| timer lateness of the sleepers | %s |\n", lat)
	fmt.Printf("| peak RSS | %s |\n", peakRSS())
	fmt.Printf("| CPU, first start to last answer: the runtime's process / the model server | %.2f s / %.2f s |\n", w.cpu.Seconds(), float64(st["cpu_ms"]-serverCPU0)/1000)
	return nil
}

// wave is one run of threads that each call the model, as measured.
type wave struct {
	n             int
	answered      atomic.Int64
	done          chan struct{} // closed when all n are answered
	started, wall time.Duration
	cpu           time.Duration // the process's, over wall
	host          actors.HostStats
	calls         actors.ModelCalls
	mem           runtime.MemStats // at the peak of stacks and heap in use
}

// resetServer zeroes the model server's counters.
func resetServer(addr string) error {
	resp, err := http.Post("http://"+addr+"/reset", "", nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// cpuTime is the process's CPU time so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// limits is the runtime's rate limit on the bench's model.
func limits(rpm int) map[string]actors.ModelLimit {
	if rpm == 0 {
		return nil
	}
	return map[string]actors.ModelLimit{"openai/slow": {RPM: rpm}}
}

// peakRSS is VmHWM from /proc/self/status.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return fmt.Sprintf("%.0f MB", float64(kb)/1024)
		}
	}
	return "n/a"
}
