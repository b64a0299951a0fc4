package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// formatName is the store's marker file: written once the engine's files
// exist, it says which store and format the directory holds. With it the
// engine's files must be there (a directory that lost its MANIFEST is
// reported, not started empty); without it no engine file may be.
const (
	formatName = "FORMAT"
	formatText = "infinity disk store 1\n"
)

// open opens the engine and checks that the directory holds what the
// marker says.
func (s *Store) open() error {
	dir := s.dir
	marker, err := os.ReadFile(filepath.Join(dir, formatName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if leftovers := engineFiles(dir); len(leftovers) > 0 {
			return fmt.Errorf("disk store %s: %s is missing but the engine's files %s are there: %w",
				dir, formatName, strings.Join(leftovers, ", "), ErrCorrupt)
		}
	case err != nil:
		return fmt.Errorf("disk store: %w", err)
	case string(marker) != formatText:
		return fmt.Errorf("disk store %s: %s says %q, want %q (a store of another version or kind): %w",
			dir, formatName, strings.TrimSpace(string(marker)), strings.TrimSpace(formatText), ErrCorrupt)
	}
	exists := err == nil

	cache := pebble.NewCache(s.opts.cache)
	po := &pebble.Options{
		Cache:            cache,
		MemTableSize:     s.opts.memtable,
		FS:               &countingFS{FS: s.opts.fs, syncs: &s.fsyncs},
		Logger:           engineLogger{s.opts.logger},
		ErrorIfNotExists: exists,
		MaxOpenFiles:     256,
		Merger:           counterMerger,
	}
	// Bloom filters in every level: most point reads ask for a key that
	// is not there (is this input applied? is it waiting?), and a filter
	// answers those without reading the table's blocks.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		cache.Unref()
		if errors.Is(err, pebble.ErrDBDoesNotExist) {
			return fmt.Errorf("disk store %s: %s is there but the engine's MANIFEST (or its marker file) is missing: %w",
				dir, formatName, ErrCorrupt)
		}
		if pebble.IsCorruptionError(err) || exists && errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disk store %s: a file of the store is missing or damaged (%v): %w", dir, err, ErrCorrupt)
		}
		return fmt.Errorf("disk store %s: %w", dir, err)
	}
	s.db, s.cache = db, cache
	fail := func(err error) error {
		db.Close()
		cache.Unref()
		return err
	}
	if err := s.checkTables(); err != nil {
		return fail(err)
	}
	if !exists {
		if err := writeMarker(dir); err != nil {
			return fail(err)
		}
	}
	if err := s.loadCounters(); err != nil {
		return fail(err)
	}
	return nil
}

// engineFiles lists the engine's files in dir.
func engineFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		n := e.Name()
		if n == "CURRENT" || strings.HasPrefix(n, "marker.") || strings.HasPrefix(n, "MANIFEST-") || strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".log") {
			out = append(out, n)
		}
	}
	return out
}

// checkTables fails unless every table file the engine's manifest lists is
// in the directory: a missing one is named at open, not met by a read
// months later.
func (s *Store) checkTables() error {
	levels, err := s.db.SSTables()
	if err != nil {
		return fmt.Errorf("disk store %s: list tables: %w", s.dir, err)
	}
	for _, level := range levels {
		for _, t := range level {
			name := fmt.Sprintf("%s.sst", t.BackingSSTNum)
			if _, err := os.Stat(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("disk store %s: table %s, listed in the MANIFEST, is missing or unreadable (%v): %w",
					s.dir, name, err, ErrCorrupt)
			}
		}
	}
	return nil
}

// writeMarker writes FORMAT durably.
func writeMarker(dir string) error {
	tmp := filepath.Join(dir, formatName+".tmp")
	if err := os.WriteFile(tmp, []byte(formatText), 0o600); err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, formatName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadCounters reads the thread count, finds the inbox's last sequence
// number and counts the waiting messages and marks (loadOccupancy): one
// pass over the inbox index, whose keys are small, not over the messages.
func (s *Store) loadCounters() error {
	n, err := s.getCounter(keyThreads)
	if err != nil {
		return err
	}
	s.threads.Store(n)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagQueued}, UpperBound: []byte{tagQueued + 1}})
	if err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	defer it.Close()
	if it.Last() {
		seq, ok := u64(it.Key()[1:])
		if !ok {
			return fmt.Errorf("disk store: key %q: malformed inbox key: %w", it.Key(), ErrCorrupt)
		}
		s.inSeq.Store(seq)
	}
	if err := it.Error(); err != nil {
		return s.readErr(err)
	}
	return s.loadOccupancy()
}

// getCounter reads a metadata counter (0 when absent).
func (s *Store) getCounter(key []byte) (int64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, s.readErr(err)
	}
	defer closer.Close()
	return counterValue(v)
}

// readErr wraps an engine read error: corruption as ErrCorrupt.
func (s *Store) readErr(err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("disk store %s: %w: %v", s.dir, ErrCorrupt, err)
	}
	return fmt.Errorf("disk store %s: %w", s.dir, err)
}

// countingFS counts the fsyncs of the write-ahead log (Stats.Fsyncs).
type countingFS struct {
	vfs.FS
	syncs interface{ Add(int64) int64 }
}

func (c *countingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &countingFile{File: f, syncs: c.syncs}, nil
}

func (c *countingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.Create(name, cat)
	return c.wrap(name, f, err)
}

func (c *countingFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.ReuseForWrite(oldname, newname, cat)
	return c.wrap(newname, f, err)
}

func (c *countingFS) Unwrap() vfs.FS { return c.FS }

type countingFile struct {
	vfs.File
	syncs interface{ Add(int64) int64 }
}

func (f *countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

func (f *countingFile) SyncData() error {
	f.syncs.Add(1)
	return f.File.SyncData()
}

func (f *countingFile) SyncTo(n int64) (bool, error) {
	f.syncs.Add(1)
	return f.File.SyncTo(n)
}
