package disk

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/dirlock"
)

// ErrLocked is wrapped by the error Open returns when the directory is
// open in another Store, in this process or another.
var ErrLocked = dirlock.ErrLocked

// ErrStoreClosed is returned by every call after Close.
var ErrStoreClosed = errors.New("disk store: closed")

// ErrNoSpace is wrapped by the error of a write refused because the file
// system holding the store has less free space than the store keeps in
// reserve (WithMinFree). Reads go on; writes succeed again, without a
// restart, once space is freed.
var ErrNoSpace = errors.New("disk store: not enough free disk space")

// Defaults of the options.
const (
	// DefaultCacheSize is the block cache's size.
	DefaultCacheSize = 32 << 20
	// DefaultMemTableSize is the size of one memtable (up to two are kept
	// while one is flushed).
	DefaultMemTableSize = 16 << 20
	// DefaultMinFree is the free disk space below which writes are refused.
	DefaultMinFree = 256 << 20
)

// lockName is the store's own lock file, beside the engine's files.
const lockName = "LOCK-infinity"

// Option configures Open.
type Option func(*options)

type options struct {
	clock    infinity.Clock
	logger   *slog.Logger
	cache    int64
	memtable uint64
	history  int
	minFree  uint64
	freeFn   func(dir string) (uint64, error)
	fs       vfs.FS
}

// WithClock sets the clock that processed marks expire on (default, and
// nil: the system clock).
func WithClock(c infinity.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger for the engine's messages and background
// failures (default, and nil: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCacheSize sets the block cache's size in bytes (default
// DefaultCacheSize): with the memtables, it bounds what the store keeps in
// memory, whatever the size of the stored history.
func WithCacheSize(bytes int64) Option { return func(o *options) { o.cache = bytes } }

// WithHistoryCache sets how many bytes of decoded history the store
// keeps for recently active threads (default DefaultHistoryCache; 0 keeps
// none: every read decodes from the engine).
func WithHistoryCache(bytes int) Option { return func(o *options) { o.history = bytes } }

// WithMemTableSize sets the memtable size in bytes (default
// DefaultMemTableSize).
func WithMemTableSize(bytes uint64) Option { return func(o *options) { o.memtable = bytes } }

// WithMinFree sets the free disk space, in bytes, below which writes fail
// with ErrNoSpace (default DefaultMinFree; 0 turns the check off).
func WithMinFree(bytes uint64) Option { return func(o *options) { o.minFree = bytes } }

// WithFreeSpace replaces how the free space of the store's file system is
// read (default: statfs of the directory): for tests that fill a disk, and
// for quotas the file system does not report.
func WithFreeSpace(f func(dir string) (uint64, error)) Option {
	return func(o *options) { o.freeFn = f }
}

// Stats counts the store's write activity since Open.
type Stats struct {
	// Records is how many synchronous writes (batches) were made durable.
	Records int64
	// Fsyncs is how many write-ahead-log fsyncs made them durable;
	// Records/Fsyncs is the group-commit factor.
	Fsyncs int64
	// Bytes is how many bytes the write-ahead log took.
	Bytes int64
}

// Store keeps a ConversationStore, a StateStore and an Inbox durable in one
// directory, on an embedded log-structured merge tree (Pebble). It is safe
// for concurrent use. Open it with Open and release it with Close.
type Store struct {
	dir   string
	opts  options
	lock  *os.File
	db    *pebble.DB
	cache interface{ Unref() }
	conv  *convStore
	state *stateStore

	// stripes are the thread locks: a mutation reads what its checks need,
	// builds one batch and applies it under the locks of the threads it
	// touches, and waits for durability after.
	stripes stripes
	headers headerCache
	hist    historyCache
	sets    setCache
	occ     occupancy
	// threads and waiting are the counters (threads is stored as a merge
	// key; waiting is counted at Open), read with atomics by Counts.
	threads, waiting atomic.Int64
	// inSeq is the last inbox sequence number used.
	inSeq atomic.Uint64

	dur    durability
	space  space
	fsyncs atomic.Int64
	// life is held (read) by every operation while it runs and taken
	// (write) by Close, which then sets closed.
	life   sync.RWMutex
	closed atomic.Bool
	bg     sync.WaitGroup
	stop   chan struct{}
}

// Open opens (creating if needed) the store in dir. A directory that
// holds the journal store of earlier versions (package file) is converted
// once, first (see the package documentation). Data that cannot be read
// fails with an error wrapping ErrCorrupt that names what is wrong; a
// directory open in another Store fails with ErrLocked.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{
		clock: infinity.SystemClock{}, logger: slog.Default(),
		cache: DefaultCacheSize, memtable: DefaultMemTableSize, minFree: DefaultMinFree,
		history: DefaultHistoryCache, freeFn: freeSpace, fs: vfs.Default,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.clock == nil {
		o.clock = infinity.SystemClock{}
	}
	dir = filepath.Clean(dir)
	if _, err := upgrade(dir, o); err != nil {
		return nil, err
	}
	return openStore(dir, o)
}

