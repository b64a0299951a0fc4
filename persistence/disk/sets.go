package disk

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/infinity-runtime/infinity"
)

// setCache keeps, for recently used threads, the whole of small per-thread
// tables whose point reads dominate a slice: the applied ids ('A'), the
// waiting messages ('W', with their inbox numbers) and the processed marks
// ('P', with their expiry). Most of those reads ask for a key that is not
// there (a new message id), which only a complete set answers without
// asking the engine. A thread created by this process starts with its
// sets known to be empty (those the store holds nothing of); otherwise one
// prefix scan loads a set, and the thread's next checks are lookups in
// memory. Writers keep cached sets current under the threads' locks once
// their batch is applied; a reader fills a set only if no writer changed
// the shard meanwhile (gen). A set over maxSet entries is not kept (a
// marker says so, and reads of it go to the engine). The cache is bounded
// by entries (setCacheEntries; a set costs its members plus one, so empty
// sets count too), evicting whole sets at random. A set's array is never
// changed in place: the reader that filled it may still be searching it.
type setCache struct {
	shards [nStripes]setShard
}

type setID struct {
	tag byte
	id  infinity.ThreadID
}

type setShard struct {
	mu   sync.Mutex
	sets map[setID]memberSet
	n    int // cost held: a set counts its members plus one
	gen  uint64
}

// memberSet is a cached set: its members, or big when it is too big to
// keep. Sets are small (most hold none or one member), so a slice
// searched in order costs less memory than a map and no more time.
type memberSet struct {
	members []member
	big     bool
}

type member struct {
	key string
	v   uint64
}

func (ms memberSet) cost() int { return len(ms.members) + 1 }

func (ms memberSet) find(key string) int {
	for i := range ms.members {
		if ms.members[i].key == key {
			return i
		}
	}
	return -1
}

const (
	// maxSet is the largest set kept.
	maxSet = 256
	// setCacheEntries bounds the entries held, over every shard: about
	// 60 bytes each, empty sets included.
	setCacheEntries = 1 << 19
	perSetShard     = setCacheEntries / nStripes
)

// lookup answers from a cached set: cached is false when the set is not
// held (or too big), and gen is the shard's generation for fill.
func (c *setCache) lookup(i int, sid setID, key string) (v uint64, found, cached bool, gen uint64) {
	sh := &c.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ms, ok := sh.sets[sid]
	if !ok || ms.big {
		return 0, false, false, sh.gen
	}
	if j := ms.find(key); j >= 0 {
		return ms.members[j].v, true, true, sh.gen
	}
	return 0, false, true, sh.gen
}

// big reports whether the set is known to be too big to keep.
func (c *setCache) big(i int, sid setID) bool {
	sh := &c.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ms, ok := sh.sets[sid]
	return ok && ms.big
}

// fill keeps a set read from the engine (big: too big), unless a writer
// changed the shard since gen.
func (c *setCache) fill(i int, sid setID, ms memberSet, gen uint64) {
	sh := &c.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	sh.put(sid, ms)
}

// fresh records that a thread just created has its applied set empty,
// and its waiting and mark sets when its creator found none stored; the
// creator holds its lock and its batch is applied.
func (c *setCache) fresh(i int, ct createdThread) {
	sh := &c.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	sh.put(setID{tagApplied, ct.id}, memberSet{})
	if ct.noneWaiting {
		sh.put(setID{tagWaitsFor, ct.id}, memberSet{})
	}
	if ct.noMarks {
		sh.put(setID{tagMark, ct.id}, memberSet{})
	}
}

// put keeps a set, evicting others to stay within the bound.
func (sh *setShard) put(sid setID, ms memberSet) {
	if sh.sets == nil {
		sh.sets = make(map[setID]memberSet)
	}
	if old, ok := sh.sets[sid]; ok {
		sh.n -= old.cost()
		delete(sh.sets, sid)
	}
	sh.evict(ms.cost(), sid)
	sh.sets[sid] = ms
	sh.n += ms.cost()
}

