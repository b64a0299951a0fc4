package disk

import (
	"context"
	"fmt"
	"slices"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

var (
	_ infinity.TreeDeleter  = (*convStore)(nil)
	_ infinity.StateDeleter = (*stateStore)(nil)
)

// threadTables are the conversation tables a thread has keys in, besides
// its header.
var threadTables = []byte{tagItem, tagApplied, tagChild, tagOutbox, tagSummary}

// DeleteTree deletes a closed tree, in one write (range deletions: the
// space comes back as the engine compacts). The disk store keeps the
// threads' state too: the same write deletes their saved states,
// processed marks and waiting messages (what StateDeleter does), so that
// nothing of the tree is left behind by a crash between two writes, and a
// root started again under the same id afterwards keeps what it queued.
// Deleting is allowed under the free-space reserve.
func (c *convStore) DeleteTree(ctx context.Context, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	var ids []infinity.ThreadID
	err := c.s.mutateWait(ctx, locks{all: true, deletes: true}, func(t *tx) error {
		h, err := t.header(root)
		if err != nil {
			return err
		}
		if h == nil {
			return fmt.Errorf("delete tree %s: %w", root, infinity.ErrNotFound)
		}
		if err := model.CheckDeletable(h.Info); err != nil {
			return err
		}
		if ids, err = t.tree(root); err != nil {
			return err
		}
		for _, id := range ids {
			t.del(threadKey(tagThread, string(id), 0))
			for _, tag := range threadTables {
				if err := t.dropSet(tag, id); err != nil {
					return err
				}
			}
			delete(t.headers, id)
			delete(t.dirty, id)
			if err := t.deleteState(id); err != nil {
				return err
			}
		}
		t.deleted = ids
		t.threads -= int64(len(ids))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// tree returns the ids of root's tree, root first, then depth first in
// creation order.
func (t *tx) tree(root infinity.ThreadID) ([]infinity.ThreadID, error) {
	ids := []infinity.ThreadID{root}
	for i := 0; i < len(ids); i++ {
		var kids []infinity.ThreadID
		err := scanPrefix(t.b, threadKey(tagChild, string(ids[i]), 0), func(_, v []byte) (bool, error) {
			kids = append(kids, infinity.ThreadID(v))
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if len(ids) > 1_000_000 {
			return nil, fmt.Errorf("delete tree %s: over a million threads, or a cycle: %w", root, ErrCorrupt)
		}
		ids = slices.Insert(ids, i+1, kids...)
	}
	return ids, nil
}

// DeleteThreads forgets the threads' saved states, processed marks and
// waiting messages, in one write.
func (st *stateStore) DeleteThreads(ctx context.Context, ids []infinity.ThreadID) error {
	if len(ids) == 0 {
		return ctx.Err()
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	return st.s.mutateWait(ctx, locks{ids: ids, deletes: true}, func(t *tx) error {
		for _, id := range ids {
			if err := t.deleteState(id); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteState deletes a thread's saved state, processed marks and waiting
// messages.
func (t *tx) deleteState(id infinity.ThreadID) error {
	t.del(threadKey(tagState, string(id), 0))
	marks := threadKey(tagMark, string(id), 0)
	err := scanPrefix(t.b, marks, func(k, v []byte) (bool, error) {
		exp, ok := u64(v)
		if !ok {
			return false, fmt.Errorf("disk store: key %q: %d-byte expiry: %w", k, len(v), ErrCorrupt)
		}
		t.del(expiryKey(int64(exp), slices.Clone(k)))
		t.occRemove(tagMark, id, 1)
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := t.dropSet(tagMark, id); err != nil {
		return err
	}
	waits := threadKey(tagWaitsFor, string(id), 0)
	err = scanPrefix(t.b, waits, func(k, v []byte) (bool, error) {
		seq, ok := u64(v)
		if !ok {
			return false, fmt.Errorf("disk store: key %q: %d-byte sequence number: %w", k, len(v), ErrCorrupt)
		}
		t.del(queuedKey(seq))
		t.waiting--
		t.occRemove(tagWaitsFor, id, 1)
		return true, nil
	})
	if err != nil {
		return err
	}
	return t.dropSet(tagWaitsFor, id)
}
