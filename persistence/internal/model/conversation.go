package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/infinity-runtime/infinity"
)

// AppliedInline is how many applied message ids a thread keeps in its own
// slice; later ones go to the store-wide overflow map. Most threads apply a
// handful of inputs, and a short slice costs far less than a map.
const AppliedInline = 8

// Conversations is the data of an infinity.ConversationStore. The zero
// value is not usable; call NewConversations.
type Conversations struct {
	threads map[infinity.ThreadID]*thread
	// overflow holds the applied ids of threads that have more than
	// AppliedInline of them (the first AppliedInline stay in the thread).
	overflow map[appliedKey]struct{}
}

// thread is everything the store keeps for one thread. Keep it small: the
// store may hold hundreds of thousands of them.
type thread struct {
	info     infinity.ThreadInfo
	items    []infinity.Item
	outbox   []infinity.Outgoing // unsent, in commit order
	children []infinity.ThreadID // in creation order
	applied  []infinity.MessageID
	// summaries are the thread's compaction summaries, by position.
	summaries []infinity.Summary
}

// appliedKey names a message of a thread: an overflow applied id, or a
// processed mark.
type appliedKey struct {
	thread infinity.ThreadID
	msg    infinity.MessageID
}

// NewConversations returns an empty model.
func NewConversations() *Conversations {
	return &Conversations{threads: make(map[infinity.ThreadID]*thread)}
}

// get returns the thread or a wrapped ErrNotFound.
func (s *Conversations) get(op string, id infinity.ThreadID) (*thread, error) {
	t := s.threads[id]
	if t == nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, infinity.ErrNotFound)
	}
	return t, nil
}

// isApplied reports whether msg was applied by a commit of t.
func (s *Conversations) isApplied(t *thread, msg infinity.MessageID) bool {
	if slices.Contains(t.applied, msg) {
		return true
	}
	if len(t.applied) < AppliedInline {
		return false
	}
	_, ok := s.overflow[appliedKey{t.info.ID, msg}]
	return ok
}

// addApplied records msg as applied to t.
func (s *Conversations) addApplied(t *thread, msg infinity.MessageID) {
	if len(t.applied) < AppliedInline {
		t.applied = append(t.applied, msg)
		return
	}
	if s.overflow == nil {
		s.overflow = make(map[appliedKey]struct{})
	}
	s.overflow[appliedKey{t.info.ID, msg}] = struct{}{}
}

// Has reports whether the thread exists.
func (s *Conversations) Has(id infinity.ThreadID) bool { return s.threads[id] != nil }

// CheckRoot checks CreateThread's argument, before any lock: a non-root
// info or a malformed id is ErrInvalid.
func CheckRoot(info infinity.ThreadInfo) error {
	if !infinity.ValidThreadID(info.ID) {
		return fmt.Errorf("create thread %q: malformed id: %w", info.ID, infinity.ErrInvalid)
	}
	if info.Parent != "" || info.Root != info.ID {
		return fmt.Errorf("create thread %s: not a root (parent %q, root %q): %w",
			info.ID, info.Parent, info.Root, infinity.ErrInvalid)
	}
	return nil
}

// CheckCreate runs CreateThread's check against the model (after
// CheckRoot): a taken id is ErrExists.
func (s *Conversations) CheckCreate(info infinity.ThreadInfo) error {
	if s.threads[info.ID] != nil {
		return fmt.Errorf("create thread %s: %w", info.ID, infinity.ErrExists)
	}
	return nil
}

// ApplyCreate stores a new root thread (checked by CheckCreate).
func (s *Conversations) ApplyCreate(info infinity.ThreadInfo) {
	s.threads[info.ID] = &thread{info: info}
}

// Thread returns a thread's info.
func (s *Conversations) Thread(id infinity.ThreadID) (infinity.ThreadInfo, error) {
	t, err := s.get("thread", id)
	if err != nil {
		return infinity.ThreadInfo{}, err
	}
	return t.info, nil
}

