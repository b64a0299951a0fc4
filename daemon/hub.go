package daemon

import (
	"slices"
	"sync"

	infinity "github.com/infinity-runtime/infinity"
)

// hub wakes live views (logs --follow) when their thread changes. A poke
// carries no data: the view reads what is new from the store, so a missed
// or merged poke loses nothing.
type hub struct {
	mu   sync.Mutex
	subs map[infinity.ThreadID]map[chan struct{}]struct{}
	// watchers follow every thread (the UI's event stream).
	watchers map[*watcher]struct{}
	done     chan struct{}
	shut     bool
}

// watchKeep bounds the ids a watcher collects between two reads; past it
// the watcher says only that many changed.
const watchKeep = 256

// watcher collects the ids of the threads that changed since its last
// take, for one event stream of every thread.
type watcher struct {
	mu   sync.Mutex
	ids  map[infinity.ThreadID]struct{}
	many bool
	// poked has a value when something changed since the last take.
	poked chan struct{}
}

func (w *watcher) add(id infinity.ThreadID) {
	w.mu.Lock()
	if !w.many {
		if len(w.ids) >= watchKeep {
			w.many, w.ids = true, nil
		} else {
			w.ids[id] = struct{}{}
		}
	}
	w.mu.Unlock()
	select {
	case w.poked <- struct{}{}:
	default:
	}
}

// take returns the changed ids (sorted) and starts over; many says more
// changed than the watcher keeps (ids is then nil).
func (w *watcher) take() (ids []infinity.ThreadID, many bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range w.ids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	many = w.many
	w.ids, w.many = map[infinity.ThreadID]struct{}{}, false
	return ids, many
}

// watch returns a watcher of every thread and a function that ends it.
func (h *hub) watch() (*watcher, func()) {
	w := &watcher{ids: map[infinity.ThreadID]struct{}{}, poked: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watchers == nil {
		h.watchers = map[*watcher]struct{}{}
	}
	h.watchers[w] = struct{}{}
	return w, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.watchers, w)
	}
}

func newHub() *hub {
	return &hub{subs: map[infinity.ThreadID]map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

// subscribe returns a channel poked on every change of the thread, and a
// function that ends the subscription.
func (h *hub) subscribe(id infinity.ThreadID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
	}
}

// followed reports whether a live view follows the thread.
func (h *hub) followed(id infinity.ThreadID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[id]) > 0
}

func (h *hub) poke(id infinity.ThreadID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	for w := range h.watchers {
		w.add(id)
	}
}

// close ends every live view (the daemon is stopping).
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.shut {
		h.shut = true
		close(h.done)
	}
}