// evict drops sets other than keep, at random, until room more fit.
func (sh *setShard) evict(room int, keep setID) {
	for sh.n+room > perSetShard && len(sh.sets) > 0 {
		for k, old := range sh.sets { // a random set
			if k == keep {
				if len(sh.sets) == 1 {
					return
				}
				continue
			}
			sh.n -= old.cost()
			delete(sh.sets, k)
			break
		}
	}
}

// update records a member a writer applied (or deleted).
func (c *setCache) update(i int, sid setID, key string, v uint64, deleted bool) {
	sh := &c.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	ms, ok := sh.sets[sid]
	if !ok || ms.big {
		return
	}
	j := ms.find(key)
	switch {
	case deleted && j >= 0:
		ms.members = slices.Delete(slices.Clone(ms.members), j, j+1)
		sh.sets[sid] = ms
		sh.n--
	case deleted:
	case j >= 0:
		ms.members = slices.Clone(ms.members)
		ms.members[j].v = v
		sh.sets[sid] = ms
	case len(ms.members) >= maxSet:
		sh.n -= ms.cost()
		sh.sets[sid] = memberSet{big: true} // now too big to keep
		sh.n++
	default:
		ms.members = append(slices.Clip(ms.members), member{key, v})
		sh.sets[sid] = ms
		sh.n++
		sh.evict(0, sid) // writers grow sets too: keep the bound
	}
}

// drop forgets a set (its keys were range-deleted).
func (c *setCache) drop(i int, sid setID) {
	sh := &c.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	if ms, ok := sh.sets[sid]; ok {
		sh.n -= ms.cost()
		delete(sh.sets, sid)
	}
}

// member reads one member of a thread's set from what is applied: the
// cache, else a scan of the set that fills it, else (a set too big to
// keep) a point read.
func (s *Store) member(tag byte, id infinity.ThreadID, key string) (uint64, bool, error) {
	i := s.stripes.index(id)
	sid := setID{tag, id}
	if s.empty(tag, id) {
		return 0, false, nil
	}
	v, found, cached, gen := s.sets.lookup(i, sid, key)
	if cached {
		return v, found, nil
	}
	k := append(threadKey(tag, string(id), len(key)), key...)
	if !s.sets.big(i, sid) {
		var ms memberSet
		prefix := threadKey(tag, string(id), 0)
		err := scanPrefix(s.db, prefix, func(mk, mv []byte) (bool, error) {
			if len(ms.members) == maxSet {
				ms = memberSet{big: true}
				return false, nil
			}
			ms.members = append(ms.members, member{string(mk[len(prefix):]), memberValue(mv)})
			return true, nil
		})
		if err != nil {
			return 0, false, err
		}
		s.sets.fill(i, sid, ms, gen)
		if !ms.big {
			if j := ms.find(key); j >= 0 {
				return ms.members[j].v, true, nil
			}
			return 0, false, nil
		}
	}
	b, closer, err := s.db.Get(k)
	if err == pebble.ErrNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, engineErr(err)
	}
	defer closer.Close()
	return memberValue(b), true, nil
}