// Lineage appends the thread's ancestors and the thread, root first, to
// dst and returns it. A caller that holds a lock passes a dst allocated
// before it (room for a root's lineage covers most calls), so that little
// is allocated while it holds the lock.
func (s *Conversations) Lineage(dst []infinity.ThreadInfo, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	t, err := s.get("lineage", id)
	if err != nil {
		return nil, err
	}
	start := len(dst)
	for {
		dst = append(dst, t.info)
		if t.info.Parent == "" {
			break
		}
		if t = s.threads[t.info.Parent]; t == nil {
			// Unreachable: parents are checked when children are created
			// and threads are never deleted.
			return nil, fmt.Errorf("lineage %s: missing ancestor: %w", id, infinity.ErrNotFound)
		}
	}
	slices.Reverse(dst[start:])
	return dst, nil
}

// Children returns a thread's direct children in creation order.
func (s *Conversations) Children(id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	t, err := s.get("children", id)
	if err != nil {
		return nil, err
	}
	if len(t.children) == 0 {
		return nil, nil
	}
	out := make([]infinity.ThreadInfo, len(t.children))
	for i, c := range t.children {
		out[i] = s.threads[c].info
	}
	return out, nil
}

// Items returns the thread's own items with positions in [from, to),
// shared with the model: the caller may read them after releasing its lock
// (items are append-only and never change once stored; the result's
// capacity ends at its length) but must not change them, and copies them
// (CloneItemsRoom) before handing them out. Copying after the lock keeps
// allocation, and the garbage collector's assists it may trigger, out of
// the critical section. A negative to, or one past the end, means the end;
// a from past the end or a to before from gives no items. A negative from
// is ErrInvalid.
func (s *Conversations) Items(id infinity.ThreadID, from, to int) ([]infinity.Item, error) {
	t, err := s.get("items", id)
	if err != nil {
		return nil, err
	}
	if from < 0 {
		return nil, fmt.Errorf("items %s: from %d: %w", id, from, infinity.ErrInvalid)
	}
	n := len(t.items)
	if to < 0 || to > n {
		to = n
	}
	if from >= to {
		return nil, nil
	}
	return t.items[from:to:to], nil
}

// CloneItemsRoom copies items from Items with room for what a slice
// appends to the history it loaded.
func CloneItemsRoom(items []infinity.Item) []infinity.Item { return cloneItems(items, 3) }

// Len returns how many own items the thread has.
func (s *Conversations) Len(id infinity.ThreadID) (int, error) {
	t, err := s.get("len", id)
	if err != nil {
		return 0, err
	}
	return len(t.items), nil
}

// Applied reports whether msg was applied by a commit of the thread.
func (s *Conversations) Applied(id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	t, err := s.get("applied", id)
	if err != nil {
		return false, err
	}
	return s.isApplied(t, msg), nil
}

// Outbox returns a copy of the thread's unsent outgoing entries in commit
// order.
func (s *Conversations) Outbox(id infinity.ThreadID) ([]infinity.Outgoing, error) {
	t, err := s.get("outbox", id)
	if err != nil {
		return nil, err
	}
	return CloneOutbox(t.outbox), nil
}

// CheckCommit runs Commit's checks. They run in this order, and the first
// that fails decides the error:
//
//   - c.Thread unknown: ErrNotFound
//   - c.Thread closed: ErrClosed
//   - c.Expected is not the thread's length: ErrConflict
//   - an id in c.Applied was applied before or is repeated: ErrApplied
//   - a thread in c.Create exists or is repeated: ErrExists
//   - a thread in c.Create has a malformed id, a parent that neither exists
//     nor is created earlier in c.Create, or a root other than its
//     parent's: ErrInvalid
//   - an id in c.Close is neither a thread nor in c.Create: ErrNotFound
//   - an empty id in c.Applied or c.Outbox: ErrInvalid
func (s *Conversations) CheckCommit(c infinity.Commit) error {
	return CheckCommit(c, convView{s, s.threads[c.Thread]})
}

// CommitView is what the commit checks read from a store.
type CommitView interface {
	// Thread reports a thread's root, closed flag and own length; ok is
	// false for an unknown thread.
	Thread(id infinity.ThreadID) (root infinity.ThreadID, closed bool, length int, ok bool)
	// Applied reports whether msg was applied to the committing thread.
	Applied(msg infinity.MessageID) bool
}

