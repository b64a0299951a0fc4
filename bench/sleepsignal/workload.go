package main

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// runWorkload starts every entity, sends each its input once it waits and
// measures until the last final answer is committed.
func runWorkload(cfg config, dir string, r *Row) error {
	b := newBench(cfg)
	s, err := openStack(dir, cfg.durable, b)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	errs := make(chan error, 1)
	b.sendInputs(ctx, s, errs)
	t0 := time.Now()
	if err := b.start(ctx, s); err != nil {
		return err
	}
	logf("%s n=%d run %d: all started in %s", cfg.system(), cfg.n, cfg.run, time.Since(t0).Round(time.Millisecond))
	select {
	case <-b.allDone:
	case err := <-errs:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%d of %d finished before the timeout (%s)", b.finished.Load(), cfg.n, cfg.timeout)
	}
	var last time.Time
	var late, fired, resume []time.Duration
	for _, e := range b.ents {
		e.mu.Lock()
		if e.done.After(last) {
			last = e.done
		}
		late = append(late, e.woke.Sub(e.due))
		fired = append(fired, e.fired.Sub(e.due))
		resume = append(resume, e.done.Sub(e.sent))
		bad := e.due.IsZero() || e.woke.IsZero() || e.sent.IsZero()
		e.mu.Unlock()
		if bad {
			return fmt.Errorf("thread %s finished without a recorded timer, wake-up or input", e.id)
		}
	}
	if n := b.early.Load(); n > 0 {
		return fmt.Errorf("%d threads answered before their input was sent", n)
	}
	r.WallS = last.Sub(t0).Seconds()
	r.LateP50Ms, r.LateP99Ms, r.LateMaxMs = stats(late)
	p90 := quantile(late, 0.9) // late is sorted now
	r.LateP90Ms = &p90
	r.ResumeP50Ms, r.ResumeP99Ms, _ = stats(resume)
	f50, f99, fmax := stats(fired)
	var store int64
	if s.store != nil {
		store = dirSize(dir)
	}
	logf("%s n=%d run %d: wall %.3f s; thread-resume lateness p50/p99/max %.2f/%.2f/%.2f ms (timer fire alone %.2f/%.2f/%.2f ms); input→answer p50/p99 %.2f/%.2f ms; store %d bytes",
		cfg.system(), cfg.n, cfg.run, r.WallS, r.LateP50Ms, r.LateP99Ms, r.LateMaxMs, f50, f99, fmax, r.ResumeP50Ms, r.ResumeP99Ms, store)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	logf("%s n=%d run %d: heap sys %.1f MB, in use %.1f MB, stacks %.1f MB, other sys %.1f MB; %d GCs (%.1f%% of CPU), %.1f GB allocated in %d objects; CPU %s",
		cfg.system(), cfg.n, cfg.run, float64(ms.HeapSys)/1e6, float64(ms.HeapInuse)/1e6, float64(ms.StackSys)/1e6,
		float64(ms.Sys-ms.HeapSys-ms.StackSys)/1e6, ms.NumGC, 100*ms.GCCPUFraction, float64(ms.TotalAlloc)/1e9, ms.Mallocs, cpuTime().Round(time.Millisecond))
	return nil
}

// runIdle starts every entity on a long sleep, waits until all are armed
// and passivated, settles the heap and samples the process's CPU.
func runIdle(cfg config, dir string, r *Row) error {
	b := newBench(cfg)
	s, err := openStack(dir, cfg.durable, b)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if err := b.start(ctx, s); err != nil {
		return err
	}
	for s.sender.Pending() < cfg.n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d timers armed: %w", s.sender.Pending(), cfg.n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := s.rt.WaitIdle(ctx); err != nil {
		return fmt.Errorf("wait idle: %w", err)
	}
	for s.rt.Active() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d threads still active: %w", s.rt.Active(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	settle()
	time.Sleep(time.Second)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(cfg.idleWindow)
	c1, t1 := cpuTime(), time.Now()
	pct := 100 * float64(c1-c0) / float64(t1.Sub(t0))
	r.IdleCPUPct = &pct
	logf("%s n=%d idle: %.4f%% of a core (%s CPU in %s); %d timers armed, %d active, %d goroutines",
		cfg.system(), cfg.n, pct, (c1 - c0).Round(time.Microsecond), t1.Sub(t0).Round(time.Millisecond),
		s.sender.Pending(), s.rt.Active(), runtime.NumGoroutine())
	return nil
}