// openStore opens the store in dir with the options set.
func openStore(dir string, o options) (*Store, error) {
	if err := private(dir); err != nil {
		return nil, err
	}
	lock, err := dirlock.Lock(dir, lockName)
	if err != nil {
		return nil, fmt.Errorf("disk store: %w", err)
	}
	s := &Store{dir: dir, opts: o, lock: lock, stop: make(chan struct{})}
	s.stripes.seed = maphash.MakeSeed()
	s.headers.init(DefaultHeaderCache)
	s.hist.init(o.history)
	s.space.init(dir, o.minFree, o.freeFn)
	if err := s.open(); err != nil {
		dirlock.Unlock(lock)
		return nil, err
	}
	s.conv = &convStore{s: s}
	s.state = &stateStore{s: s}
	s.dur.start(s)
	s.bg.Add(1)
	go s.janitor()
	return s, nil
}

// private creates dir 0700 and makes an existing one 0700, and its files
// 0600: the store holds conversations.
func private(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Chmod(dir+string(os.PathSeparator)+e.Name(), 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("disk store: %w", err)
			}
		}
	}
	return nil
}

// Conversations returns the store's ConversationStore.
func (s *Store) Conversations() infinity.ConversationStore { return s.conv }

// State returns the store's StateStore.
func (s *Store) State() infinity.StateStore { return s.state }

// Inbox returns the store's durable inbox, for the local sender.
func (s *Store) Inbox() infinity.Inbox { return s.state }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Stats returns the store's write counters.
func (s *Store) Stats() Stats {
	st := Stats{Records: s.dur.records.Load(), Fsyncs: s.fsyncs.Load()}
	if s.enter() {
		st.Bytes = int64(s.db.Metrics().WAL.BytesWritten)
		s.exit()
	}
	return st
}

// Flush writes the engine's memtables to table files: what the store
// holds in memory for writes drops to an empty memtable (benchmarks
// measure at rest with it; the engine flushes by itself as memtables fill).
func (s *Store) Flush() error {
	if !s.enter() {
		return ErrStoreClosed
	}
	defer s.exit()
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("disk store: flush: %w", err)
	}
	return nil
}

// Close waits for the writes in flight, closes the engine and releases the
// directory. Calls after Close fail with ErrStoreClosed; a second Close
// returns nil.
func (s *Store) Close() error {
	s.life.Lock()
	if s.closed.Swap(true) {
		s.life.Unlock()
		return nil
	}
	s.life.Unlock()
	close(s.stop)
	s.bg.Wait()
	s.dur.close()
	err := s.db.Close()
	s.cache.Unref()
	if uerr := dirlock.Unlock(s.lock); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("disk store: close: %w", err)
	}
	return nil
}