// CheckCommit runs a commit's checks, in the order the interface documents
// (see Conversations.CheckCommit), against any store's view: the memory
// and file stores and the DSQL store share it.
func CheckCommit(c infinity.Commit, v CommitView) error {
	_, closed, length, ok := v.Thread(c.Thread)
	if !ok {
		return fmt.Errorf("commit %s: %w", c.Thread, infinity.ErrNotFound)
	}
	if closed {
		return fmt.Errorf("commit %s: %w", c.Thread, infinity.ErrClosed)
	}
	if c.Expected != length {
		return fmt.Errorf("commit %s: expected length %d, have %d: %w",
			c.Thread, c.Expected, length, infinity.ErrConflict)
	}
	for i, m := range c.Applied {
		if v.Applied(m) || slices.Contains(c.Applied[:i], m) {
			return fmt.Errorf("commit %s: message %s: %w", c.Thread, m, infinity.ErrApplied)
		}
	}
	known := func(id infinity.ThreadID) bool { _, _, _, ok := v.Thread(id); return ok }
	for i, info := range c.Create {
		if known(info.ID) || createIndex(c.Create[:i], info.ID) >= 0 {
			return fmt.Errorf("commit %s: create %s: %w", c.Thread, info.ID, infinity.ErrExists)
		}
	}
	for i, info := range c.Create {
		if !infinity.ValidThreadID(info.ID) {
			return fmt.Errorf("commit %s: create %q: malformed id: %w", c.Thread, info.ID, infinity.ErrInvalid)
		}
		root, _, _, ok := v.Thread(info.Parent)
		if !ok {
			j := createIndex(c.Create[:i], info.Parent)
			if j < 0 {
				return fmt.Errorf("commit %s: create %s: parent %q unknown: %w",
					c.Thread, info.ID, info.Parent, infinity.ErrInvalid)
			}
			root = c.Create[j].Root
		}
		if info.Root != root {
			return fmt.Errorf("commit %s: create %s: root %q, parent's root %q: %w",
				c.Thread, info.ID, info.Root, root, infinity.ErrInvalid)
		}
	}
	for _, id := range c.Close {
		if !known(id) && createIndex(c.Create, id) < 0 {
			return fmt.Errorf("commit %s: close %s: %w", c.Thread, id, infinity.ErrNotFound)
		}
	}
	if slices.Contains(c.Applied, "") {
		return fmt.Errorf("commit %s: empty applied message id: %w", c.Thread, infinity.ErrInvalid)
	}
	if err := infinity.CheckSummary(c); err != nil {
		return err
	}
	if slices.ContainsFunc(c.Outbox, func(o infinity.Outgoing) bool { return o.ID == "" }) {
		return fmt.Errorf("commit %s: empty outgoing id: %w", c.Thread, infinity.ErrInvalid)
	}
	return nil
}

// convView is the memory model as a CommitView for the thread self.
type convView struct {
	s    *Conversations
	self *thread
}

func (v convView) Thread(id infinity.ThreadID) (infinity.ThreadID, bool, int, bool) {
	t := v.s.threads[id]
	if t == nil {
		return "", false, 0, false
	}
	return t.info.Root, t.info.Closed, len(t.items), true
}

func (v convView) Applied(m infinity.MessageID) bool {
	return v.self != nil && v.s.isApplied(v.self, m)
}

// ApplyCommit applies a commit that passed CheckCommit and returns the
// thread's new length. items and outbox are c.Items and c.Outbox, already
// copied if the caller does not own them; they are stored as they are. An
// outgoing entry whose id is already in the thread's unsent outbox (or
// earlier in outbox) is dropped: the first one wins.
func (s *Conversations) ApplyCommit(c infinity.Commit, items []infinity.Item, outbox []infinity.Outgoing) int {
	t := s.threads[c.Thread]
	t.items = append(t.items, items...)
	for _, m := range c.Applied {
		s.addApplied(t, m)
	}
	t.outbox = appendOutbox(t.outbox, outbox)
	for _, info := range c.Create {
		s.threads[info.ID] = &thread{info: info}
		p := s.threads[info.Parent]
		p.children = append(p.children, info.ID)
	}
	for _, id := range c.Close {
		s.threads[id].info.Closed = true
	}
	if c.Summary != nil {
		t.summaries = append(t.summaries, CloneSummary(*c.Summary))
		t.info.Compacted = true
	}
	return len(t.items)
}

