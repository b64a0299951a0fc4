package daemon

import (
	"sync"

	infinity "github.com/infinity-runtime/infinity"
)

// hub wakes live views (logs --follow) when their thread changes. A poke
// carries no data: the view reads what is new from the store, so a missed
// or merged poke loses nothing.
type hub struct {
	mu   sync.Mutex
	subs map[infinity.ThreadID]map[chan struct{}]struct{}
	done chan struct{}
	shut bool
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
