package disk

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/infinity-runtime/infinity"
)

// locks names what a mutation locks: every thread (all), or the threads
// it reads and changes. Mutations of different threads build their
// batches in parallel; a mutation that creates or deletes threads (it
// reads other threads and changes the thread count) locks them all.
type locks struct {
	all bool
	ids []infinity.ThreadID
	// deletes says the mutation only deletes: it is not refused when
	// free space runs under the reserve (deleting is how space comes
	// back).
	deletes bool
}

var everything = locks{all: true}

func only(ids ...infinity.ThreadID) locks { return locks{ids: ids} }

// nStripes is the number of thread lock stripes.
const nStripes = 256

// stripes are the thread locks: a thread's lock is stripe hash(id) mod
// nStripes. A mutation takes its stripes in ascending order.
type stripes struct {
	mu   [nStripes]sync.Mutex
	seed maphash.Seed
	// last is the ticket of the last durable batch that touched a thread
	// of each slot (many more slots than stripes, so that a read seldom
	// waits for another thread's write), lastAll that of the last one
	// built under every stripe: a read of a thread waits for those only.
	last    [nTicketSlots]atomic.Uint64
	lastAll atomic.Uint64
}

// nTicketSlots is the number of read-barrier slots (8 bytes each).
const nTicketSlots = 1 << 14

func (st *stripes) index(id infinity.ThreadID) int {
	return int(maphash.String(st.seed, string(id)) % nStripes)
}

func (st *stripes) slot(id infinity.ThreadID) int {
	return int(maphash.String(st.seed, string(id)) % nTicketSlots)
}

// ticket returns the last durable batch that touched one of the threads.
func (st *stripes) ticket(ids ...infinity.ThreadID) uint64 {
	t := st.lastAll.Load()
	for _, id := range ids {
		t = max(t, st.last[st.slot(id)].Load())
	}
	return t
}

// applied records ticket t for lk's threads. A slot is shared by threads
// of different stripes: it only ever grows.
func (st *stripes) applied(lk locks, t uint64) {
	if lk.all {
		storeMax(&st.lastAll, t)
		return
	}
	for _, id := range lk.ids {
		storeMax(&st.last[st.slot(id)], t)
	}
}

func storeMax(a *atomic.Uint64, t uint64) {
	for {
		old := a.Load()
		if old >= t || a.CompareAndSwap(old, t) {
			return
		}
	}
}

// lock takes lk's stripes and returns the function that releases them.
func (st *stripes) lock(lk locks) func() {
	if lk.all {
		for i := range st.mu {
			st.mu[i].Lock()
		}
		return func() {
			for i := range st.mu {
				st.mu[i].Unlock()
			}
		}
	}
	var buf [8]int
	idx := buf[:0]
	for _, id := range lk.ids {
		i := st.index(id)
		if !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		st.mu[i].Lock()
	}
	return func() {
		for _, i := range idx {
			st.mu[i].Unlock()
		}
	}
}

// errUnchanged is returned by a mutation's build when there is nothing to
// write: the mutation succeeds without a write.
var errUnchanged = errors.New("unchanged")

// tx is one mutation being built: an indexed batch (reads see its own
// writes) and the counters' changes.
type tx struct {
	s       *Store
	b       *pebble.Batch
	threads int64 // change of the thread count
	waiting int64 // change of the inbox size
	headers map[infinity.ThreadID]*header
	dirty   map[infinity.ThreadID]bool
	err     error // first read error of a CommitView call
	deleted []infinity.ThreadID
	// created are the threads the mutation creates: their history and
	// applied set start empty in the caches, and so do their waiting and
	// mark sets when nothing was stored for the id before (the inbox and
	// the state store take entries for threads not created yet).
	created []createdThread
	applied bool
	// appends are the commits' new items, for the history cache.
	appends []appendedItems
	// members and droppedSets are the changes to the per-thread sets, for
	// the set cache (and the transaction's own reads of them).
	members     map[memberKey]pendingMember
	droppedSets []setID
	occGone     []occChange
}

type createdThread struct {
	id                   infinity.ThreadID
	noneWaiting, noMarks bool
}

