package disk

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

type convStore struct{ s *Store }

var _ infinity.ConversationStore = (*convStore)(nil)

// CreateThread stores a new root thread.
func (c *convStore) CreateThread(ctx context.Context, info infinity.ThreadInfo) error {
	if err := model.CheckRoot(info); err != nil {
		return err
	}
	return c.s.mutateWait(ctx, only(info.ID), func(t *tx) error { return t.createRoot(info) })
}

// CreateRoot is CreateThread that also puts first into the inbox, due
// now, in the same write (actors.RootStarter): a crash leaves both or
// neither.
func (c *convStore) CreateRoot(ctx context.Context, info infinity.ThreadInfo, first infinity.InputMessage) error {
	if err := model.CheckRoot(info); err != nil {
		return err
	}
	if err := model.CheckPut(first); err != nil {
		return err
	}
	if first.GroupID != info.ID {
		return fmt.Errorf("create thread %s: first message for %s: %w", info.ID, first.GroupID, infinity.ErrInvalid)
	}
	return c.s.mutateWait(ctx, only(info.ID), func(t *tx) error {
		if err := t.createRoot(info); err != nil {
			return err
		}
		_, err := t.queue(first, time.Time{})
		return err
	})
}

// createRoot adds a root thread (ErrExists when its id is taken).
func (t *tx) createRoot(info infinity.ThreadInfo) error {
	h, err := t.header(info.ID)
	if err != nil {
		return err
	}
	if h != nil {
		return fmt.Errorf("create thread %s: %w", info.ID, infinity.ErrExists)
	}
	t.create(info)
	return nil
}

// thread reads a thread's header after the read barrier (ErrNotFound).
func (c *convStore) thread(op string, id infinity.ThreadID) (*header, error) {
	h, err := c.s.header(c.s.db, id)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	if h == nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, infinity.ErrNotFound)
	}
	return h, nil
}

// Thread returns a thread's info.
func (c *convStore) Thread(ctx context.Context, id infinity.ThreadID) (infinity.ThreadInfo, error) {
	return readOf(c.s, ctx, id, func() (infinity.ThreadInfo, error) {
		h, err := c.thread("thread", id)
		if err != nil {
			return infinity.ThreadInfo{}, err
		}
		return h.Info, nil
	})
}

// Lineage returns the thread and its ancestors, root first.
func (c *convStore) Lineage(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	var seen []infinity.ThreadID
	return readThen(c.s, ctx, func() ([]infinity.ThreadInfo, error) {
		var out []infinity.ThreadInfo
		for next := id; ; {
			seen = append(seen, next)
			h, err := c.thread("lineage", next)
			if err != nil {
				if next != id {
					// Reads are not one snapshot: a tree deleted since the
					// thread was read has lost its ancestors too.
					if h, herr := readHeader(c.s.db, id); herr == nil && h == nil {
						return nil, fmt.Errorf("lineage %s: %w", id, infinity.ErrNotFound)
					}
					return nil, fmt.Errorf("lineage %s: missing ancestor %s: %w", id, next, ErrCorrupt)
				}
				return nil, err
			}
			out = append(out, h.Info)
			if h.Info.Parent == "" {
				break
			}
			if len(out) > 10_000 {
				return nil, fmt.Errorf("lineage %s: parents form a cycle: %w", id, ErrCorrupt)
			}
			next = h.Info.Parent
		}
		slices.Reverse(out)
		return out, nil
	}, func() uint64 { return c.s.stripes.ticket(seen...) })
}

// Children returns a thread's direct children in creation order.
func (c *convStore) Children(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	return read(c.s, ctx, func() ([]infinity.ThreadInfo, error) {
		if _, err := c.thread("children", id); err != nil {
			return nil, err
		}
		var out []infinity.ThreadInfo
		err := scanPrefix(c.s.db, threadKey(tagChild, string(id), 0), func(k, v []byte) (bool, error) {
			child, err := c.thread("children", infinity.ThreadID(v))
			if err != nil {
				// Reads are not one snapshot: a tree deleted since the
				// parent was read has lost its children too.
				if h, herr := readHeader(c.s.db, id); herr == nil && h == nil {
					return false, fmt.Errorf("children %s: %w", id, infinity.ErrNotFound)
				}
				return false, fmt.Errorf("children %s: child %q: %w", id, v, ErrCorrupt)
			}
			out = append(out, child.Info)
			return true, nil
		})
		return out, err
	})
}

