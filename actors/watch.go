package actors

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infinity-runtime/infinity"
)

// watchers fan the runtime's events out to Follow and Wait, with
// back-pressure: an event waits for a slow watcher that it is for (never
// past the watcher's end or Close); other watchers and threads go on.
type watchers struct {
	n    atomic.Int32 // len(subs), read without the lock
	mu   sync.Mutex
	subs map[*watcher]struct{}
}

type watcher struct {
	ch   chan Event
	done <-chan struct{}
	// mu orders the watcher's events and guards match, which may keep
	// state (the threads of a subtree).
	mu    sync.Mutex
	match func(Event) bool
}

func (w *watchers) add(x *watcher) {
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[*watcher]struct{}{}
	}
	w.subs[x] = struct{}{}
	w.n.Store(int32(len(w.subs)))
	w.mu.Unlock()
}

func (w *watchers) remove(x *watcher) {
	w.mu.Lock()
	delete(w.subs, x)
	w.n.Store(int32(len(w.subs)))
	w.mu.Unlock()
}

// publish hands ev to every watcher it is for. A thread's events come from
// its slices one at a time, so each watcher gets them in commit order.
func (w *watchers) publish(ev Event, stopped <-chan struct{}) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	subs := make([]*watcher, 0, len(w.subs))
	for x := range w.subs {
		subs = append(subs, x)
	}
	w.mu.Unlock()
	for _, x := range subs {
		x.mu.Lock()
		if x.match(ev) {
			select {
			case x.ch <- ev:
			case <-x.done:
			case <-stopped:
			}
		}
		x.mu.Unlock()
	}
}

// subtree returns a match for the events of the threads in ids and, with
// all, of every thread created below one of them (added to ids).
func subtree(ids map[infinity.ThreadID]bool, all bool) func(Event) bool {
	return func(ev Event) bool {
		if all && ev.Kind == EventThreadCreated && ids[ev.Info.Parent] {
			ids[ev.Info.ID] = true
		}
		return ids[ev.Thread]
	}
}

// Follow returns the events of thread id (and, with subtree, of every
// thread below it, those spawned later included) as they are committed,
// from the call on, until ctx ends, the loop over them stops or the runtime closes.
// A slow consumer slows the slices it follows (back-pressure): nothing is
// dropped, so range over the result or cancel ctx. Events committed before
// the call are in the thread's history (History). The result is for one
// loop.
func (rt *Runtime) Follow(ctx context.Context, id infinity.ThreadID, subtree bool) iter.Seq[Event] {
	ctx, cancel := context.WithCancel(ctx)
	x := rt.watch(ctx, id, subtree)
	stop := context.AfterFunc(ctx, func() { rt.watchers.remove(x) })
	return func(yield func(Event) bool) {
		defer func() {
			cancel() // first: a publish waiting on x gives up
			stop()
			rt.watchers.remove(x)
		}()
		for {
			select {
			case ev := <-x.ch:
				if !yield(ev) {
					return
				}
			case <-ctx.Done():
				return
			case <-rt.ctx.Done():
				return
			}
		}
	}
}

func (rt *Runtime) watch(ctx context.Context, id infinity.ThreadID, all bool) *watcher {
	ids := map[infinity.ThreadID]bool{id: true}
	x := &watcher{ch: make(chan Event, 64), done: ctx.Done(), match: subtree(ids, all)}
	rt.watchers.add(x)
	if all {
		// The threads already below it, found after add so that none
		// created meanwhile is missed.
		for queue := []infinity.ThreadID{id}; len(queue) > 0; queue = queue[1:] {
			kids, err := rt.cfg.Conversations.Children(ctx, queue[0])
			if err != nil {
				break // an unknown thread has none
			}
			x.mu.Lock()
			for _, k := range kids {
				ids[k.ID] = true
				queue = append(queue, k.ID)
			}
			x.mu.Unlock()
		}
	}
	return x
}

// Until is what Wait waits for.
type Until uint8

// What Wait waits for.
const (
	// UntilAnswered: the thread answered and waits for input (its last item
	// is the model's text and nothing is open, queued or running), or it
	// closed.
	UntilAnswered Until = iota + 1
	// UntilIdle: no slice of the thread runs or waits to run (it may sleep,
	// or wait for a tool or a child).
	UntilIdle
	// UntilClosed: the thread is closed.
	UntilClosed
)

func (u Until) String() string {
	switch u {
	case UntilAnswered:
		return "answered"
	case UntilIdle:
		return "idle"
	case UntilClosed:
		return "closed"
	}
	return fmt.Sprintf("Until(%d)", uint8(u))
}

// Wait waits until thread id is in the state until names, or ctx ends
// (its error, wrapped), or the runtime closes (ErrStopped). It returns the
// thread's last item then (zero for a thread without items), and
// ErrNotFound for an unknown thread.
func (rt *Runtime) Wait(ctx context.Context, id infinity.ThreadID, until Until) (infinity.Item, error) {
	if until < UntilAnswered || until > UntilClosed {
		return infinity.Item{}, fmt.Errorf("wait for %s: %v: %w", id, until, infinity.ErrInvalid)
	}
	ctx, cancel := context.WithCancel(ctx)
	x := rt.watch(ctx, id, false)
	defer func() {
		cancel() // first: a publish waiting on x gives up
		rt.watchers.remove(x)
	}()
	var failed error // the thread's last slice error, if its input is not retried
	// A slice's end is its last event; the mailbox is idle only a moment
	// later, so state is checked again shortly after each event too.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last, ok, err := rt.reached(ctx, id, until)
		if err != nil || ok {
			return last, err
		}
		if failed == nil {
			failed = rt.failure(id) // an event before this Wait began
		}
		if until == UntilAnswered && failed != nil && !rt.Busy(id) {
			// Its model failed for good: no answer is coming until new input.
			return last, fmt.Errorf("wait for %s: its last slice failed: %w", id, failed)
		}
		select {
		case ev := <-x.ch:
			switch ev.Kind {
			case EventSliceError:
				failed = ev.Err
			case EventItem:
				failed = nil
			}
		case <-tick.C:
		case <-ctx.Done():
			return infinity.Item{}, fmt.Errorf("wait for %s to be %v: %w", id, until, ctx.Err())
		case <-rt.ctx.Done():
			return infinity.Item{}, fmt.Errorf("wait for %s: %w", id, ErrStopped)
		}
	}
}

