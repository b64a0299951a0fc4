package file

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/dirlock"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

// ErrCorrupt is wrapped by the error Open returns when the snapshot or a
// journal segment is damaged other than by a torn tail. The message names
// the file and the byte offset of the damaged record.
var ErrCorrupt = errors.New("file store: corrupt data")

// ErrLocked is wrapped by the error Open returns when the directory is
// already open (in this process or another).
var ErrLocked = dirlock.ErrLocked

// DefaultCompactThreshold is the journal size past which a Store compacts
// in the background unless WithCompactThreshold says otherwise.
const DefaultCompactThreshold = 64 << 20

const (
	snapshotName = "snapshot"
	snapshotTmp  = "snapshot.tmp"
	lockName     = "LOCK"
)

// Option configures Open.
type Option func(*options)

type options struct {
	clock     infinity.Clock
	threshold int64
	logger    *slog.Logger
}

// WithClock sets the clock the state store measures processed-mark expiry
// on (default infinity.SystemClock{}).
func WithClock(c infinity.Clock) Option { return func(o *options) { o.clock = c } }

// WithCompactThreshold sets the journal segment size in bytes past which the
// store compacts in the background; 0 or less disables background
// compaction (Compact still works).
func WithCompactThreshold(bytes int64) Option { return func(o *options) { o.threshold = bytes } }

// WithLogger sets the logger for torn tails, leftover files and background
// compaction failures (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Stats counts journal activity since Open.
type Stats struct {
	// Records is how many records were made durable.
	Records int64
	// Fsyncs is how many journal fsyncs made them durable; Records/Fsyncs
	// is the group-commit factor.
	Fsyncs int64
	// Bytes is how many journal bytes were written.
	Bytes int64
}

// Store keeps a ConversationStore and a StateStore durable in one
// directory. It is safe for concurrent use. Open it with Open and release it
// with Close.
type Store struct {
	dir   string
	opts  options
	lock  *os.File
	j     *journal
	conv  *convStore
	state *stateStore

	compactMu  sync.Mutex // serialises Compact and Close
	compacting atomic.Bool
	closed     atomic.Bool
}

// Open opens (creating if needed) the store in dir and replays its snapshot
// and journal. A torn tail of the last journal segment is truncated and
// logged; any other damage fails with an error wrapping ErrCorrupt, and
// then no file is modified. A directory that is already open fails with
// ErrLocked.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{threshold: DefaultCompactThreshold, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if err := private(dir); err != nil {
		return nil, err
	}
	lock, err := dirlock.Lock(dir, lockName)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: o, lock: lock}
	s.conv = newConvStore(s)
	s.state = newStateStore(s, o.clock)
	if err := s.load(); err != nil {
		dirlock.Unlock(lock)
		return nil, err
	}
	return s, nil
}

// private makes the store's directory 0700 and its files 0600, whatever
// modes an older version or the user left: the histories are the user's
// alone.
func private(dir string) error {
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil {
			return fmt.Errorf("file store: %w", err)
		}
	}
	return nil
}

// Conversations returns the store's infinity.ConversationStore.
func (s *Store) Conversations() infinity.ConversationStore { return s.conv }

// State returns the store's infinity.StateStore.
func (s *Store) State() infinity.StateStore { return s.state }

// Stats returns the journal counters.
func (s *Store) Stats() Stats {
	return Stats{Records: s.j.records.Load(), Fsyncs: s.j.fsyncs.Load(), Bytes: s.j.bytes.Load()}
}

// Close waits for a running compaction, makes everything pending durable,
// closes the files and releases the directory. Mutations and Compact after
// Close fail with ErrStoreClosed; reads still see the state as it was.
// Closing twice is a no-op.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	err := s.j.close()
	if uerr := dirlock.Unlock(s.lock); err == nil {
		err = uerr
	}
	return err
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func segmentName(n uint64) string { return fmt.Sprintf("journal-%016d.log", n) }