// Items returns the thread's own items with positions in [from, to).
func (c *convStore) Items(ctx context.Context, id infinity.ThreadID, from, to int) ([]infinity.Item, error) {
	return readOf(c.s, ctx, id, func() ([]infinity.Item, error) {
		h, err := c.thread("items", id)
		if err != nil {
			return nil, err
		}
		if from < 0 {
			return nil, fmt.Errorf("items %s: from %d: %w", id, from, infinity.ErrInvalid)
		}
		if to < 0 || to > h.Len {
			to = h.Len
		}
		if from >= to {
			return nil, nil
		}
		if items, ok := c.s.hist.get(id, h.Len, from, to); ok {
			return items, nil
		}
		gen := c.s.hist.generation()
		// Room for what a slice appends to the history it loaded.
		out := make([]infinity.Item, 0, to-from+3)
		err = scan(c.s.db, seqKey(tagItem, id, uint64(from)), seqKey(tagItem, id, uint64(to)), func(k, v []byte) (bool, error) {
			var it infinity.Item
			if err := decode(k, v, &it); err != nil {
				return false, err
			}
			out = append(out, it)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) != to-from {
			return nil, fmt.Errorf("items %s: %d of the %d items in [%d, %d) are stored: %w", id, len(out), to-from, from, to, ErrCorrupt)
		}
		if from == 0 && to == h.Len {
			c.s.hist.fill(id, out, gen, func() int {
				cur, ok, _ := c.s.headers.get(c.s.stripes.index(id), id)
				if !ok {
					return -1
				}
				return cur.Len
			})
		}
		return out, nil
	})
}

// Len returns how many own items the thread has.
func (c *convStore) Len(ctx context.Context, id infinity.ThreadID) (int, error) {
	return readOf(c.s, ctx, id, func() (int, error) {
		h, err := c.thread("len", id)
		if err != nil {
			return 0, err
		}
		return h.Len, nil
	})
}

// Applied reports whether msg was applied by a commit of the thread.
func (c *convStore) Applied(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	return readOf(c.s, ctx, id, func() (bool, error) {
		if _, err := c.thread("applied", id); err != nil {
			return false, err
		}
		_, ok, err := c.s.member(tagApplied, id, string(msg))
		return ok, err
	})
}

// Outbox returns the thread's unsent outgoing entries in commit order.
func (c *convStore) Outbox(ctx context.Context, id infinity.ThreadID) ([]infinity.Outgoing, error) {
	return readOf(c.s, ctx, id, func() ([]infinity.Outgoing, error) {
		h, err := c.thread("outbox", id)
		if err != nil || h.Unsent == 0 {
			return nil, err
		}
		var out []infinity.Outgoing
		err = scanPrefix(c.s.db, threadKey(tagOutbox, string(id), 0), func(k, v []byte) (bool, error) {
			o, err := decodeOutgoing(k, v)
			out = append(out, o)
			return err == nil, err
		})
		return out, err
	})
}

// Summary returns the thread's newest summary with a position below
// before, or nil.
func (c *convStore) Summary(ctx context.Context, id infinity.ThreadID, before int) (*infinity.Summary, error) {
	return readOf(c.s, ctx, id, func() (*infinity.Summary, error) {
		h, err := c.thread("summary", id)
		if err != nil {
			return nil, err
		}
		if before <= 0 || !h.Info.Compacted { // no summary was ever committed
			return nil, nil
		}
		it, err := c.s.db.NewIter(nil)
		if err != nil {
			return nil, engineErr(err)
		}
		defer it.Close()
		prefix := threadKey(tagSummary, string(id), 0)
		if !it.SeekLT(seqKey(tagSummary, id, uint64(before))) || !strings.HasPrefix(string(it.Key()), string(prefix)) {
			return nil, engineErrOrNil(it.Error())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, engineErr(err)
		}
		var sum infinity.Summary
		if err := decode(it.Key(), v, &sum); err != nil {
			return nil, err
		}
		return &sum, nil
	})
}

func engineErrOrNil(err error) error {
	if err == nil {
		return nil
	}
	return engineErr(err)
}

// Commit applies one slice atomically and returns once it is durable.
func (c *convStore) Commit(ctx context.Context, cm infinity.Commit) (int, error) {
	n, durable, err := c.CommitDeferred(ctx, cm)
	if err != nil {
		return 0, err
	}
	if err := durable(); err != nil {
		return 0, err
	}
	return n, nil
}

// CommitDeferred is Commit that returns once the commit is checked and
// applied, before it is durable: durable waits until it is, and returns
// the error if it never will be. Reads wait for it meanwhile. The engine
// uses it so that a slice's goroutine does not sit idle through the fsync
// (actors.DeferredCommitter).
//
// One batch holds the whole commit: the items, the applied ids, the
// messages it consumes from the inbox (Commit.Applied) and the messages of
// its outbox, which it puts into the inbox so that the durable sender
// finds them there and writes nothing.
func (c *convStore) CommitDeferred(ctx context.Context, cm infinity.Commit) (int, func() error, error) {
	items := make([][]byte, len(cm.Items))
	for i := range cm.Items {
		v, err := encodeItem(&cm.Items[i])
		if err != nil {
			return 0, nil, fmt.Errorf("commit %s: %w", cm.Thread, err)
		}
		items[i] = v
	}
	var n int
	ticket, err := c.s.mutate(ctx, true, commitLocks(cm), func(t *tx) error {
		err := model.CheckCommit(cm, commitView{t, cm.Thread})
		if t.err != nil { // a read failed: the check's verdict means nothing
			return t.err
		}
		if err != nil {
			return err
		}
		n, err = t.applyCommit(cm, items)
		return err
	})
	if err != nil {
		if ticket > 0 {
			c.s.dur.wait(ticket) // what the refused commit's checks read; err says why
		}
		return 0, nil, err
	}
	d, id := &c.s.dur, cm.Thread
	return n, func() error {
		if err := d.wait(ticket); err != nil {
			return fmt.Errorf("commit %s: %w", id, err)
		}
		return nil
	}, nil
}

// commitLocks are the threads a commit reads and changes: the thread and
// the threads its outbox messages go to (their inbox entries), or every
// thread for a commit that creates or closes threads.
func commitLocks(cm infinity.Commit) locks {
	if len(cm.Create) > 0 || len(cm.Close) > 0 {
		return everything
	}
	ids := []infinity.ThreadID{cm.Thread}
	for _, o := range cm.Outbox {
		if o.Message != nil {
			ids = append(ids, o.Message.GroupID)
		}
	}
	return only(ids...)
}

// commitView is a transaction as model.CheckCommit reads it.
type commitView struct {
	t    *tx
	self infinity.ThreadID
}

func (v commitView) Thread(id infinity.ThreadID) (infinity.ThreadID, bool, int, bool) {
	h, err := v.t.header(id)
	if err != nil && v.t.err == nil {
		v.t.err = err
	}
	if h == nil {
		return "", false, 0, false
	}
	return h.Info.Root, h.Info.Closed, h.Len, true
}

func (v commitView) Applied(m infinity.MessageID) bool {
	_, ok, err := v.t.member(tagApplied, v.self, string(m))
	if err != nil && v.t.err == nil {
		v.t.err = err
	}
	return ok
}

// applyCommit writes a checked commit and returns the thread's new length.
func (t *tx) applyCommit(cm infinity.Commit, items [][]byte) (int, error) {
	h, err := t.header(cm.Thread)
	if err != nil {
		return 0, err
	}
	for i, v := range items {
		t.set(seqKey(tagItem, cm.Thread, uint64(h.Len+i)), v)
	}
	if len(cm.Items) > 0 {
		t.appends = append(t.appends, appendedItems{id: cm.Thread, from: h.Len, items: cm.Items})
	}
	h.Len += len(items)
	t.touch(cm.Thread)
	for _, m := range cm.Applied {
		t.setMember(tagApplied, cm.Thread, string(m), 0)
		if err := t.unqueue(cm.Thread, m); err != nil {
			return 0, err
		}
	}
	if err := t.appendOutbox(cm.Thread, h, cm.Outbox); err != nil {
		return 0, err
	}
	for _, info := range cm.Create {
		t.create(info)
		p, err := t.header(info.Parent)
		if err != nil {
			return 0, err
		}
		t.set(seqKey(tagChild, info.Parent, p.Children), []byte(info.ID))
		p.Children++
		t.touch(info.Parent)
	}
	for _, id := range cm.Close {
		ch, err := t.header(id)
		if err != nil {
			return 0, err
		}
		ch.Info.Closed = true
		t.touch(id)
	}
	if cm.Summary != nil {
		v, err := encode(cm.Summary)
		if err != nil {
			return 0, fmt.Errorf("commit %s: %w", cm.Thread, err)
		}
		t.set(seqKey(tagSummary, cm.Thread, uint64(cm.Summary.Position)), v)
		h.Info.Compacted = true
	}
	return h.Len, nil
}

// appendOutbox adds the entries whose ids are not yet in the thread's
// outbox (the first one wins) and puts their messages into the inbox.
func (t *tx) appendOutbox(id infinity.ThreadID, h *header, add []infinity.Outgoing) error {
	if len(add) == 0 {
		return nil
	}
	refs, err := t.outRefs(id, h)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(refs)+len(add))
	for _, r := range refs {
		seen[r.ID] = true
	}
	refs = slices.Clip(refs) // the header may be the cache's: never append in place
	for i := range add {
		o := &add[i]
		if seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		v, err := encodeOutgoing(o)
		if err != nil {
			return fmt.Errorf("commit %s: %w", id, err)
		}
		t.set(seqKey(tagOutbox, id, h.Out), v)
		refs = append(refs, outRef{ID: o.ID, N: h.Out})
		h.Out++
		h.setPending(refs)
		if o.Message != nil {
			if _, err := t.queue(*o.Message, o.At); err != nil {
				return err
			}
		}
	}
	return nil
}