type appendedItems struct {
	id    infinity.ThreadID
	from  int
	items []infinity.Item
}

// enter starts an operation: false after Close. Every operation holds the
// lifecycle read lock until it returns, so Close waits for them.
func (s *Store) enter() bool {
	s.life.RLock()
	if s.closed.Load() {
		s.life.RUnlock()
		return false
	}
	return true
}

func (s *Store) exit() { s.life.RUnlock() }

// read runs f, then waits until every write that f may have seen is
// durable (reads that span threads): a batch's ticket is published before
// the batch becomes visible, so the newest ticket read after f covers
// everything f read.
func read[T any](s *Store, ctx context.Context, f func() (T, error)) (T, error) {
	return readThen(s, ctx, f, s.dur.next.Load)
}

// readOf is read for a read of the thread id (and what it leads to, such
// as the ancestors of Lineage, which name their own tickets with
// ids): it waits for the writes to those threads only.
func readOf[T any](s *Store, ctx context.Context, id infinity.ThreadID, f func() (T, error)) (T, error) {
	return readThen(s, ctx, f, func() uint64 { return s.stripes.ticket(id) })
}

// readThen runs f and waits until the ticket ticket returns after it is
// durable, before returning f's result.
func readThen[T any](s *Store, ctx context.Context, f func() (T, error), ticket func() uint64) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if !s.enter() {
		return zero, ErrStoreClosed
	}
	defer s.exit()
	v, err := f()
	if t := ticket(); t > 0 {
		if werr := s.dur.wait(t); werr != nil {
			return zero, werr
		}
	}
	return v, err
}

// mutate builds a batch with build under the locks of the threads it
// reads and changes (lk) and applies it to be made durable. It returns
// the ticket to wait for: the batch's or, when build wrote nothing or
// failed, that of the last write of what its checks read. sync false
// applies without making it durable (lost in a crash: only for changes a
// crash may take back).
func (s *Store) mutate(ctx context.Context, sync bool, lk locks, build func(t *tx) error) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !s.enter() {
		return 0, ErrStoreClosed
	}
	defer s.exit()
	if !lk.deletes {
		if err := s.space.check(); err != nil {
			return 0, err
		}
	}
	defer s.stripes.lock(lk)()
	if err := s.dur.failed(); err != nil {
		return 0, err
	}
	t := &tx{s: s, b: s.db.NewIndexedBatch()}
	err := build(t)
	if err == nil {
		err = t.err
	}
	if err == nil {
		err = t.flush()
	}
	defer t.publish()
	if err != nil || t.b.Empty() {
		t.b.Close()
		if errors.Is(err, errUnchanged) {
			err = nil
		}
		// Nothing written: what the checks read (a message already
		// waiting, a taken id, an applied input) may still be on its way
		// to the disk; the caller answers once it is there.
		if lk.all {
			return s.dur.next.Load(), err
		}
		return s.stripes.ticket(lk.ids...), err
	}
	if !sync {
		err := s.db.Apply(t.b, pebble.NoSync)
		t.b.Close()
		if err != nil {
			return 0, fmt.Errorf("disk store: write: %w", err)
		}
		t.commitCounters()
		return 0, nil
	}
	ticket, err := s.dur.apply(s.db, t.b, func(ticket uint64) { s.stripes.applied(lk, ticket) })
	if err != nil {
		return 0, err
	}
	t.commitCounters()
	return ticket, nil
}