// listSegments returns the journal segment numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "journal-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "journal-"), ".log"), 10, 64)
		if err != nil || n == 0 {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

func corrupt(path string, off int, format string, args ...any) error {
	return fmt.Errorf("file store: %s: offset %d: %s: %w", path, off, fmt.Sprintf(format, args...), ErrCorrupt)
}

// load replays the snapshot and the journal. It modifies no file until
// everything has been read and checked.
func (s *Store) load() error {
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	base := uint64(1)
	snapPath := s.path(snapshotName)
	data, err := os.ReadFile(snapPath)
	switch {
	case err == nil:
		if base, err = s.loadSnapshot(snapPath, data); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("file store: %w", err)
	}
	var replay, stale []uint64
	for _, n := range segs {
		if n < base {
			stale = append(stale, n)
		} else {
			replay = append(replay, n)
		}
	}
	for i, n := range replay {
		if n != base+uint64(i) {
			return corrupt(s.path(segmentName(base+uint64(i))), 0, "journal segment missing (found %s)", segmentName(n))
		}
	}
	cur, keep := base, int64(-1)
	for i, n := range replay {
		path := s.path(segmentName(n))
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("file store: %w", err)
		}
		last := i == len(replay)-1
		end, err := s.replaySegment(path, data, last)
		if err != nil {
			return err
		}
		if last {
			cur = n
			if end < len(data) {
				keep = int64(end)
				s.opts.logger.Warn("file store: truncating torn journal tail",
					"file", path, "offset", end, "dropped_bytes", len(data)-end)
			}
		}
	}

	// Everything checked: now tidy up and open the segment to append to.
	for _, n := range stale {
		path := s.path(segmentName(n))
		s.opts.logger.Info("file store: removing journal segment covered by the snapshot", "file", path)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file store: %w", err)
		}
	}
	if err := os.Remove(s.path(snapshotTmp)); err == nil {
		s.opts.logger.Info("file store: removed unfinished snapshot", "file", s.path(snapshotTmp))
	}
	f, err := os.OpenFile(s.path(segmentName(cur)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	if keep >= 0 {
		if err := f.Truncate(keep); err != nil {
			f.Close()
			return fmt.Errorf("file store: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("file store: %w", err)
		}
	}
	if len(replay) == 0 || len(stale) > 0 {
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file store: %w", err)
	}
	s.j = newJournal(f, cur, fi.Size(), s.opts.threshold, s.maybeCompact)
	return nil
}

// replaySegment applies the records of one journal segment and returns the
// offset after the last whole record. Only the last segment may have a torn
// tail: a record cut short by the end of the file, a whole last record
// whose checksum fails, or a damaged header after which no valid record
// follows. Anything else is ErrCorrupt.
func (s *Store) replaySegment(path string, data []byte, last bool) (int, error) {
	apply := func(f frame, rec *record) error {
		if err := s.replay(*rec); err != nil {
			return corrupt(path, f.off, "replay %s record: %v", rec.Op, err)
		}
		return nil
	}
	// A torn tail keeps the records before it.
	return replayFrames(path, data, apply, func(off, next int, r frameResult) (int, error) {
		switch {
		case r == frameShort && last:
			return off, nil
		case r == frameShort:
			return 0, corrupt(path, off, "record cut short in a closed segment")
		case r == frameBadBody && last && next == len(data):
			return off, nil
		case r == frameBadBody:
			return 0, corrupt(path, off, "record checksum mismatch")
		case last && !validFrameAfter(data, off):
			return off, nil
		default:
			return 0, corrupt(path, off, "record header checksum mismatch")
		}
	})
}

// replayFrames decodes and applies data's records in order (see batch). At
// a damaged frame it applies the records before it and returns what bad
// says (the end of the good records, or an error); otherwise the end of
// data.
func replayFrames(path string, data []byte, apply func(frame, *record) error, bad func(off, next int, r frameResult) (int, error)) (int, error) {
	var b batch
	off := 0
	for off < len(data) {
		payload, next, r := parseFrame(data, off)
		if r != frameOK {
			if err := b.flush(path, apply); err != nil {
				return 0, err
			}
			return bad(off, next, r)
		}
		if err := b.add(frame{off: off, next: next, payload: payload}, path, apply); err != nil {
			return 0, err
		}
		off = next
	}
	if err := b.flush(path, apply); err != nil {
		return 0, err
	}
	return off, nil
}

// frame is one whole record of a journal segment or a snapshot.
type frame struct {
	off, next int
	payload   []byte
}

// replayBatch is how many records a batch decodes at once.
const replayBatch = 1024

// batch decodes records in parallel and applies them in order. Decoding
// (encoding/json) is most of the time a restart takes; applying them to
// the in-memory model stays sequential.
type batch struct {
	frames []frame
	recs   []record
}

// add queues f and, once the batch is full, decodes and applies it.
func (b *batch) add(f frame, path string, apply func(frame, *record) error) error {
	b.frames = append(b.frames, f)
	if len(b.frames) < replayBatch {
		return nil
	}
	return b.flush(path, apply)
}

// flush decodes the queued records on up to GOMAXPROCS goroutines, then
// applies them in order; a record that does not decode is reported at its
// offset (the records before it are applied first).
func (b *batch) flush(path string, apply func(frame, *record) error) error {
	n := len(b.frames)
	if n == 0 {
		return nil
	}
	if cap(b.recs) < n {
		b.recs = make([]record, n)
	}
	recs := b.recs[:n]
	clear(recs)
	errs := make([]error, n)
	workers := min(runtime.GOMAXPROCS(0), (n+63)/64)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				errs[i] = json.Unmarshal(b.frames[i].payload, &recs[i])
			}
		})
	}
	wg.Wait()
	for i, f := range b.frames {
		if errs[i] != nil {
			return corrupt(path, f.off, "decode record: %v", errs[i])
		}
		if err := apply(f, &recs[i]); err != nil {
			return err
		}
	}
	b.frames = b.frames[:0]
	clear(recs) // the model keeps what it needs; drop the rest
	return nil
}

