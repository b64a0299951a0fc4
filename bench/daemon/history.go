package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/persistence/disk"
)

// Row 6 (and 7, a tenth of its size): a store holding a long history, and
// what the daemon costs on it. The history is written straight into the
// disk store (H threads × I items of B bytes of text each), then a fresh
// process (-measure-home) runs the daemon on it: restart to ready
// (daemon.Open + the first Status), RSS at rest after the restart, then one
// user message to each of A threads through the API, and RSS once they
// all answered (each slice loads its thread's whole history).
var (
	flagHistThreads = flag.Int("history-threads", 20_000, "row 6: threads with history (row 7: a tenth)")
	flagHistItems   = flag.Int("history-items", 100, "rows 6 and 7: items per thread")
	flagHistBytes   = flag.Int("history-bytes", 1_000, "rows 6 and 7: text bytes per item")
	flagHistActive  = flag.Int("history-active", 1_000, "rows 6 and 7: threads that get a message after the restart")
	flagMeasureHome = flag.String("measure-home", "", "internal: measure the daemon on this home and print the figures as JSON")
)

// historyFigures is what the measuring process prints.
type historyFigures struct {
	Ready      float64 `json:"ready_s"`
	Opened     float64 `json:"opened_s"`
	RSSRestart int64   `json:"rss_restart"`
	RSSActive  int64   `json:"rss_active"`
	Slices     float64 `json:"slices_s"`
	Threads    int     `json:"threads"`
}

func rowHistory(dir string, r *Row, threads int) error {
	items, size, active := *flagHistItems, *flagHistBytes, min(*flagHistActive, threads)
	logical := int64(threads) * int64(items) * int64(size)
	r.Name = fmt.Sprintf("History on disk, %d threads × %d items of %d B (%.2f GB of text): restart to ready; RSS after the restart and after %d threads ran a slice",
		threads, items, size, float64(logical)/1e9, active)
	r.Goal = "ready ≤ 1 s; RSS ≤ 200 MB (both)"
	home := filepath.Join(dir, "home")
	ctx := context.Background()
	store, err := disk.Open(filepath.Join(home, "store"), disk.WithLogger(discard))
	if err != nil {
		return err
	}
	logf("row %d: writing %d threads × %d items", r.N, threads, items)
	t0 := time.Now()
	now := time.Now().UTC()
	var done atomic.Int64
	err = parallel(threads, 64, func(i int) error {
		id := infinity.ThreadID(fmt.Sprintf("h-%06d", i))
		conv := store.Conversations()
		if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Agent: "demo", Created: now}); err != nil {
			return err
		}
		rnd := rand.New(rand.NewPCG(uint64(i), 7))
		for start := 0; start < items; start += 50 {
			batch := make([]infinity.Item, 0, 50)
			for j := start; j < min(start+50, items); j++ {
				kind := infinity.KindUser
				if j%2 == 1 {
					kind = infinity.KindAssistant
				}
				batch = append(batch, infinity.Item{ID: fmt.Sprintf("i%d", j), Kind: kind, Text: text(rnd, size), At: now})
			}
			if _, err := conv.Commit(ctx, infinity.Commit{Thread: id, Expected: start, Items: batch}); err != nil {
				return err
			}
		}
		progress(fmt.Sprintf("row %d threads", r.N), int(done.Add(1)), threads, max(threads/10, 1), t0)
		return nil
	})
	if err == nil {
		err = store.Flush()
	}
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	onDisk := dirSize(filepath.Join(home, "store"))
	logf("row %d: written in %s (store %s on disk); measuring in a fresh process", r.N, time.Since(t0).Round(time.Millisecond), mib(onDisk))

	cmd := exec.Command(os.Args[0], "-measure-home", home, "-history-threads", fmt.Sprint(threads), "-history-active", fmt.Sprint(active),
		"-history-items", fmt.Sprint(items), "-memprofile", *flagMemProf)
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("measuring process: %w", err)
	}
	var f historyFigures
	if err := json.Unmarshal(bytes.TrimSpace(lastLine(out.Bytes())), &f); err != nil {
		return fmt.Errorf("measuring process printed no figures: %w", err)
	}
	const mb = 1e6
	r.Value = fmt.Sprintf("ready %.3f s; RSS %.1f MB after the restart, %.1f MB after %d slices", f.Ready, float64(f.RSSRestart)/mb, float64(f.RSSActive)/mb, active)
	r.Pass = f.Ready <= 1 && f.RSSRestart <= 200*mb && f.RSSActive <= 200*mb
	r.metric(mThreads, float64(threads))
	r.metric(mReady, f.Ready)
	r.metric(mOpen, f.Opened)
	r.metric(mRSS, float64(f.RSSRestart)/(1<<20))
	r.metric(mRSSActive, float64(f.RSSActive)/(1<<20))
	r.metric(mSlices, float64(active))
	if f.Slices > 0 {
		r.metric(mSlicesPerS, float64(active)/f.Slices)
	}
	r.Notes = fmt.Sprintf("store %s on disk (%.2f GB of item text before compression); daemon.Open %.3f s; the %d slices took %.2f s; status saw %d threads",
		mib(onDisk), float64(logical)/1e9, f.Opened, active, f.Slices, f.Threads)
	logf("row %d: %s (%s)", r.N, r.Value, r.Notes)
	return nil
}

