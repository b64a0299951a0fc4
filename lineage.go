package infinity

import (
	"context"
	"fmt"
)

// History is a thread's reconstructed history: its ancestors' items up to
// each spawn point, then its own items.
type History struct {
	Lineage []ThreadInfo // root first, the thread last
	Items   []Item
	// Inherited is how many leading Items come from ancestors.
	Inherited int
}

// Own returns the thread's own items.
func (h History) Own() []Item { return h.Items[h.Inherited:] }

// Thread returns the thread's own info.
func (h History) Thread() ThreadInfo { return h.Lineage[len(h.Lineage)-1] }

// Stack returns the lineage's ids, root first.
func (h History) Stack() []ThreadID {
	s := make([]ThreadID, len(h.Lineage))
	for i, t := range h.Lineage {
		s[i] = t.ID
	}
	return s
}

// LoadHistory rebuilds a thread's history without copying anything in the
// store: each ancestor contributes its own items up to the point where the
// next thread down the lineage was spawned. It returns ErrNotFound for an
// unknown thread.
func LoadHistory(ctx context.Context, s ConversationStore, id ThreadID) (History, error) {
	lin, err := s.Lineage(ctx, id)
	if err != nil {
		return History{}, fmt.Errorf("load history of %s: %w", id, err)
	}
	h := History{Lineage: lin}
	for i, t := range lin {
		to := -1
		if i+1 < len(lin) {
			to = lin[i+1].SpawnOrder
		}
		items, err := s.Items(ctx, t.ID, 0, to)
		if err != nil {
			return History{}, fmt.Errorf("load history of %s: items of %s: %w", id, t.ID, err)
		}
		if i+1 < len(lin) {
			h.Inherited += len(items)
		}
		h.Items = append(h.Items, items...)
	}
	return h, nil
}