// replay applies one journal record to the in-memory state.
func (s *Store) replay(r record) error {
	c, st := s.conv, s.state
	switch r.Op {
	case opCreate:
		if r.Info == nil {
			return errors.New("no thread info")
		}
		if c.m.Has(r.Info.ID) {
			return fmt.Errorf("thread %s exists", r.Info.ID)
		}
		c.m.ApplyCreate(*r.Info)
	case opCommit:
		if r.Commit == nil {
			return errors.New("no commit")
		}
		if err := c.m.CheckCommit(*r.Commit); err != nil {
			return err
		}
		c.m.ApplyCommit(*r.Commit, r.Commit.Items, r.Commit.Outbox)
		st.m.ApplyDrop(r.Commit.Thread, r.Commit.Applied) // the commit consumed them
		st.m.ApplyOutbox(r.Commit.Outbox)                 // and put its outbox's messages
	case opMarkSent:
		if _, err := c.m.CheckMarkSent(r.Thread, r.IDs); err != nil {
			return err
		}
		c.m.ApplyMarkSent(r.Thread, r.IDs)
	case opMark:
		st.m.ApplyMark(r.Thread, r.Msgs, r.Now, r.Exp)
	case opPut:
		if r.Queued == nil {
			return errors.New("no message")
		}
		st.m.ApplyPut(r.Queued.Message, r.Queued.At)
	case opDrop:
		st.m.ApplyDrop(r.Thread, r.Msgs)
	case opSave:
		if r.State == nil {
			return errors.New("no state")
		}
		if have := st.m.Version(r.Thread); r.Version != have+1 {
			return fmt.Errorf("state %s version %d after %d", r.Thread, r.Version, have)
		}
		st.m.ApplySave(r.Thread, *r.State, r.Version)
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	return nil
}

// loadSnapshot restores the snapshot and returns the first journal segment
// it does not cover. A snapshot is written whole and renamed into place, so
// any damage is ErrCorrupt.
func (s *Store) loadSnapshot(path string, data []byte) (uint64, error) {
	var base uint64
	n := 0
	done := false
	apply := func(f frame, rec *record) error {
		off, next := f.off, f.next
		if done {
			return corrupt(path, off, "record after the snapshot trailer")
		}
		if n == 0 && rec.Op != opSnapHeader {
			return corrupt(path, off, "snapshot does not start with a header")
		}
		switch rec.Op {
		case opSnapHeader:
			if n != 0 || rec.Base == 0 {
				return corrupt(path, off, "bad snapshot header")
			}
			base = rec.Base
		case opSnapThread:
			if rec.Snap == nil {
				return corrupt(path, off, "empty thread record")
			}
			s.conv.m.Restore(model.ThreadData(*rec.Snap))
		case opSnapState:
			if rec.State == nil {
				return corrupt(path, off, "empty state record")
			}
			s.state.m.ApplySave(rec.Thread, *rec.State, rec.Version)
		case opSnapMarks:
			for _, m := range rec.Marks {
				s.state.m.RestoreMark(model.Mark(m))
			}
		case opSnapInbox:
			for _, q := range rec.Inbox {
				s.state.m.ApplyPut(q.Message, q.At)
			}
		case opSnapTrailer:
			if rec.Count != n || next != len(data) {
				return corrupt(path, off, "bad snapshot trailer")
			}
			s.state.m.RestoreDone()
			done = true
			return nil
		default:
			return corrupt(path, off, "unknown snapshot record %q", rec.Op)
		}
		n++
		return nil
	}
	off, err := replayFrames(path, data, apply, func(off, _ int, _ frameResult) (int, error) {
		return 0, corrupt(path, off, "damaged snapshot record")
	})
	if err != nil {
		return 0, err
	}
	if !done {
		return 0, corrupt(path, off, "snapshot has no trailer")
	}
	return base, nil
}

// maybeCompact is the journal's size trigger: it compacts in the
// background, once at a time.
func (s *Store) maybeCompact() {
	if s.closed.Load() || !s.compacting.CompareAndSwap(false, true) {
		return
	}
	defer s.compacting.Store(false)
	if err := s.Compact(); err != nil && !errors.Is(err, ErrStoreClosed) {
		s.opts.logger.Error("file store: background compaction failed", "dir", s.dir, "err", err)
	}
}

// snapshotData is the state captured for a snapshot. Items, children and
// inline applied ids are shared with the live store: they are append-only,
// and the captured slices end at their length at capture time.
type snapshotData struct {
	conv   model.ConversationsCapture
	states []model.Saved
	marks  []model.Mark
	inbox  []infinity.Queued
}

// Compact writes the whole state to a new snapshot and drops the journal
// segments it covers. Writers are held back only while the journal switches
// to a new segment (one pending fsync at most) and the state is captured
// (a shallow copy); the snapshot is written without any store lock.
func (s *Store) Compact() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if s.closed.Load() {
		return ErrStoreClosed
	}

	s.conv.mu.Lock()
	s.state.mu.Lock()
	newSeg, err := s.rotate()
	var snap snapshotData
	if err == nil {
		snap = s.capture()
	}
	s.state.mu.Unlock()
	s.conv.mu.Unlock()
	if err != nil {
		return err
	}

	if err := s.writeSnapshot(snap, newSeg); err != nil {
		return err
	}
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	for _, n := range segs {
		if n < newSeg {
			if err := os.Remove(s.path(segmentName(n))); err != nil {
				return fmt.Errorf("file store: %w", err)
			}
		}
	}
	return syncDir(s.dir)
}

