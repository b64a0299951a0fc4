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
// back-pressure: a slice's events wait for a slow follower (never past the
// follower's end or Close).
type watchers struct {
	n    atomic.Int32 // len(subs), read without the lock
	mu   sync.Mutex
	subs map[*watcher]struct{}
}

type watcher struct {
	ch   chan Event
	done <-chan struct{}
	// match says whether an event is the watcher's; it runs in publish,
	// one event at a time, so it may keep state.
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

// publish hands ev to every watcher it matches. It holds the lock while it
// waits, so events reach each watcher in commit order.
func (w *watchers) publish(ev Event, stopped <-chan struct{}) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for x := range w.subs {
		if !x.match(ev) {
			continue
		}
		select {
		case x.ch <- ev:
		case <-x.done:
		case <-stopped:
		}
	}
}

// subtree returns a match for the events of thread id and, with all, of
// every thread created below it from now on.
func subtree(id infinity.ThreadID, all bool) func(Event) bool {
	ids := map[infinity.ThreadID]bool{id: true}
	return func(ev Event) bool {
		if all && ev.Kind == EventThreadCreated && ids[ev.Info.Parent] {
			ids[ev.Info.ID] = true
		}
		return ids[ev.Thread]
	}
}

// Follow returns the events of thread id (and, with subtree, of the
// threads spawned below it from now on) as they are committed, from the
// call on, until ctx ends, the loop over them stops or the runtime closes.
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
			stop()
			rt.watchers.remove(x)
			cancel()
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
	x := &watcher{ch: make(chan Event, 64), done: ctx.Done(), match: subtree(id, all)}
	rt.watchers.add(x)
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
	defer cancel()
	x := rt.watch(ctx, id, false)
	defer rt.watchers.remove(x)
	// A slice's end is its last event; the mailbox is idle only a moment
	// later, so state is checked again shortly after each event too.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last, ok, err := rt.reached(ctx, id, until)
		if err != nil || ok {
			return last, err
		}
		select {
		case <-x.ch:
		case <-tick.C:
		case <-ctx.Done():
			return infinity.Item{}, fmt.Errorf("wait for %s to be %v: %w", id, until, ctx.Err())
		case <-rt.ctx.Done():
			return infinity.Item{}, fmt.Errorf("wait for %s: %w", id, ErrStopped)
		}
	}
}

// reached reports whether thread id is in the state until names.
func (rt *Runtime) reached(ctx context.Context, id infinity.ThreadID, until Until) (infinity.Item, bool, error) {
	info, err := rt.cfg.Conversations.Thread(ctx, id)
	if err != nil {
		return infinity.Item{}, false, fmt.Errorf("wait for %s: %w", id, err)
	}
	items, err := rt.cfg.Conversations.Items(ctx, id, 0, -1)
	if err != nil {
		return infinity.Item{}, false, fmt.Errorf("wait for %s: %w", id, err)
	}
	var last infinity.Item
	if len(items) > 0 {
		last = items[len(items)-1]
	}
	switch until {
	case UntilClosed:
		return last, info.Closed, nil
	case UntilIdle:
		return last, info.Closed || !rt.Busy(id), nil
	}
	answered := last.Kind == infinity.KindAssistant && OpenCall(items) == nil && !rt.Busy(id)
	return last, info.Closed || answered, nil
}

// ThreadLister is a ConversationStore that lists its threads (the memory
// and file stores): Runtime.Threads needs one.
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