// memberValue reads a member's 8-byte value (0 for the applied table's
// empty values).
func memberValue(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// pendingMember is a member a transaction wrote or deleted.
type pendingMember struct {
	v       uint64
	deleted bool
}

type memberKey struct {
	sid setID
	key string
}

// member reads a member as the transaction sees it: its own writes, else
// what is applied (the thread's lock keeps that current).
func (t *tx) member(tag byte, id infinity.ThreadID, key string) (uint64, bool, error) {
	if p, ok := t.members[memberKey{setID{tag, id}, key}]; ok {
		return p.v, !p.deleted, nil
	}
	return t.s.member(tag, id, key)
}

// setMember writes a member (value: 8 bytes, or empty for 'A').
func (t *tx) setMember(tag byte, id infinity.ThreadID, key string, v uint64) {
	k := append(threadKey(tag, string(id), len(key)), key...)
	if tag == tagApplied {
		t.set(k, nil)
	} else {
		t.set(k, binary.BigEndian.AppendUint64(nil, v))
	}
	t.noteMember(tag, id, key, v, false)
}

// delMember deletes a member.
func (t *tx) delMember(tag byte, id infinity.ThreadID, key string) {
	t.del(append(threadKey(tag, string(id), len(key)), key...))
	t.noteMember(tag, id, key, 0, true)
}

func (t *tx) noteMember(tag byte, id infinity.ThreadID, key string, v uint64, deleted bool) {
	if t.members == nil {
		t.members = make(map[memberKey]pendingMember)
	}
	t.members[memberKey{setID{tag, id}, key}] = pendingMember{v: v, deleted: deleted}
}

// dropSet range-deletes a thread's set.
func (t *tx) dropSet(tag byte, id infinity.ThreadID) error {
	p := threadKey(tag, string(id), 0)
	if err := t.b.DeleteRange(p, prefixEnd(p), nil); err != nil {
		return err
	}
	t.droppedSets = append(t.droppedSets, setID{tag, id})
	return nil
}

// publishSets tells the set cache what an applied transaction changed.
func (t *tx) publishSets() {
	t.publishOcc()
	for _, c := range t.created {
		t.s.sets.fresh(t.s.stripes.index(c.id), c)
	}
	for _, sid := range t.droppedSets {
		t.s.sets.drop(t.s.stripes.index(sid.id), sid)
	}
	for mk, p := range t.members {
		t.s.sets.update(t.s.stripes.index(mk.sid.id), mk.sid, mk.key, p.v, p.deleted)
	}
}

// occupancy counts, per slot of threads, the waiting messages ('W') and
// processed marks ('P') stored: a thread whose slot counts none has none,
// and its checks need neither the cache nor the engine. Most threads have
// no processed marks and, between their slices, nothing waiting. The
// counts are loaded at Open, raised while a mutation builds its batch and
// lowered once a batch that removed entries is applied, so they never
// count fewer entries than are stored.
type occupancy struct {
	w, p [nOccSlots]atomic.Int32
}

// nOccSlots is the number of occupancy slots per table (4 bytes each).
const nOccSlots = 1 << 16

func (o *occupancy) counts(tag byte) *[nOccSlots]atomic.Int32 {
	if tag == tagWaitsFor {
		return &o.w
	}
	if tag == tagMark {
		return &o.p
	}
	return nil
}

func (s *Store) occSlot(id infinity.ThreadID) int {
	return int(maphash.String(s.stripes.seed, string(id)) >> 16 % nOccSlots)
}

// empty reports whether the thread certainly has no entry in the table.
func (s *Store) empty(tag byte, id infinity.ThreadID) bool {
	c := s.occ.counts(tag)
	return c != nil && c[s.occSlot(id)].Load() <= 0
}

// loadOccupancy counts the stored waiting messages (also the store's
// waiting count: one index entry per waiting message) and marks.
func (s *Store) loadOccupancy() error {
	for _, tag := range []byte{tagWaitsFor, tagMark} {
		c := s.occ.counts(tag)
		n := int64(0)
		err := scanPrefix(s.db, []byte{tag}, func(k, _ []byte) (bool, error) {
			id, _, ok := splitThreadKey(k)
			if !ok {
				return false, fmt.Errorf("disk store: key %q: malformed: %w", k, ErrCorrupt)
			}
			c[s.occSlot(infinity.ThreadID(id))].Add(1)
			n++
			return true, nil
		})
		if err != nil {
			return err
		}
		if tag == tagWaitsFor {
			s.waiting.Store(n)
		}
	}
	return nil
}

// occAdd raises a count now (before the batch is applied).
func (t *tx) occAdd(tag byte, id infinity.ThreadID) {
	if c := t.s.occ.counts(tag); c != nil {
		c[t.s.occSlot(id)].Add(1)
	}
}

// occRemove lowers a count once the batch is applied.
func (t *tx) occRemove(tag byte, id infinity.ThreadID, n int) {
	if t.s.occ.counts(tag) != nil && n > 0 {
		t.occGone = append(t.occGone, occChange{tag, id, n})
	}
}

type occChange struct {
	tag byte
	id  infinity.ThreadID
	n   int
}

// publishOcc applies the removals of an applied batch.
func (t *tx) publishOcc() {
	for _, g := range t.occGone {
		t.s.occ.counts(g.tag)[t.s.occSlot(g.id)].Add(-int32(g.n))
	}
}