// rotate waits until the journal is idle and switches it to a new segment,
// whose number it returns. The caller holds both stores' locks, so nothing
// is appended meanwhile.
func (s *Store) rotate() (uint64, error) {
	j := s.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.idleLocked(); err != nil {
		return 0, err
	}
	n := j.segment + 1
	f, err := os.OpenFile(s.path(segmentName(n)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("file store: new journal segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return 0, err
	}
	old := j.f
	j.f, j.segment, j.size = f, n, 0
	old.Close()
	return n, nil
}

// capture copies the state for a snapshot: a shallow copy of the
// threads, the saved states and the unexpired marks. The caller holds both
// stores' locks.
func (s *Store) capture() snapshotData {
	var d snapshotData
	d.conv = s.conv.m.Capture()
	d.states, d.marks = s.state.m.Capture(s.state.clock.Now().UnixNano())
	d.inbox = s.state.m.Waiting()
	return d
}

// writeSnapshot writes d to snapshot.tmp, fsyncs it, renames it to
// snapshot and fsyncs the directory.
func (s *Store) writeSnapshot(d snapshotData, base uint64) error {
	d.conv.MergeOverflow()
	tmp := s.path(snapshotTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("file store: snapshot: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("file store: snapshot: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// One buffer serves every record, and the writer yields the processor
	// every snapshotSlice of work, so that a compaction running beside a
	// busy journal delays timers and slices by at most that much.
	var buf, frame []byte
	n := 0
	lap := time.Now()
	put := func(r record) error {
		var err error
		if buf, err = appendRecord(buf[:0], &r); err != nil {
			return err
		}
		frame = appendFrame(frame[:0], buf)
		_, err = w.Write(frame)
		n++
		if n%snapshotCheck == 0 && time.Since(lap) >= snapshotSlice {
			runtime.Gosched()
			lap = time.Now()
		}
		return err
	}
	if err := put(record{Op: opSnapHeader, Base: base}); err != nil {
		return fail(err)
	}
	for _, t := range d.conv.Threads {
		snap := snapThread(t)
		if err := put(record{Op: opSnapThread, Snap: &snap}); err != nil {
			return fail(err)
		}
	}
	for _, e := range d.states {
		st := e.State
		if err := put(record{Op: opSnapState, Thread: e.Thread, State: &st, Version: e.Version}); err != nil {
			return fail(err)
		}
	}
	batch := make([]markEntry, 0, 1024)
	for _, m := range d.marks {
		batch = append(batch, markEntry(m))
		if len(batch) == cap(batch) {
			if err := put(record{Op: opSnapMarks, Marks: batch}); err != nil {
				return fail(err)
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := put(record{Op: opSnapMarks, Marks: batch}); err != nil {
			return fail(err)
		}
	}
	for q := range slices.Chunk(d.inbox, 1024) {
		if err := put(record{Op: opSnapInbox, Inbox: q}); err != nil {
			return fail(err)
		}
	}
	if err := put(record{Op: opSnapTrailer, Count: n}); err != nil {
		return fail(err)
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file store: snapshot: %w", err)
	}
	if err := os.Rename(tmp, s.path(snapshotName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file store: snapshot: %w", err)
	}
	return syncDir(s.dir)
}

// The snapshot writer checks the clock every snapshotCheck records and
// yields the processor once it has run for snapshotSlice.
const (
	snapshotCheck = 32
	snapshotSlice = 500 * time.Microsecond
)

// syncDir fsyncs a directory so that file creations, renames and removals
// in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file store: sync %s: %w", dir, err)
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Dump is the whole content of a store, for converting it into another
// kind of store (the daemon's upgrade from this journal to its disk store).
type Dump struct {
	// Threads holds every thread with its items, outbox, children, applied
	// ids and summaries.
	Threads []model.ThreadData
	// States are the saved thread states.
	States []model.Saved
	// Marks are the processed marks that have not expired.
	Marks []model.Mark
	// Inbox holds the waiting messages in the order they were put.
	Inbox []infinity.Queued
}

// Dump captures the store's content. Writers are held back while it is
// captured (a shallow copy); the result shares history with the store and
// must not be changed.
func (s *Store) Dump() Dump {
	s.conv.mu.Lock()
	s.state.mu.Lock()
	d := s.capture()
	s.state.mu.Unlock()
	s.conv.mu.Unlock()
	d.conv.MergeOverflow()
	return Dump{Threads: d.conv.Threads, States: d.states, Marks: d.marks, Inbox: d.inbox}
}
