package disk

import (
	"container/heap"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// durability tracks which applied batches are durable. A mutation takes a
// ticket, tells the readers of its threads to wait for it, and applies its
// batch without waiting for the log's fsync (the engine's commit pipeline
// applies concurrent batches in parallel and groups their fsyncs); one
// goroutine waits for each batch's fsync and records it done. Tickets are
// not in the log's order, so "synced" is the highest ticket below which
// every ticket is done: waiting for ticket t means waiting until t and
// every ticket before it is durable. Reads wait for the tickets of what
// they read: no read returns what a crash could still take back.
type durability struct {
	ch chan pendingBatch
	// next is the last ticket handed out (taken before its batch is
	// applied, and so before it can be read).
	next    atomic.Uint64
	records atomic.Int64
	done    chan struct{}

	mu sync.Mutex
	// waiters wait for tickets not yet durable, by ticket: a sync wakes
	// only those it covers (a broadcast to every waiter on every fsync
	// kept the scheduler busy with goroutines that went back to sleep).
	waiters waiterHeap
	// synced: every ticket up to it is durable (or failed); finished
	// holds the tickets above it that are.
	synced   uint64
	finished map[uint64]struct{}
	// err is the first failure (an fsync, or an apply); every ticket from
	// failedAt on fails with it, and no more writes are taken.
	err      error
	failedAt uint64
}

type pendingBatch struct {
	b      *pebble.Batch // nil: the apply failed with err
	err    error
	ticket uint64
}

func (d *durability) start(s *Store) {
	d.ch = make(chan pendingBatch, 4096)
	d.done = make(chan struct{})
	d.finished = make(map[uint64]struct{})
	go d.run()
}

func (d *durability) run() {
	defer close(d.done)
	for p := range d.ch {
		err := p.err
		if p.b != nil {
			err = p.b.SyncWait()
			p.b.Close()
			d.records.Add(1)
		}
		d.mu.Lock()
		if err != nil && (d.err == nil || p.ticket < d.failedAt) {
			if d.err == nil {
				d.err = err
			}
			d.failedAt = p.ticket
		}
		d.finished[p.ticket] = struct{}{}
		for {
			if _, ok := d.finished[d.synced+1]; !ok {
				break
			}
			delete(d.finished, d.synced+1)
			d.synced++
		}
		d.wakeLocked()
		d.mu.Unlock()
	}
}

// wakeLocked wakes the waiters whose ticket is durable; after a failure,
// every waiter (each finds out whether its ticket failed).
func (d *durability) wakeLocked() {
	if d.err != nil {
		for _, w := range d.waiters {
			close(w.ch)
		}
		d.waiters = d.waiters[:0]
		return
	}
	for len(d.waiters) > 0 && d.waiters[0].t <= d.synced {
		w := heap.Pop(&d.waiters).(waiter)
		close(w.ch)
	}
}

// waiter is a wait for ticket t.
type waiter struct {
	t  uint64
	ch chan struct{}
}

// waiterHeap orders waiters by ticket (container/heap).
type waiterHeap []waiter

func (h waiterHeap) Len() int           { return len(h) }
func (h waiterHeap) Less(i, j int) bool { return h[i].t < h[j].t }
func (h waiterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waiterHeap) Push(x any)        { *h = append(*h, x.(waiter)) }
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

// failed returns the error that stops writes, if any.
func (d *durability) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return fmt.Errorf("disk store: an earlier write failed, close and reopen the store: %w", d.err)
	}
	return nil
}

// apply applies b, to be made durable, and returns its ticket; the
// caller no longer owns b. before runs with the ticket before the batch
// is applied (and so visible): the readers it tells wait for the ticket.
// A failed apply stops every later write and fails the waits for its
// ticket and after.
func (d *durability) apply(db *pebble.DB, b *pebble.Batch, before func(uint64)) (uint64, error) {
	if err := d.failed(); err != nil {
		b.Close()
		return 0, err
	}
	t := d.next.Add(1)
	before(t)
	if err := db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		// Stop later writes now, not once the syncer reaches this ticket.
		d.mu.Lock()
		if d.err == nil || t < d.failedAt {
			if d.err == nil {
				d.err = err
			}
			d.failedAt = t
		}
		d.mu.Unlock()
		d.ch <- pendingBatch{err: err, ticket: t}
		return 0, fmt.Errorf("disk store: write: %w", err)
	}
	d.ch <- pendingBatch{b: b, ticket: t}
	return t, nil
}

// wait returns once ticket t is durable, with its error if it never will
// be.
func (d *durability) wait(t uint64) error {
	d.mu.Lock()
	for d.synced < t && (d.err == nil || t < d.failedAt) {
		ch := make(chan struct{})
		heap.Push(&d.waiters, waiter{t: t, ch: ch})
		d.mu.Unlock()
		<-ch
		d.mu.Lock()
	}
	defer d.mu.Unlock()
	if d.err != nil && t >= d.failedAt {
		return fmt.Errorf("disk store: write not durable: %w", d.err)
	}
	return nil
}

// close waits for the pending batches; no more may be applied.
func (d *durability) close() {
	close(d.ch)
	<-d.done
}

// space refuses writes while the file system is nearly full, so that the
// engine never meets a full disk in the middle of a write (its log cannot
// go on after a failed write): a refused write changed nothing, and
// writes go on by themselves once space is freed.
type space struct {
	dir  string
	min  uint64
	read func(dir string) (uint64, error)

	mu      sync.Mutex
	checked time.Time
	free    uint64
}

func (sp *space) init(dir string, min uint64, read func(string) (uint64, error)) {
	sp.dir, sp.min, sp.read = dir, min, read
}

// spaceRecheck is how long a reading of plenty of space (over twice the
// reserve) is trusted.
const spaceRecheck = 100 * time.Millisecond

// check fails with ErrNoSpace while free space is under the reserve.
func (sp *space) check() error {
	if sp.min == 0 {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := time.Now()
	if sp.free >= 2*sp.min && now.Sub(sp.checked) < spaceRecheck {
		return nil
	}
	free, err := sp.read(sp.dir)
	if err != nil {
		return nil // an unreadable reading does not stop writes; the write reports real errors
	}
	sp.free, sp.checked = free, now
	if free < sp.min {
		return fmt.Errorf("disk store %s: %d MiB free, under the %d MiB the store keeps in reserve; free space to go on: %w",
			sp.dir, free>>20, sp.min>>20, ErrNoSpace)
	}
	return nil
}

// freeSpace reads the space available to the store's directory.
func freeSpace(dir string) (uint64, error) {
	u, err := vfs.Default.GetDiskUsage(dir)
	if err != nil {
		return 0, err
	}
	return u.AvailBytes, nil
}

// engineLogger routes the engine's messages to slog: its routine reports
// at debug level, its errors at error level. Fatalf is for broken
// invariants of the engine: it logs and exits, as the engine's own logger
// does.
type engineLogger struct{ l *slog.Logger }

func (e engineLogger) Infof(format string, args ...any) {
	e.l.Debug("disk store: " + fmt.Sprintf(format, args...))
}

func (e engineLogger) Errorf(format string, args ...any) {
	e.l.Error("disk store: " + fmt.Sprintf(format, args...))
}

func (e engineLogger) Fatalf(format string, args ...any) {
	e.l.Error("disk store: fatal: " + fmt.Sprintf(format, args...))
	os.Exit(70)
}