// MarkSent removes the named entries from the thread's outbox; ids that
// are not there are ignored. The removal is not waited for: a crash that
// loses it leaves the entries in the outbox, and the restart sends them
// again under their stable ids, which receivers treat as repeats.
func (c *convStore) MarkSent(ctx context.Context, id infinity.ThreadID, outgoing ...string) error {
	_, err := c.s.mutate(ctx, false, only(id), func(t *tx) error {
		h, err := t.header(id)
		if err != nil {
			return err
		}
		if h == nil {
			return fmt.Errorf("mark sent %s: %w", id, infinity.ErrNotFound)
		}
		if len(outgoing) == 0 || h.Unsent == 0 {
			return errUnchanged
		}
		refs, err := t.outRefs(id, h)
		if err != nil {
			return err
		}
		keep := make([]outRef, 0, len(refs))
		for _, r := range refs {
			if slices.Contains(outgoing, r.ID) {
				t.del(seqKey(tagOutbox, id, r.N))
			} else {
				keep = append(keep, r)
			}
		}
		if len(keep) == len(refs) {
			return errUnchanged
		}
		h.setPending(keep)
		t.touch(id)
		return nil
	})
	return err
}

// outRefs returns the thread's unsent outbox entries: from its header, or
// (a header written before it listed them) from a scan of its outbox.
func (t *tx) outRefs(id infinity.ThreadID, h *header) ([]outRef, error) {
	if len(h.Pending) == h.Unsent {
		return h.Pending, nil
	}
	prefix := threadKey(tagOutbox, string(id), 0)
	var refs []outRef
	err := scanPrefix(t.b, prefix, func(k, v []byte) (bool, error) {
		o, err := decodeOutgoing(k, v)
		if err != nil {
			return false, err
		}
		n, ok := u64(k[len(prefix):])
		if !ok {
			return false, fmt.Errorf("disk store: key %q: malformed outbox key: %w", k, ErrCorrupt)
		}
		refs = append(refs, outRef{ID: o.ID, N: n})
		return true, nil
	})
	return refs, err
}

