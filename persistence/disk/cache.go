package disk

import (
	"sync"

	"github.com/infinity-runtime/infinity"
)

// headerCache keeps recently used thread headers in memory: every read of
// a thread and every commit starts with its header. It is bounded
// (DefaultHeaderCache entries, evicted at random when a shard is full) and
// kept coherent by the writers: a mutation updates the headers it changed
// once its batch is applied, under the threads' locks. A reader that
// missed fills the cache only if no writer changed the shard meanwhile
// (gen), so it never puts back a header older than the stored one.
type headerCache struct {
	shards [nStripes]cacheShard
	per    int // entries per shard
}

type cacheShard struct {
	mu  sync.Mutex
	m   map[infinity.ThreadID]header
	gen uint64
}

// DefaultHeaderCache is how many thread headers the store keeps in memory.
const DefaultHeaderCache = 1 << 16

func (c *headerCache) init(entries int) {
	c.per = max(entries/nStripes, 1)
	for i := range c.shards {
		c.shards[i].m = make(map[infinity.ThreadID]header)
	}
}

// get returns a cached header, and the shard's generation for put.
func (c *headerCache) get(i int, id infinity.ThreadID) (header, bool, uint64) {
	sh := &c.shards[i]
	sh.mu.Lock()
	h, ok := sh.m[id]
	g := sh.gen
	sh.mu.Unlock()
	return h, ok, g
}

// fill caches a header read from the store, unless a writer changed the
// shard since gen was read.
func (c *headerCache) fill(i int, id infinity.ThreadID, h header, gen uint64) {
	sh := &c.shards[i]
	sh.mu.Lock()
	if sh.gen == gen {
		sh.insert(id, h, c.per)
	}
	sh.mu.Unlock()
}

// set records a header a writer applied (nil: the thread was deleted).
func (c *headerCache) set(i int, id infinity.ThreadID, h *header) {
	sh := &c.shards[i]
	sh.mu.Lock()
	sh.gen++
	if h == nil {
		delete(sh.m, id)
	} else {
		sh.insert(id, *h, c.per)
	}
	sh.mu.Unlock()
}

func (sh *cacheShard) insert(id infinity.ThreadID, h header, per int) {
	if _, ok := sh.m[id]; !ok && len(sh.m) >= per {
		for k := range sh.m { // a random entry
			delete(sh.m, k)
			break
		}
	}
	sh.m[id] = h
}
