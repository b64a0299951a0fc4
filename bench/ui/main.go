// Command ui measures the daemon's web UI on a home that holds many
// threads: the list API's latency (a page, a far page, a search, a status
// filter) and, in headless Chromium, the UI's first contentful paint, the
// time until the first page of the list is drawn, and paging.
//
// Run it from the module root (it needs Chromium: Debian's package
// "chromium", which ./scripts/test installs):
//
//	go run ./bench/ui                    # 10,000 threads
//	go run ./bench/ui -threads 1000 -chromium /usr/bin/chromium
//
// The threads are started through the daemon's API on a scripted agent
// that answers once with text, so each is a real root with a two-item
// history, waiting for input. Progress goes to stderr; a markdown table
// goes to stdout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/chromedp"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

const agentYAML = `name: quick
model:
  provider: scripted
  script: ./script.json
`

const agentScript = `{"rules": [{"name": "answer", "when": {"last": "user"}, "reply": {"text": "Done."}}]}`

func main() {
	threads := flag.Int("threads", 10000, "root threads in the daemon")
	reps := flag.Int("reps", 20, "requests per API row")
	chromium := flag.String("chromium", "", "the Chromium program (default $INFINITY_TEST_CHROMIUM, else /usr/bin/chromium)")
	flag.Parse()
	if err := run(*threads, *reps, *chromium); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ui:", err)
		os.Exit(1)
	}
}

func run(n, reps int, chromium string) error {
	if chromium == "" {
		chromium = os.Getenv("INFINITY_TEST_CHROMIUM")
	}
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		return fmt.Errorf("no Chromium at %s (install Debian's chromium package, or pass -chromium): %w", chromium, err)
	}
	home, err := os.MkdirTemp("", "infinity-bench-ui-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	ctx := context.Background()
	d, err := daemon.Open(ctx, daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	go d.Serve(ctx)
	defer d.Close()
	c, _, err := daemon.Dial(home)
	if err != nil {
		return err
	}
	agent, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "quick.yaml", AgentSource: daemon.AgentSource{YAML: agentYAML, Script: agentScript}})
	if err != nil {
		return err
	}
	if err := startAll(ctx, c, agent.Key, n); err != nil {
		return err
	}
	token, err := daemon.ReadToken(home)
	if err != nil {
		return err
	}
	var rows [][2]string
	add := func(what string, ds []time.Duration) {
		rows = append(rows, [2]string{what, summary(ds)})
	}
	base := "http://" + d.Addr()
	for _, q := range []struct{ what, query string }{
		{"API: first page of roots (100, newest first)", "roots=true&order=newest&limit=100"},
		{"API: page 50 of roots", "roots=true&order=newest&limit=100&offset=4900"},
		{"API: search by id piece", "roots=true&q=t" + strconv.Itoa(n/2) + "&limit=100"},
		{"API: status=waiting (reads every history)", "roots=true&status=waiting&limit=100"},
	} {
		ds, err := timeGets(base+"/v1/threads?"+q.query, token, reps)
		if err != nil {
			return err
		}
		add(q.what, ds)
	}
	ui, err := browse(ctx, c, chromium, reps)
	if err != nil {
		return err
	}
	rows = append(rows, ui...)
	fmt.Printf("\n%d root threads (each a two-item history), %d requests per API row, Chromium %s\n\n", n, reps, chromium)
	fmt.Println("| what | median | p95 | max |")
	fmt.Println("|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s |\n", r[0], r[1])
	}
	return nil
}

// startAll starts n roots (ids b0000001, ...) through the API and waits
// until every one has answered.
func startAll(ctx context.Context, c *daemon.Client, agent string, n int) error {
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(os.Stderr, "started %d of %d threads (%s)\n", done.Load(), n, time.Since(start).Round(time.Second))
			case <-stop:
				return
			}
		}
	}()
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				id := infinity.ThreadID(fmt.Sprintf("t%d", i))
				if _, err := c.Start(ctx, daemon.StartRequest{Agent: agent, Text: "Go.", ID: id}); err != nil {
					select {
					case errc <- fmt.Errorf("start %s: %w", id, err):
					default:
					}
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	select {
	case err := <-errc:
		return err
	default:
	}
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Active == 0 && st.Waiting == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "%d threads started and answered in %s\n", n, time.Since(start).Round(10*time.Millisecond))
	return nil
}

func timeGets(url, token string, reps int) ([]time.Duration, error) {
	var ds []time.Duration
	for range reps {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		ds = append(ds, time.Since(t0))
	}
	return ds, nil
}

// browse opens the UI reps times in a fresh tab, and pages once each
// time.
func browse(ctx context.Context, c *daemon.Client, chromium string, reps int) ([][2]string, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-gpu", true))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	if err := chromedp.Do(bctx); err != nil {
		return nil, fmt.Errorf("starting %s: %w", chromium, err)
	}
	var fcp, ready, page []time.Duration
	for i := range reps {
		fmt.Fprintf(os.Stderr, "browser: load %d of %d\n", i+1, reps)
		code, err := c.UICode(ctx)
		if err != nil {
			return nil, err
		}
		tctx, cancel := chromedp.NewContext(bctx) // a new tab: a cold page
		err = func() error {
			defer cancel()
			sctx, stop := context.WithTimeout(tctx, 60*time.Second)
			defer stop()
			if err := chromedp.Do(sctx, chromedp.Navigate(code.URL)); err != nil {
				return err
			}
			if _, err := chromedp.Run(sctx, chromedp.Poll[bool](`document.body.dataset.readyMs !== undefined`)); err != nil {
				return err
			}
			paint, err := chromedp.Run(sctx, chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime`))
			if err != nil {
				return err
			}
			drawn, err := chromedp.Run(sctx, chromedp.Evaluate[float64](`Number(document.body.dataset.readyMs)`))
			if err != nil {
				return err
			}
			next, err := chromedp.Run(sctx, chromedp.Evaluate[float64](`new Promise((resolve) => {
				const info = document.getElementById("page-info"), before = info.textContent, t0 = performance.now();
				document.getElementById("next").click();
				const tick = () => info.textContent !== before ? resolve(performance.now() - t0) : requestAnimationFrame(tick);
				tick();
			})`, chromedp.EvalAwaitPromise))
			if err != nil {
				return err
			}
			if paint < 0 {
				return errors.New("the page reported no first contentful paint")
			}
			fcp = append(fcp, ms(paint))
			ready = append(ready, ms(drawn))
			page = append(page, ms(next))
			return nil
		}()
		if err != nil {
			return nil, fmt.Errorf("browser: %w", err)
		}
	}
	return [][2]string{
		{"UI: first contentful paint (from navigation)", summary(fcp)},
		{"UI: first page of the list drawn (from navigation; sign-in redirect included)", summary(ready)},
		{"UI: next page drawn (after the click)", summary(page)},
	}, nil
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// summary is "median | p95 | max".
func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	f := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	return f(at(0.5)) + " | " + f(at(0.95)) + " | " + f(s[len(s)-1])
}