// KeepsApplied says that applied records are read as cheaply as processed
// marks and that a commit consumes the messages it applied from the inbox
// (actors.AppliedKeeper): the runtime then writes no processed marks for
// them.
func (c *convStore) KeepsApplied() bool { return true }

// Threads returns every thread's info, oldest first (actors.ThreadLister).
func (c *convStore) Threads(ctx context.Context) ([]infinity.ThreadInfo, error) {
	return c.s.Threads(ctx)
}

// Threads returns every thread's info, oldest first (ties by id). It reads
// every header: the daemon's listing, not a path slices take.
func (s *Store) Threads(ctx context.Context) ([]infinity.ThreadInfo, error) {
	return read(s, ctx, func() ([]infinity.ThreadInfo, error) {
		out := make([]infinity.ThreadInfo, 0, max(s.threads.Load(), 0))
		err := scanPrefix(s.db, []byte{tagThread}, func(k, v []byte) (bool, error) {
			var h header
			if err := decode(k, v, &h); err != nil {
				return false, err
			}
			out = append(out, h.Info)
			return true, nil
		})
		slices.SortFunc(out, func(a, b infinity.ThreadInfo) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(string(a.ID), string(b.ID))
		})
		return out, err
	})
}

// Unsent returns the threads whose outbox still holds entries: after a
// crash between a commit and its sends, the daemon wakes them.
func (s *Store) Unsent(ctx context.Context) ([]infinity.ThreadID, error) {
	return read(s, ctx, func() ([]infinity.ThreadID, error) {
		var out []infinity.ThreadID
		it, err := s.db.NewIter(nil)
		if err != nil {
			return nil, engineErr(err)
		}
		defer it.Close()
		for ok := it.SeekGE([]byte{tagOutbox}); ok && it.Key()[0] == tagOutbox; {
			id, _, valid := splitThreadKey(it.Key())
			if !valid {
				return nil, fmt.Errorf("disk store: key %q: malformed outbox key: %w", it.Key(), ErrCorrupt)
			}
			out = append(out, infinity.ThreadID(id))
			ok = it.SeekGE(prefixEnd(threadKey(tagOutbox, id, 0)))
		}
		return out, engineErrOrNil(it.Error())
	})
}

// Counts returns how many threads the store holds and how many messages
// wait in its inbox (the daemon's status), from counters the store keeps.
func (s *Store) Counts(ctx context.Context) (threads, waiting int, err error) {
	type pair struct{ t, w int }
	p, err := read(s, ctx, func() (pair, error) {
		return pair{int(s.threads.Load()), int(s.waiting.Load())}, nil
	})
	return p.t, p.w, err
}
