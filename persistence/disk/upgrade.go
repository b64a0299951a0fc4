package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/infinity-runtime/infinity/persistence/file"
	"github.com/infinity-runtime/infinity/persistence/internal/dirlock"
)

// The upgrade from the journal store (package file), which earlier
// versions of the daemon kept in the same directory. Open converts such a
// directory once, without losing anything to a crash at any point:
//
//  1. DIR.converting is made afresh and the journal's content is written
//     into a new store there; a CONVERTED file marks it complete.
//  2. DIR is renamed DIR.journal (kept: delete it once satisfied), then
//     DIR.converting is renamed DIR and its CONVERTED file removed.
//
// An Open that finds DIR.converting with CONVERTED finishes step 2; one
// without CONVERTED removes it and converts again.
const (
	convertingSuffix = ".converting"
	journalSuffix    = ".journal"
	convertedName    = "CONVERTED"
)

// isJournalStore reports whether dir holds the journal store's files.
func isJournalStore(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n := e.Name()
		if n == "snapshot" || strings.HasPrefix(n, "journal-") && strings.HasSuffix(n, ".log") {
			return true
		}
	}
	return false
}

// upgrade converts a journal store in dir, or finishes a conversion a
// crash cut short. It returns whether it converted anything. Two
// processes opening the same directory at once take turns: the second
// finds the conversion done.
func upgrade(dir string, o options) (bool, error) {
	if _, err := os.Stat(dir + convertingSuffix); err != nil && !isJournalStore(dir) {
		return false, nil // the common case: nothing to convert, no lock
	}
	lockName := filepath.Base(dir) + ".upgrade-lock"
	lock, err := dirlock.Lock(filepath.Dir(dir), lockName)
	if err != nil {
		return false, fmt.Errorf("disk store: upgrade %s: %w", dir, err)
	}
	defer func() {
		dirlock.Unlock(lock)
		os.Remove(filepath.Join(filepath.Dir(dir), lockName))
	}()
	return upgradeLocked(dir, o)
}

func upgradeLocked(dir string, o options) (bool, error) {
	conv := dir + convertingSuffix
	if _, err := os.Stat(filepath.Join(conv, convertedName)); err == nil {
		return true, finishUpgrade(dir, o)
	}
	if !isJournalStore(dir) {
		return false, nil
	}
	if err := os.RemoveAll(conv); err != nil {
		return false, fmt.Errorf("disk store: upgrade: %w", err)
	}
	if _, err := os.Stat(dir + journalSuffix); err == nil {
		return false, fmt.Errorf("disk store: upgrade %s: %s exists already: move it away, then start again", dir, dir+journalSuffix)
	}
	o.logger.Info("disk store: converting the journal store to the disk store (once)", "dir", dir)
	old, err := file.Open(dir, file.WithLogger(o.logger), file.WithCompactThreshold(0))
	if err != nil {
		return false, fmt.Errorf("disk store: upgrade %s: open the journal store: %w", dir, err)
	}
	d := old.Dump()
	n, err := convert(conv, d, o)
	if cerr := old.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the journal store: %w", cerr)
	}
	if err != nil {
		os.RemoveAll(conv)
		return false, fmt.Errorf("disk store: upgrade %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(conv, convertedName), []byte(strconv.Itoa(n)+" threads\n"), 0o600); err != nil {
		return false, fmt.Errorf("disk store: upgrade %s: %w", dir, err)
	}
	if err := syncDir(conv); err != nil {
		return false, fmt.Errorf("disk store: upgrade %s: %w", dir, err)
	}
	return true, finishUpgrade(dir, o)
}

// finishUpgrade swaps a complete DIR.converting in for DIR.
func finishUpgrade(dir string, o options) error {
	conv := dir + convertingSuffix
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, dir+journalSuffix); err != nil {
			return fmt.Errorf("disk store: upgrade: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk store: upgrade: %w", err)
	}
	if err := os.Rename(conv, dir); err != nil {
		return fmt.Errorf("disk store: upgrade: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("disk store: upgrade: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, convertedName)); err != nil {
		return fmt.Errorf("disk store: upgrade: %w", err)
	}
	o.logger.Info("disk store: converted; the journal store is kept beside it, delete it once satisfied",
		"dir", dir, "journal", dir+journalSuffix)
	return nil
}

