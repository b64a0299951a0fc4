package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// engine is one durable workflow system driven by the workload.
type engine interface {
	// start starts workflow i, which sleeps d on a durable timer.
	start(ctx context.Context, i int, d time.Duration) error
	// signal delivers the external input to workflow i.
	signal(ctx context.Context, i int) error
	// pids maps each process role to its pid (0 = this process).
	pids() map[string]int
	// diskBytes is the growth of the engine's SQLite files (db + WAL) so far.
	diskBytes() int64
	close() error
}

type config struct {
	system      string
	n           int
	run         int
	idle        bool
	timeout     time.Duration
	minSleep    time.Duration
	maxSleep    time.Duration
	idleSleep   time.Duration
	idleWindow  time.Duration
	temporalBin string
	concurrency int
}

func defaultConfig() config {
	return config{
		system: "goworkflows", n: 1000, run: 1, timeout: 15 * time.Minute,
		minSleep: time.Second, maxSleep: 2 * time.Second,
		idleSleep: 20 * time.Minute, idleWindow: 30 * time.Second,
		concurrency: 32,
	}
}

// runOnce runs the workload once and always returns a row (error set on failure).
func runOnce(ctx context.Context, cfg config) Row {
	row := Row{System: cfg.system, N: cfg.n, Run: cfg.run, Idle: cfg.idle, PeakRSSMB: map[string]float64{}}
	if err := measure(ctx, cfg, &row); err != nil {
		row.Error = err.Error()
	}
	return row
}

func measure(ctx context.Context, cfg config, row *Row) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	rec := newRecorder(cfg.n)
	active.Store(rec)
	defer active.Store(nil)

	eng, err := newEngine(ctx, cfg, rec)
	if err != nil {
		return err
	}
	defer func() {
		if err := eng.close(); err != nil {
			logf("close %s: %v", cfg.system, err)
		}
	}()

	start := time.Now()
	var failures atomic.Int64
	var wg sync.WaitGroup
	go signaller(ctx, cfg, eng, rec, &failures)
	starter(ctx, cfg, eng, &failures, &wg)
	logf("%s n=%d: %d started in %.2fs", cfg.system, cfg.n, cfg.n, time.Since(start).Seconds())

	wait := rec.allDone
	if cfg.idle {
		wait = rec.allAsleep
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return fmt.Errorf("timeout after %v: %d/%d timers committed, %d/%d finished, %d failed calls",
			cfg.timeout, rec.timers.Load(), cfg.n, rec.finished.Load(), cfg.n, failures.Load())
	}
	if cfg.idle {
		row.WallS = round(time.Since(start).Seconds(), 3)
		logf("all %d asleep after %.2fs; settling, then measuring CPU for %v", cfg.n, row.WallS, cfg.idleWindow)
		time.Sleep(2 * time.Second)
		pids := []int{}
		for _, p := range eng.pids() {
			pids = append(pids, p)
		}
		cpu, err := idleCPU(pids, cfg.idleWindow)
		if err != nil {
			return err
		}
		row.IdleCPU = cpu
	} else {
		rec.fill(row, start)
	}
	for role, pid := range eng.pids() {
		mb, err := peakRSSMB(pid)
		if err != nil {
			return err
		}
		row.PeakRSSMB[role] = mb
	}
	row.DiskBytes = eng.diskBytes()
	if n := failures.Load(); n > 0 {
		return fmt.Errorf("%d start/signal calls failed", n)
	}
	return nil
}

func newEngine(ctx context.Context, cfg config, rec *recorder) (engine, error) {
	switch cfg.system {
	case "goworkflows":
		return newGoWorkflows(ctx, cfg, rec)
	case "temporal":
		return newTemporal(ctx, cfg, rec)
	}
	return nil, fmt.Errorf("unknown system %q", cfg.system)
}

// starter starts all n workflows with bounded concurrency and returns when all
// start calls returned.
func starter(ctx context.Context, cfg config, eng engine, failures *atomic.Int64, wg *sync.WaitGroup) {
	next := make(chan int)
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := eng.start(ctx, i, delay(cfg)); err != nil {
					if failures.Add(1) <= 3 {
						logf("start %d: %v", i, err)
					}
				}
			}
		}()
	}
	for i := 0; i < cfg.n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// signaller sends the input to each workflow as soon as its timer fired.
func signaller(ctx context.Context, cfg config, eng engine, rec *recorder, failures *atomic.Int64) {
	for w := 0; w < cfg.concurrency; w++ {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case i := <-rec.woken:
					rec.signalled(i, time.Now())
					if err := eng.signal(ctx, i); err != nil && ctx.Err() == nil {
						if failures.Add(1) <= 3 {
							logf("signal %d: %v", i, err)
						}
					}
				}
			}
		}()
	}
}

func delay(cfg config) time.Duration {
	if cfg.idle {
		return cfg.idleSleep
	}
	span := cfg.maxSleep - cfg.minSleep
	if span <= 0 {
		return cfg.minSleep
	}
	return cfg.minSleep + rand.N(span)
}

func workflowID(i int) string { return fmt.Sprintf("wf-%d", i) }

func workflowIndex(id string) int {
	var i int
	if _, err := fmt.Sscanf(id, "wf-%d", &i); err != nil {
		return -1
	}
	return i
}