// Summary returns the newest summary of the thread with a position below
// before, or nil; shared with the model like Items' result (summaries never
// change once stored): the caller copies it (CloneSummary) after releasing
// its lock.
func (s *Conversations) Summary(id infinity.ThreadID, before int) (*infinity.Summary, error) {
	t, err := s.get("summary", id)
	if err != nil {
		return nil, err
	}
	for i := len(t.summaries) - 1; i >= 0; i-- {
		if t.summaries[i].Position < before {
			return &t.summaries[i], nil
		}
	}
	return nil, nil
}

func createIndex(infos []infinity.ThreadInfo, id infinity.ThreadID) int {
	return slices.IndexFunc(infos, func(x infinity.ThreadInfo) bool { return x.ID == id })
}

// appendOutbox appends the entries of add whose ids are not yet in box.
func appendOutbox(box, add []infinity.Outgoing) []infinity.Outgoing {
	if len(add) == 0 {
		return box
	}
	if len(box)+len(add) <= 16 {
		for _, o := range add {
			if !slices.ContainsFunc(box, func(x infinity.Outgoing) bool { return x.ID == o.ID }) {
				box = append(box, o)
			}
		}
		return box
	}
	seen := make(map[string]struct{}, len(box)+len(add))
	for _, o := range box {
		seen[o.ID] = struct{}{}
	}
	for _, o := range add {
		if _, ok := seen[o.ID]; !ok {
			seen[o.ID] = struct{}{}
			box = append(box, o)
		}
	}
	return box
}

// CheckMarkSent runs MarkSent's check: an unknown thread is ErrNotFound. It
// reports whether ApplyMarkSent would remove anything (if not, there is
// nothing to apply or journal).
func (s *Conversations) CheckMarkSent(id infinity.ThreadID, outgoing []string) (bool, error) {
	t, err := s.get("mark sent", id)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(t.outbox, func(o infinity.Outgoing) bool { return slices.Contains(outgoing, o.ID) }), nil
}

// ApplyMarkSent removes the named entries from the thread's outbox (checked
// by CheckMarkSent); ids that are not there are ignored.
func (s *Conversations) ApplyMarkSent(id infinity.ThreadID, outgoing []string) {
	t := s.threads[id]
	if len(t.outbox) == 0 || len(outgoing) == 0 {
		return
	}
	kept := slices.DeleteFunc(t.outbox, func(o infinity.Outgoing) bool {
		return slices.Contains(outgoing, o.ID)
	})
	switch {
	case len(kept) == 0:
		t.outbox = nil
	case cap(kept) >= 32 && len(kept) < cap(kept)/4:
		// Give back the memory of a large outbox that was mostly sent.
		t.outbox = slices.Clone(kept)
	default:
		t.outbox = kept
	}
}

// ThreadData is one thread as a snapshot holds it.
type ThreadData struct {
	Info      infinity.ThreadInfo
	Items     []infinity.Item
	Outbox    []infinity.Outgoing
	Children  []infinity.ThreadID
	Applied   []infinity.MessageID
	Summaries []infinity.Summary
}

// ConversationsCapture is the conversations captured for a snapshot: see
// Capture.
type ConversationsCapture struct {
	// Threads holds every thread. Items, children and inline applied ids
	// are shared with the model: they are append-only, and the captured
	// slices end at their length at capture time. Applied lacks the
	// overflow ids until MergeOverflow.
	Threads  []ThreadData
	overflow []appliedKey
}

// Capture copies the model for a snapshot, cheaply (a shallow copy). The
// caller holds the lock; the result may be used after releasing it.
func (s *Conversations) Capture() ConversationsCapture {
	d := ConversationsCapture{
		Threads:  make([]ThreadData, 0, len(s.threads)),
		overflow: make([]appliedKey, 0, len(s.overflow)),
	}
	for _, t := range s.threads {
		d.Threads = append(d.Threads, ThreadData{
			Info:     t.info,
			Items:    t.items[:len(t.items):len(t.items)],
			Outbox:   slices.Clone(t.outbox), // ApplyMarkSent edits it in place
			Children: t.children[:len(t.children):len(t.children)],
			Applied:  t.applied[:len(t.applied):len(t.applied)],
			// Append-only, like the items.
			Summaries: t.summaries[:len(t.summaries):len(t.summaries)],
		})
	}
	for k := range s.overflow {
		d.overflow = append(d.overflow, k)
	}
	return d
}