// text returns n bytes of random words: compressible as prose is, not as
// a repeated byte would be.
func text(rnd *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 0, n)
	for len(b) < n {
		w := 2 + rnd.IntN(8)
		for range w {
			b = append(b, letters[rnd.IntN(len(letters))])
		}
		b = append(b, ' ')
	}
	return string(b[:n])
}

func dirSize(dir string) int64 {
	var size int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	return size
}

// measureHistory runs the daemon on home and prints historyFigures.
func measureHistory(home string) error {
	ctx := context.Background()
	start := time.Now()
	d, err := daemon.Open(ctx, daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: discard, Version: "bench"})
	if err != nil {
		return err
	}
	opened := time.Since(start)
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- d.Serve(sctx) }()
	defer func() {
		stop()
		<-served
	}()
	c, _, err := daemon.Dial(home)
	if err != nil {
		return err
	}
	sv, err := c.Status(ctx)
	if err != nil {
		return err
	}
	f := historyFigures{Ready: time.Since(start).Seconds(), Opened: opened.Seconds(), Threads: sv.Threads}
	if f.RSSRestart, err = settledRSS(); err != nil {
		return err
	}
	active := *flagHistActive
	logf("measure: ready in %.3f s, RSS %s; sending %d messages", f.Ready, mib(f.RSSRestart), active)
	t := time.Now()
	err = parallel(active, 32, func(i int) error {
		_, err := c.Send(ctx, infinity.ThreadID(fmt.Sprintf("h-%06d", i)), daemon.MessageRequest{Text: "one more thing"})
		return err
	})
	if err != nil {
		return err
	}
	// Every thread answered: its history grew by the message and a reply
	// (read from the item stream past the stored history, which reads
	// only the new items).
	from := *flagHistItems
	err = parallel(active, 32, func(i int) error {
		id := infinity.ThreadID(fmt.Sprintf("h-%06d", i))
		for deadline := time.Now().Add(5 * time.Minute); ; {
			n := 0
			err := c.Items(ctx, id, from, false, func(l daemon.ItemLine) error {
				if l.Item != nil && l.Item.Kind == infinity.KindAssistant {
					n++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("thread %s never answered", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err != nil {
		return err
	}
	f.Slices = time.Since(t).Seconds()
	for {
		sv, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if sv.Active == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.RSSActive, err = settledRSS(); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	logf("measure: RSS %s; Go heap in use %s, heap idle not released %s, stacks %s, Go sys %s",
		mib(f.RSSActive), mib(int64(ms.HeapInuse)), mib(int64(ms.HeapIdle-ms.HeapReleased)), mib(int64(ms.StackInuse)), mib(int64(ms.Sys)))
	if *flagMemProf != "" {
		if err := writeHeapProfile(*flagMemProf, "", false); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(f)
}
