package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// Deleted answers DELETE /v1/threads/{id}.
type Deleted struct {
	// Threads are the deleted threads, the root first.
	Threads []infinity.ThreadID `json:"threads"`
}

// deleteThread deletes a closed tree: DELETE /v1/threads/{id}, for a
// closed root (404 unknown, 400 a child, 409 open).
func (d *Daemon) deleteThread(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	ids, err := d.deleteTree(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Deleted{Threads: ids})
	return nil
}

// deleteTree deletes a closed tree from the store (its history and state,
// in one write: the disk store's DeleteTree), and what the daemon keeps
// of it in memory: pending timers, failures, views. The timers go first:
// a closed tree takes no input (its timers would be dropped anyway), and
// once the tree is deleted its ids may be started again, whose timers
// must stay.
func (d *Daemon) deleteTree(ctx context.Context, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	conv := d.store.Conversations()
	info, err := conv.Thread(ctx, root)
	if err != nil {
		return nil, err
	}
	if info.IsRoot() && info.Closed {
		tree, err := subtree(ctx, conv, root)
		if err != nil {
			return nil, err
		}
		for _, id := range tree {
			d.sender.CancelThread(id)
		}
	}
	ids, err := conv.(infinity.TreeDeleter).DeleteTree(ctx, root)
	if err != nil {
		return nil, err
	}
	d.failMu.Lock()
	for _, id := range ids {
		delete(d.failed, id)
	}
	d.failMu.Unlock()
	d.views.forget(ids)
	for _, id := range ids {
		d.sends.forgetThread(id) // its message ids may be used again by a new thread of that id
		d.live.forget(id)
		d.hub.poke(id)
	}
	return ids, nil
}

// subtree returns root and every thread below it.
func subtree(ctx context.Context, conv infinity.ConversationStore, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	ids := []infinity.ThreadID{root}
	for i := 0; i < len(ids); i++ {
		kids, err := conv.Children(ctx, ids[i])
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			ids = append(ids, k.ID)
		}
	}
	return ids, nil
}

// forget drops the views of deleted threads.
func (v *views) forget(ids []infinity.ThreadID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range ids {
		delete(v.m, id)
	}
}

// Delete deletes a closed tree (its root's id) and returns the deleted
// threads.
func (c *Client) Delete(ctx context.Context, id infinity.ThreadID) (Deleted, error) {
	var v Deleted
	return v, c.do(ctx, "DELETE", "/v1/threads/"+url.PathEscape(string(id)), nil, &v)
}

// retain deletes closed trees whose root's last item is older than
// Options.RetainClosed, once at start and then every retainEvery, until
// the daemon stops.
func (d *Daemon) retain() {
	keep := d.opts.RetainClosed
	tick := time.NewTicker(retainEvery(keep))
	defer tick.Stop()
	for {
		n, err := d.sweepClosed(d.bgCtx, time.Now().Add(-keep))
		if err != nil && d.bgCtx.Err() == nil {
			d.log.Warn("retention: deleting closed trees", "err", err)
		} else if n > 0 {
			d.log.Info("retention: deleted closed trees", "trees", n, "older than", keep)
		}
		select {
		case <-d.bgCtx.Done():
			return
		case <-tick.C:
		}
	}
}

// retainEvery is how often retention runs: a tenth of the retention,
// between a minute and an hour.
func retainEvery(keep time.Duration) time.Duration {
	return min(max(keep/10, time.Minute), time.Hour)
}

// sweepClosed deletes the closed trees whose root's last item is before
// cutoff and returns how many it deleted.
func (d *Daemon) sweepClosed(ctx context.Context, cutoff time.Time) (int, error) {
	all, err := d.store.Threads(ctx)
	if err != nil {
		return 0, err
	}
	conv := d.store.Conversations()
	n := 0
	for _, info := range all {
		if !info.IsRoot() || !info.Closed {
			continue
		}
		last := info.Created
		l, err := conv.Len(ctx, info.ID)
		if errors.Is(err, infinity.ErrNotFound) {
			continue // deleted since the listing was read
		}
		if err != nil {
			return n, err
		}
		if l > 0 {
			items, err := conv.Items(ctx, info.ID, l-1, l)
			if err != nil {
				return n, err
			}
			last = items[0].At
		}
		if !last.Before(cutoff) {
			continue
		}
		deleted, err := d.retire(ctx, info.ID)
		if err != nil {
			return n, fmt.Errorf("delete tree %s: %w", info.ID, err)
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// retire deletes a closed tree for retention, unless it is moving to
// another daemon (the move owns it; its end decides). The check and the
// deletion hold the moves' gate, so a move cannot begin between them.
func (d *Daemon) retire(ctx context.Context, root infinity.ThreadID) (bool, error) {
	d.moves.gate.RLock()
	defer d.moves.gate.RUnlock()
	if d.moves.dir(root) != "" {
		return false, nil
	}
	if _, err := d.deleteTree(ctx, root); err != nil {
		return false, err
	}
	return true, nil
}