// MergeOverflow appends each thread's overflow applied ids, sorted, to its
// Applied. It needs no lock.
func (d *ConversationsCapture) MergeOverflow() {
	if len(d.overflow) == 0 {
		return
	}
	extra := make(map[infinity.ThreadID][]infinity.MessageID)
	for _, k := range d.overflow {
		extra[k.thread] = append(extra[k.thread], k.msg)
	}
	for i := range d.Threads {
		t := &d.Threads[i]
		if more := extra[t.Info.ID]; len(more) > 0 {
			sort.Slice(more, func(a, b int) bool { return more[a] < more[b] })
			t.Applied = append(slices.Clip(t.Applied), more...)
		}
	}
	d.overflow = nil
}

// Restore adds a thread from a snapshot, which owns nothing in d
// afterwards. Applied ids past AppliedInline go to the overflow map.
func (s *Conversations) Restore(d ThreadData) {
	t := &thread{info: d.Info, items: d.Items, outbox: d.Outbox, children: d.Children, summaries: d.Summaries}
	s.threads[d.Info.ID] = t
	for _, m := range d.Applied {
		s.addApplied(t, m)
	}
}

// InlineApplied returns how many applied ids the thread keeps inline (for
// tests).
func (s *Conversations) InlineApplied(id infinity.ThreadID) int {
	if t := s.threads[id]; t != nil {
		return len(t.applied)
	}
	return 0
}

// OverflowLen returns how many applied ids the overflow map holds (for
// tests).
func (s *Conversations) OverflowLen() int { return len(s.overflow) }

// Unsent returns the threads whose outbox holds entries, in no order.
func (s *Conversations) Unsent() []infinity.ThreadID {
	var out []infinity.ThreadID
	for id, t := range s.threads {
		if len(t.outbox) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Count returns how many threads there are.
func (s *Conversations) Count() int { return len(s.threads) }

// All returns every thread's info, oldest first (ties by id).
func (s *Conversations) All() []infinity.ThreadInfo {
	out := make([]infinity.ThreadInfo, 0, len(s.threads))
	for _, t := range s.threads {
		out = append(out, t.info)
	}
	slices.SortFunc(out, func(a, b infinity.ThreadInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return out
}

// CheckDeleteTree runs DeleteTree's checks: ErrNotFound for an unknown id,
// ErrInvalid for a child, ErrConflict for a root that is not closed.
func (s *Conversations) CheckDeleteTree(root infinity.ThreadID) error {
	t, err := s.get("delete tree", root)
	if err != nil {
		return err
	}
	return CheckDeletable(t.info)
}

// CheckDeletable checks that info is a closed root (DeleteTree's checks
// after the lookup), for every store.
func CheckDeletable(info infinity.ThreadInfo) error {
	if !info.IsRoot() {
		return fmt.Errorf("delete tree %s: not a root (its root is %s): %w", info.ID, info.Root, infinity.ErrInvalid)
	}
	if !info.Closed {
		return fmt.Errorf("delete tree %s: the tree is open; close it first: %w", info.ID, infinity.ErrConflict)
	}
	return nil
}

// ApplyDeleteTree deletes the tree of a root that passed CheckDeleteTree
// and returns its thread ids, root first, then depth first in creation
// order.
func (s *Conversations) ApplyDeleteTree(root infinity.ThreadID) []infinity.ThreadID {
	var ids []infinity.ThreadID
	var walk func(id infinity.ThreadID)
	walk = func(id infinity.ThreadID) {
		t := s.threads[id]
		if t == nil {
			return
		}
		ids = append(ids, id)
		for _, c := range t.children {
			walk(c)
		}
	}
	walk(root)
	for _, id := range ids {
		t := s.threads[id]
		if len(t.applied) >= AppliedInline {
			for k := range s.overflow {
				if k.thread == id {
					delete(s.overflow, k)
				}
			}
		}
		delete(s.threads, id)
	}
	return ids
}