// failures remembers each thread's last slice error until its next
// committed item, for Wait.
type failures struct {
	n    atomic.Int32 // len(last), so that committed items skip the lock
	mu   sync.Mutex
	last map[infinity.ThreadID]error
}

func (f *failures) observe(ev Event) {
	switch {
	case ev.Kind == EventItem && f.n.Load() == 0, ev.Kind != EventItem && ev.Kind != EventSliceError:
		return // the common case: nothing failed, nothing to forget
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Kind == EventItem {
		delete(f.last, ev.Thread)
	} else {
		if f.last == nil {
			f.last = map[infinity.ThreadID]error{}
		}
		f.last[ev.Thread] = ev.Err
	}
	f.n.Store(int32(len(f.last)))
}

func (rt *Runtime) failure(id infinity.ThreadID) error {
	if rt.failures.n.Load() == 0 {
		return nil
	}
	rt.failures.mu.Lock()
	defer rt.failures.mu.Unlock()
	return rt.failures.last[id]
}

// reached reports whether thread id is in the state until names.
func (rt *Runtime) reached(ctx context.Context, id infinity.ThreadID, until Until) (infinity.Item, bool, error) {
	info, err := rt.cfg.Conversations.Thread(ctx, id)
	if err != nil {
		return infinity.Item{}, false, fmt.Errorf("wait for %s: %w", id, err)
	}
	// Only the last item matters (a thread whose last item is the model's
	// text has no open call), so that is all that is read.
	n, err := rt.cfg.Conversations.Len(ctx, id)
	if err != nil {
		return infinity.Item{}, false, fmt.Errorf("wait for %s: %w", id, err)
	}
	var last infinity.Item
	if n > 0 {
		items, err := rt.cfg.Conversations.Items(ctx, id, n-1, n)
		if err != nil {
			return infinity.Item{}, false, fmt.Errorf("wait for %s: %w", id, err)
		}
		if len(items) > 0 {
			last = items[len(items)-1]
		}
	}
	switch until {
	case UntilClosed:
		return last, info.Closed, nil
	case UntilIdle:
		return last, info.Closed || !rt.Busy(id), nil
	}
	return last, info.Closed || last.Kind == infinity.KindAssistant && !rt.Busy(id), nil
}

// ThreadLister is a ConversationStore that lists its threads (the memory
// and disk stores): Runtime.Threads needs one.
type ThreadLister interface {
	// Threads returns every thread's info, oldest first.
	Threads(ctx context.Context) ([]infinity.ThreadInfo, error)
}

// ThreadStatus is a thread as a listing shows it.
type ThreadStatus struct {
	Info infinity.ThreadInfo
	// Busy: a slice of it runs or waits to run.
	Busy bool
	// Waiting is the tool call it waits on (nil: none; it waits for input
	// if its last item is the model's text).
	Waiting *infinity.ToolCall
	// Wakes is when a sleep it waits on ends (zero: not sleeping).
	Wakes time.Time
	// Items is how many items its own history holds; Usage is what its own
	// model responses used.
	Items int
	Usage infinity.Usage
}

// Threads lists the root threads (or with all every thread), oldest
// first, with what each is doing. It returns ErrNotImplemented when the
// ConversationStore cannot list its threads (ThreadLister).
func (rt *Runtime) Threads(ctx context.Context, all bool) ([]ThreadStatus, error) {
	l, ok := rt.cfg.Conversations.(ThreadLister)
	if !ok {
		return nil, fmt.Errorf("threads: the conversation store does not list its threads: %w", infinity.ErrNotImplemented)
	}
	infos, err := l.Threads(ctx)
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	var out []ThreadStatus
	for _, info := range infos {
		if !all && !info.IsRoot() {
			continue
		}
		st, err := rt.status(ctx, info)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Children lists a thread's children, in spawn order, with what each is
// doing. It returns ErrNotFound for an unknown thread.
func (rt *Runtime) Children(ctx context.Context, id infinity.ThreadID) ([]ThreadStatus, error) {
	kids, err := rt.cfg.Conversations.Children(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("children of %s: %w", id, err)
	}
	out := make([]ThreadStatus, 0, len(kids))
	for _, k := range kids {
		st, err := rt.status(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (rt *Runtime) status(ctx context.Context, info infinity.ThreadInfo) (ThreadStatus, error) {
	items, err := rt.cfg.Conversations.Items(ctx, info.ID, 0, -1)
	if err != nil {
		return ThreadStatus{}, fmt.Errorf("status of %s: %w", info.ID, err)
	}
	st := ThreadStatus{Info: info, Busy: rt.Busy(info.ID), Items: len(items), Usage: infinity.SumUsage(items)}
	if call := OpenCall(items); call != nil {
		st.Waiting = call.Call
		st.Wakes, _ = WakeTime(call)
	}
	return st, nil
}
