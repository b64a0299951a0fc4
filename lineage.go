package infinity

import (
	"context"
	"fmt"
	"math"
	"strconv"
)

// History is a thread's reconstructed history: its ancestors' items up to
// each spawn point, then its own items. After a compaction it starts with
// the newest summary the thread may see (a KindSummary item) in place of
// what the summary covers.
type History struct {
	Lineage []ThreadInfo // root first, the thread last
	// Items is the history in order: the summary item (if any) and the
	// inherited items, Inherited in all, then the thread's own items from
	// own position Start on.
	Items []Item
	// Inherited is how many leading Items are not the thread's own items
	// (ancestors' items, and a summary).
	Inherited int
	// Start is the own position of Items[Inherited]: own items before it
	// are covered by the summary.
	Start int
	// Summary is the summary the history starts with; nil when none.
	Summary *Summary
	// SummaryOf is the thread that owns Summary (the thread itself or an
	// ancestor); empty when Summary is nil.
	SummaryOf ThreadID
}

// Own returns the thread's own items as loaded (from Start on).
func (h History) Own() []Item { return h.Items[h.Inherited:] }

// Len returns the thread's own length in the store.
func (h History) Len() int { return h.Start + len(h.Items) - h.Inherited }

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

// SummaryItem is how a summary appears at the start of a loaded history.
func SummaryItem(owner ThreadID, s *Summary) Item {
	return Item{ID: "summary/" + string(owner) + "/" + strconv.Itoa(s.Position), Kind: KindSummary, Text: s.Text, At: s.At}
}

// LoadHistory rebuilds a thread's history without copying anything in the
// store: each ancestor contributes its own items up to the point where the
// next thread down the lineage was spawned. The nearest thread of the
// lineage with a summary it may see (see ConversationStore.Summary) cuts
// the history there: the summary, then that thread's items from the
// summary's Covers on, then the rest of the lineage. It returns ErrNotFound
// for an unknown thread.
func LoadHistory(ctx context.Context, s ConversationStore, id ThreadID) (History, error) {
	lin, err := s.Lineage(ctx, id)
	if err != nil {
		return History{}, fmt.Errorf("load history of %s: %w", id, err)
	}
	h := History{Lineage: lin}
	last := len(lin) - 1
	// bound returns how many of lin[i]'s own items the thread sees (-1: all).
	bound := func(i int) int {
		if i == last {
			return -1
		}
		return lin[i+1].SpawnOrder
	}
	first, from := 0, 0
	for i := last; i >= 0; i-- {
		if !lin[i].Compacted {
			continue
		}
		before := bound(i)
		if before < 0 {
			before = math.MaxInt // the thread sees all of its own summaries
		}
		sum, err := s.Summary(ctx, lin[i].ID, before)
		if err != nil {
			return History{}, fmt.Errorf("load history of %s: summary of %s: %w", id, lin[i].ID, err)
		}
		if sum != nil {
			first, from = i, sum.Covers
			h.Summary, h.SummaryOf = sum, lin[i].ID
			h.Items = append(h.Items, SummaryItem(lin[i].ID, sum))
			break
		}
	}
	for i := first; i <= last; i++ {
		start := 0
		if i == first {
			start = from
		}
		items, err := s.Items(ctx, lin[i].ID, start, bound(i))
		if err != nil {
			return History{}, fmt.Errorf("load history of %s: items of %s: %w", id, lin[i].ID, err)
		}
		if i == last {
			h.Inherited, h.Start = len(h.Items), start
		}
		if h.Items == nil {
			h.Items = items // a fresh slice (ConversationStore.Items): no copy
		} else {
			h.Items = append(h.Items, items...)
		}
	}
	return h, nil
}

// ChildName names the child at index i of a thread's children (kinds are
// their kinds, in spawn order) after its parent's name: "P/1", "P/2", ...
// for spawn_thread children, "P/e1", ... for event threads and "P/c1", ...
// for compaction threads, each counted apart, so that "P/2" is always the
// child of the second spawn_thread call, whatever events and compactions
// came between.
func ChildName(parent string, kinds []ThreadKind, i int) string {
	n := 0
	for _, k := range kinds[:i+1] {
		if k == kinds[i] {
			n++
		}
	}
	switch kinds[i] {
	case ThreadEvent:
		return parent + "/e" + strconv.Itoa(n)
	case ThreadCompaction:
		return parent + "/c" + strconv.Itoa(n)
	}
	return parent + "/" + strconv.Itoa(n)
}

// ParseThreadKind reads a ThreadKind's String ("normal", "event",
// "compaction"); the empty string is ThreadNormal.
func ParseThreadKind(s string) (ThreadKind, error) {
	if s == "" {
		return ThreadNormal, nil
	}
	for k, name := range threadKindNames {
		if name == s {
			return ThreadKind(k), nil
		}
	}
	return 0, fmt.Errorf("thread kind %q: %w", s, ErrInvalid)
}