// convertBatch is the size at which the conversion applies a batch.
const convertBatch = 4 << 20

// convert writes a journal store's content into a new store in dir and
// returns the number of threads.
func convert(dir string, d file.Dump, o options) (int, error) {
	o.minFree = 0
	s, err := openStore(dir, o)
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	fail := func(err error) (int, error) {
		b.Close()
		s.Close()
		return 0, err
	}
	flush := func(force bool) error {
		if !force && b.Len() < convertBatch {
			return nil
		}
		opt := pebble.NoSync
		if force {
			opt = pebble.Sync
		}
		if err := s.db.Apply(b, opt); err != nil {
			return err
		}
		b.Close()
		b = s.db.NewBatch()
		return nil
	}
	set := func(k, v []byte) error {
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		return flush(false)
	}
	for i := range d.Threads {
		t := &d.Threads[i]
		id := t.Info.ID
		h := header{Info: t.Info, Len: len(t.Items), Children: uint64(len(t.Children)), Out: uint64(len(t.Outbox)), Unsent: len(t.Outbox)}
		for j := range t.Outbox {
			h.Pending = append(h.Pending, outRef{ID: t.Outbox[j].ID, N: uint64(j)})
		}
		v, err := encode(&h)
		if err != nil {
			return fail(err)
		}
		if err := set(threadKey(tagThread, string(id), 0), v); err != nil {
			return fail(err)
		}
		for j := range t.Items {
			v, err := encodeItem(&t.Items[j])
			if err == nil {
				err = set(seqKey(tagItem, id, uint64(j)), v)
			}
			if err != nil {
				return fail(err)
			}
		}
		for j := range t.Outbox {
			v, err := encodeOutgoing(&t.Outbox[j])
			if err == nil {
				err = set(seqKey(tagOutbox, id, uint64(j)), v)
			}
			if err != nil {
				return fail(err)
			}
		}
		for j, c := range t.Children {
			if err := set(seqKey(tagChild, id, uint64(j)), []byte(c)); err != nil {
				return fail(err)
			}
		}
		for _, m := range t.Applied {
			if err := set(msgKey(tagApplied, id, m), nil); err != nil {
				return fail(err)
			}
		}
		for j := range t.Summaries {
			v, err := encode(&t.Summaries[j])
			if err == nil {
				err = set(seqKey(tagSummary, id, uint64(t.Summaries[j].Position)), v)
			}
			if err != nil {
				return fail(err)
			}
		}
	}
	for _, st := range d.States {
		v, err := encode(saved{Version: st.Version, State: st.State})
		if err == nil {
			err = set(threadKey(tagState, string(st.Thread), 0), v)
		}
		if err != nil {
			return fail(err)
		}
	}
	for _, m := range d.Marks {
		k := msgKey(tagMark, m.Thread, m.Msg)
		if err := set(k, binary.BigEndian.AppendUint64(nil, uint64(m.Exp))); err != nil {
			return fail(err)
		}
		if err := set(expiryKey(m.Exp, k), nil); err != nil {
			return fail(err)
		}
	}
	for i := range d.Inbox {
		q := &d.Inbox[i]
		seq := uint64(i + 1)
		v, err := encodeQueued(q)
		if err == nil {
			err = set(queuedKey(seq), v)
		}
		if err == nil {
			err = set(msgKey(tagWaitsFor, q.Message.GroupID, q.Message.ID), binary.BigEndian.AppendUint64(nil, seq))
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := b.Merge(keyThreads, counterBytes(int64(len(d.Threads))), nil); err != nil {
		return fail(err)
	}
	if err := flush(true); err != nil {
		return fail(err)
	}
	b.Close()
	if err := s.Close(); err != nil {
		return 0, err
	}
	return len(d.Threads), nil
}