// mutateWait is mutate that waits until the change, or what its checks
// read, is durable.
func (s *Store) mutateWait(ctx context.Context, lk locks, build func(t *tx) error) error {
	ticket, err := s.mutate(ctx, true, lk, build)
	if ticket > 0 {
		if werr := s.dur.wait(ticket); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// flush writes the changed headers and counters into the batch.
func (t *tx) flush() error {
	for id := range t.dirty {
		v, err := encode(t.headers[id])
		if err != nil {
			return err
		}
		t.set(threadKey(tagThread, string(id), 0), v)
	}
	if t.threads != 0 {
		if err := t.b.Merge(keyThreads, counterBytes(t.threads), nil); err != nil {
			return err
		}
	}
	return nil
}

// publish tells the header cache what the mutation changed: its headers
// once applied (applied is set by commitCounters), and that its deleted
// threads are gone.
func (t *tx) publish() {
	if !t.applied {
		return
	}
	for id := range t.dirty {
		t.s.headers.set(t.s.stripes.index(id), id, t.headers[id])
	}
	for _, id := range t.deleted {
		t.s.headers.set(t.s.stripes.index(id), id, nil)
		t.s.hist.drop(id)
	}
	for _, c := range t.created {
		t.s.hist.fresh(c.id)
	}
	for _, a := range t.appends {
		t.s.hist.appended(a.id, a.from, a.items)
	}
	t.publishSets()
}

func (t *tx) commitCounters() {
	t.applied = true
	t.s.threads.Add(t.threads)
	t.s.waiting.Add(t.waiting)
}

func (t *tx) set(k, v []byte) {
	if err := t.b.Set(k, v, nil); err != nil && t.err == nil {
		t.err = err
	}
}

func (t *tx) del(k []byte) {
	if err := t.b.Delete(k, nil); err != nil && t.err == nil {
		t.err = err
	}
}

// header returns a thread's header as this transaction sees it (nil for
// an unknown thread); a changed header must be marked with touch.
func (t *tx) header(id infinity.ThreadID) (*header, error) {
	if h, ok := t.headers[id]; ok {
		return h, nil
	}
	h, err := t.s.header(t.b, id)
	if err != nil {
		return nil, err
	}
	if t.headers == nil {
		t.headers = make(map[infinity.ThreadID]*header)
	}
	t.headers[id] = h
	return h, nil
}

// create adds a new thread's header.
func (t *tx) create(info infinity.ThreadInfo) {
	if t.headers == nil {
		t.headers = make(map[infinity.ThreadID]*header)
	}
	t.headers[info.ID] = &header{Info: info}
	t.touch(info.ID)
	t.threads++
	t.created = append(t.created, createdThread{info.ID, t.s.empty(tagWaitsFor, info.ID), t.s.empty(tagMark, info.ID)})
}

func (t *tx) touch(id infinity.ThreadID) {
	if t.dirty == nil {
		t.dirty = make(map[infinity.ThreadID]bool)
	}
	t.dirty[id] = true
}

// header reads a thread's header through the cache: nil for an unknown
// thread. r is the store (a reader) or a mutation's batch (whose locks
// keep the thread's cached header current).
func (s *Store) header(r pebble.Reader, id infinity.ThreadID) (*header, error) {
	i := s.stripes.index(id)
	cached, ok, gen := s.headers.get(i, id)
	if ok {
		return &cached, nil
	}
	h, err := readHeader(r, id)
	if err != nil || h == nil {
		return nil, err
	}
	s.headers.fill(i, id, *h, gen)
	return h, nil
}

// readHeader reads a thread's header from r: nil for an unknown thread.
func readHeader(r pebble.Reader, id infinity.ThreadID) (*header, error) {
	k := threadKey(tagThread, string(id), 0)
	var h header
	ok, err := getJSON(r, k, &h)
	if err != nil || !ok {
		return nil, err
	}
	return &h, nil
}

// getJSON reads and decodes a value; false when the key is absent.
func getJSON(r pebble.Reader, k []byte, v any) (bool, error) {
	b, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, engineErr(err)
	}
	defer closer.Close()
	return true, decode(k, b, v)
}

// engineErr wraps an engine error: corruption as ErrCorrupt.
func engineErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("disk store: %w: %v", ErrCorrupt, err)
	}
	return fmt.Errorf("disk store: %w", err)
}

// scan calls f with each key and value under prefix, in key order, until f
// returns false or an error. The key and value are valid only during the
// call.
func scan(r pebble.Reader, lower, upper []byte, f func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return engineErr(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return engineErr(err)
		}
		more, err := f(it.Key(), v)
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return engineErr(err)
	}
	return nil
}

// scanPrefix is scan over every key starting with prefix.
func scanPrefix(r pebble.Reader, prefix []byte, f func(k, v []byte) (bool, error)) error {
	return scan(r, prefix, prefixEnd(prefix), f)
}
