package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// config is one measured configuration.
type config struct {
	durable bool
	n       int
	run     int
	dir     string // parent of the run's temporary directory
	// sleepMin and sleepMax bound each entity's sleep (1 s and 2 s; the
	// smoke test shortens them).
	sleepMin, sleepMax time.Duration
	// idle runs the idle configuration instead: every entity sleeps
	// idleSleep and CPU is sampled over idleWindow once all are asleep.
	idle       bool
	idleSleep  time.Duration
	idleWindow time.Duration
	timeout    time.Duration
	workers    int // goroutines that start threads and send inputs
}

func (c config) system() string {
	if c.durable {
		return sysDurable
	}
	return sysMemory
}

// entity is one workload thread and what was measured of it.
type entity struct {
	id   infinity.ThreadID
	secs float64

	mu    sync.Mutex
	due   time.Time // the timer's due time, from the sender
	fired time.Time // the timer handed the wake-up to the runtime
	woke  time.Time // the thread's slice first saw the wake-up
	sent  time.Time // the input was sent
	done  time.Time // the final answer was committed
}

// mark sets *t to v once.
func (e *entity) mark(t *time.Time, v time.Time) {
	e.mu.Lock()
	if t.IsZero() {
		*t = v
	}
	e.mu.Unlock()
}

type bench struct {
	cfg      config
	ents     map[infinity.ThreadID]*entity // read-only once built
	waiting  chan *entity                  // threads waiting for their input
	finished atomic.Int64
	allDone  chan struct{}
	early    atomic.Int64 // final answers before the input was sent
}

// observe follows committed items: a sleep_until_event_or_input call queues
// the thread's input; the final answer finishes the entity.
func (b *bench) observe(ev actors.Event) {
	if ev.Kind != actors.EventItem {
		return
	}
	e := b.ents[ev.Thread]
	if e == nil {
		return
	}
	switch {
	case ev.Item.Kind == infinity.KindToolCall && ev.Item.Call != nil && ev.Item.Call.Name == "sleep_until_event_or_input":
		e.mu.Lock()
		first := e.sent.IsZero() && e.done.IsZero()
		e.mu.Unlock()
		if first && !b.cfg.idle {
			b.waiting <- e // buffered for every entity: never blocks
		}
	case ev.Item.Kind == infinity.KindAssistant && ev.Item.Text == doneText:
		now := time.Now()
		e.mu.Lock()
		if !e.done.IsZero() {
			e.mu.Unlock()
			return
		}
		e.done = now
		if e.sent.IsZero() {
			b.early.Add(1)
		}
		e.mu.Unlock()
		if b.finished.Add(1) == int64(len(b.ents)) {
			close(b.allDone)
		}
	}
}

// runConfig runs one configuration in this process and returns its row.
func runConfig(cfg config) (r Row) {
	r = Row{System: cfg.system(), N: cfg.n, Run: cfg.run, Idle: cfg.idle}
	dir, err := os.MkdirTemp(cfg.dir, "infinity-sleepsignal-")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	w0 := wchar()
	if cfg.idle {
		err = runIdle(cfg, dir, &r)
	} else {
		err = runWorkload(cfg, dir, &r)
	}
	if err != nil {
		r.Error = err.Error()
	}
	r.PeakRSSMB = map[string]float64{"bench": peakRSSMB()}
	r.DiskBytes = wchar() - w0
	return r
}

func newBench(cfg config) *bench {
	b := &bench{cfg: cfg, ents: make(map[infinity.ThreadID]*entity, cfg.n),
		waiting: make(chan *entity, cfg.n), allDone: make(chan struct{})}
	for range cfg.n {
		e := &entity{id: infinity.NewThreadID()}
		if cfg.idle {
			e.secs = cfg.idleSleep.Seconds()
		} else {
			e.secs = (cfg.sleepMin + rand.N(cfg.sleepMax-cfg.sleepMin+1)).Seconds()
		}
		b.ents[e.id] = e
	}
	return b
}

// start starts every entity's thread from cfg.workers goroutines.
func (b *bench) start(ctx context.Context, s *stack) error {
	ids := make(chan infinity.ThreadID, len(b.ents))
	for id := range b.ents {
		ids <- id
	}
	close(ids)
	var wg sync.WaitGroup
	errs := make(chan error, b.cfg.workers)
	for range b.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if _, err := s.rt.Start(ctx, actors.StartOptions{ID: id, Text: startText}); err != nil {
					errs <- fmt.Errorf("start %s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs)
}

// sendInputs sends each waiting thread its input, as the daemon's message
// route does (a user text message with a fresh id, rt.SendMessage).
func (b *bench) sendInputs(ctx context.Context, s *stack, errs chan<- error) {
	for range b.cfg.workers {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-b.waiting:
					e.mark(&e.sent, time.Now())
					msg := infinity.InputMessage{ID: infinity.NewMessageID(), GroupID: e.id, Content: infinity.TextContent(inputText)}
					if err := s.rt.SendMessage(ctx, msg); err != nil && ctx.Err() == nil {
						select {
						case errs <- fmt.Errorf("send input to %s: %w", e.id, err):
						default:
						}
					}
				}
			}
		}()
	}
}
