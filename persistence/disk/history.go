package disk

import (
	"container/list"
	"sync"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

// DefaultHistoryCache is the size, in bytes of item text (roughly), of the
// history the store keeps decoded for recently active threads.
const DefaultHistoryCache = 16 << 20

// historyCache keeps the decoded history of recently active threads: a
// slice reads its thread's whole history, and decoding it again on every
// slice would cost more than the slice. It is bounded by bytes (least
// recently used first out; a history over a 256th of the budget is not
// kept) and kept coherent by the writers: a commit appends its items to a
// cached history of the length it started from, under the thread's lock,
// once its batch is applied; a reader fills the cache only with a history
// as long as the thread's current header says.
type historyCache struct {
	mu sync.Mutex
	// gen counts the changes writers made (appends, drops): a reader
	// fills only if none happened since it started reading, so a history
	// read before a tree was deleted and its id reused cannot come back.
	gen    uint64
	budget int
	used   int
	lru    *list.List // of *histEntry, most recent first
	m      map[infinity.ThreadID]*list.Element
}

type histEntry struct {
	id    infinity.ThreadID
	items []infinity.Item // never changed in place: appends copy when full
	size  int
}

func (c *historyCache) init(budget int) {
	c.budget = budget
	c.lru = list.New()
	c.m = make(map[infinity.ThreadID]*list.Element)
}

// get returns a copy of items [from, to) of the thread's cached history
// when the cache holds all n items of it.
func (c *historyCache) get(id infinity.ThreadID, n, from, to int) ([]infinity.Item, bool) {
	if c.budget <= 0 {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.m[id]
	var items []infinity.Item
	if ok {
		he := e.Value.(*histEntry)
		if len(he.items) != n {
			c.mu.Unlock()
			return nil, false
		}
		c.lru.MoveToFront(e)
		items = he.items[from:to:to]
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return model.CloneItemsRoom(items), true // after the lock: items are never changed in place
}

// generation returns the writers' change count, for fill.
func (c *historyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill caches a thread's whole history read from the store, if no writer
// changed the cache since gen and its length is still current (current
// reports the thread's length now).
func (c *historyCache) fill(id infinity.ThreadID, items []infinity.Item, gen uint64, current func() int) {
	if c.budget <= 0 {
		return
	}
	size := itemsSize(items)
	if size > c.maxEntry() {
		return
	}
	own := model.CloneItems(items)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok || c.gen != gen || current() != len(items) {
		return
	}
	c.m[id] = c.lru.PushFront(&histEntry{id: id, items: own, size: size})
	c.used += size
	c.evict()
}

// appended records items committed after the first n of a thread's
// history; a cached history of another length is dropped.
func (c *historyCache) appended(id infinity.ThreadID, n int, items []infinity.Item) {
	if c.budget <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	e, ok := c.m[id]
	if !ok {
		return
	}
	he := e.Value.(*histEntry)
	if len(he.items) != n || he.size+itemsSize(items) > c.maxEntry() {
		c.remove(e)
		return
	}
	add := itemsSize(items)
	// Appending never writes into an array a reader may hold a slice of
	// past its length: readers' slices end at their length (see get).
	he.items = append(he.items, model.CloneItems(items)...)
	he.size += add
	c.used += add
	c.lru.MoveToFront(e)
	c.evict()
}

// fresh caches the empty history of a thread just created (its creator
// holds its lock and its batch is applied), so that its first commit
// appends to it and its next slice finds it.
func (c *historyCache) fresh(id infinity.ThreadID) { c.reset(id, true) }

// drop forgets a thread's history.
func (c *historyCache) drop(id infinity.ThreadID) { c.reset(id, false) }

// reset forgets a thread's cached history, and with empty caches an empty
// one in its place.
func (c *historyCache) reset(id infinity.ThreadID, empty bool) {
	if c.budget <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if e, ok := c.m[id]; ok {
		c.remove(e)
	}
	if empty {
		// An empty history still costs its entry: count it, so that
		// threads that never commit items stay bounded too.
		c.m[id] = c.lru.PushFront(&histEntry{id: id, size: emptyHistory})
		c.used += emptyHistory
		c.evict()
	}
}

func (c *historyCache) remove(e *list.Element) {
	he := e.Value.(*histEntry)
	c.lru.Remove(e)
	delete(c.m, he.id)
	c.used -= he.size
}

func (c *historyCache) evict() {
	for c.used > c.budget {
		c.remove(c.lru.Back())
	}
}

// maxEntry is the largest history kept: a 256th of the budget (at least
// 64 KiB, or the whole of a smaller budget), so that
// the cache holds many threads' histories rather than a few long ones
// (a long history is read from the engine each time; the many short
// ones of threads that sleep and wake are what the cache is for).
func (c *historyCache) maxEntry() int { return max(c.budget/256, min(c.budget, 64<<10)) }

// emptyHistory is what the cache counts for an empty history's entry.
const emptyHistory = 128

// itemsSize estimates what items take in memory.
func itemsSize(items []infinity.Item) int {
	n := 0
	for i := range items {
		it := &items[i]
		n += 160 + len(it.ID) + len(it.Text) + len(it.Model)
		if it.Call != nil {
			n += 64 + len(it.Call.ID) + len(it.Call.Name) + len(it.Call.Args)
		}
		if it.Result != nil {
			n += 96 + len(it.Result.CallID)
			for _, p := range it.Result.Parts {
				n += 64 + len(p.Text) + len(p.Data)
			}
			for _, d := range it.Result.Display {
				n += 48 + len(d.Content)
			}
		}
	}
	return n
}
