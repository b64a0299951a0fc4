package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/infinity-runtime/infinity"
)

// appliedInline is how many applied message ids a thread keeps in its own
// slice; later ones go to the store-wide overflow map. Most threads apply a
// handful of inputs, and a short slice costs far less than a map.
const appliedInline = 8

// ConversationStore is an in-memory infinity.ConversationStore. The zero
// value is not usable; call NewConversationStore.
type ConversationStore struct {
	mu      sync.RWMutex
	threads map[infinity.ThreadID]*thread
	// overflow holds the applied ids of threads that have more than
	// appliedInline of them (the first appliedInline stay in the thread).
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
}

type appliedKey struct {
	thread infinity.ThreadID
	msg    infinity.MessageID
}

var _ infinity.ConversationStore = (*ConversationStore)(nil)

// NewConversationStore returns an empty store.
func NewConversationStore() *ConversationStore {
	return &ConversationStore{threads: make(map[infinity.ThreadID]*thread)}
}

// get returns the thread or a wrapped ErrNotFound. The caller holds s.mu.
func (s *ConversationStore) get(op string, id infinity.ThreadID) (*thread, error) {
	t := s.threads[id]
	if t == nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, infinity.ErrNotFound)
	}
	return t, nil
}

// isApplied reports whether msg was applied by a commit of t. The caller
// holds s.mu.
func (s *ConversationStore) isApplied(t *thread, msg infinity.MessageID) bool {
	if slices.Contains(t.applied, msg) {
		return true
	}
	if len(t.applied) < appliedInline {
		return false
	}
	_, ok := s.overflow[appliedKey{t.info.ID, msg}]
	return ok
}

// addApplied records msg as applied to t. The caller holds s.mu for writing.
func (s *ConversationStore) addApplied(t *thread, msg infinity.MessageID) {
	if len(t.applied) < appliedInline {
		t.applied = append(t.applied, msg)
		return
	}
	if s.overflow == nil {
		s.overflow = make(map[appliedKey]struct{})
	}
	s.overflow[appliedKey{t.info.ID, msg}] = struct{}{}
}

// CreateThread stores a new root thread. A non-root info or a malformed id
// is ErrInvalid; a taken id is ErrExists.
func (s *ConversationStore) CreateThread(ctx context.Context, info infinity.ThreadInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !infinity.ValidThreadID(info.ID) {
		return fmt.Errorf("create thread %q: malformed id: %w", info.ID, infinity.ErrInvalid)
	}
	if info.Parent != "" || info.Root != info.ID {
		return fmt.Errorf("create thread %s: not a root (parent %q, root %q): %w",
			info.ID, info.Parent, info.Root, infinity.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.threads[info.ID] != nil {
		return fmt.Errorf("create thread %s: %w", info.ID, infinity.ErrExists)
	}
	s.threads[info.ID] = &thread{info: info}
	return nil
}

// Thread returns a thread's info.
func (s *ConversationStore) Thread(ctx context.Context, id infinity.ThreadID) (infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return infinity.ThreadInfo{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.get("thread", id)
	if err != nil {
		return infinity.ThreadInfo{}, err
	}
	return t.info, nil
}

// Lineage returns the thread's ancestors and the thread, root first.
func (s *ConversationStore) Lineage(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.get("lineage", id)
	if err != nil {
		return nil, err
	}
	var out []infinity.ThreadInfo
	for {
		out = append(out, t.info)
		if t.info.Parent == "" {
			break
		}
		if t = s.threads[t.info.Parent]; t == nil {
			// Unreachable: parents are checked when children are created
			// and threads are never deleted.
			return nil, fmt.Errorf("lineage %s: missing ancestor: %w", id, infinity.ErrNotFound)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// Children returns a thread's direct children in creation order.
func (s *ConversationStore) Children(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
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

// Items returns the thread's own items with positions in [from, to). A
// negative to, or one past the end, means the end; a from past the end or a
// to before from gives no items. A negative from is ErrInvalid.
func (s *ConversationStore) Items(ctx context.Context, id infinity.ThreadID, from, to int) ([]infinity.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
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
	return cloneItems(t.items[from:to]), nil
}

// Len returns how many own items the thread has.
func (s *ConversationStore) Len(ctx context.Context, id infinity.ThreadID) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.get("len", id)
	if err != nil {
		return 0, err
	}
	return len(t.items), nil
}

// Commit applies one slice atomically. The checks run in this order, and
// the first that fails decides the error; nothing changes on error:
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
//
// c.Close may name c.Thread itself. An outgoing entry whose id is already in
// the thread's unsent outbox (or earlier in c.Outbox) is dropped: the first
// one wins.
func (s *ConversationStore) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Copy before locking: nothing the caller holds may end up in the store.
	items := cloneItems(c.Items)
	outbox := cloneOutbox(c.Outbox)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkCommit(c); err != nil {
		return 0, err
	}

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
	return len(t.items), nil
}

// checkCommit runs Commit's checks. The caller holds s.mu.
func (s *ConversationStore) checkCommit(c infinity.Commit) error {
	t := s.threads[c.Thread]
	if t == nil {
		return fmt.Errorf("commit %s: %w", c.Thread, infinity.ErrNotFound)
	}
	if t.info.Closed {
		return fmt.Errorf("commit %s: %w", c.Thread, infinity.ErrClosed)
	}
	if c.Expected != len(t.items) {
		return fmt.Errorf("commit %s: expected length %d, have %d: %w",
			c.Thread, c.Expected, len(t.items), infinity.ErrConflict)
	}
	for i, m := range c.Applied {
		if s.isApplied(t, m) || slices.Contains(c.Applied[:i], m) {
			return fmt.Errorf("commit %s: message %s: %w", c.Thread, m, infinity.ErrApplied)
		}
	}
	for i, info := range c.Create {
		if s.threads[info.ID] != nil || createIndex(c.Create[:i], info.ID) >= 0 {
			return fmt.Errorf("commit %s: create %s: %w", c.Thread, info.ID, infinity.ErrExists)
		}
	}
	for i, info := range c.Create {
		if !infinity.ValidThreadID(info.ID) {
			return fmt.Errorf("commit %s: create %q: malformed id: %w", c.Thread, info.ID, infinity.ErrInvalid)
		}
		var root infinity.ThreadID
		if p := s.threads[info.Parent]; p != nil {
			root = p.info.Root
		} else if j := createIndex(c.Create[:i], info.Parent); j >= 0 {
			root = c.Create[j].Root
		} else {
			return fmt.Errorf("commit %s: create %s: parent %q unknown: %w",
				c.Thread, info.ID, info.Parent, infinity.ErrInvalid)
		}
		if info.Root != root {
			return fmt.Errorf("commit %s: create %s: root %q, parent's root %q: %w",
				c.Thread, info.ID, info.Root, root, infinity.ErrInvalid)
		}
	}
	for _, id := range c.Close {
		if s.threads[id] == nil && createIndex(c.Create, id) < 0 {
			return fmt.Errorf("commit %s: close %s: %w", c.Thread, id, infinity.ErrNotFound)
		}
	}
	for _, m := range c.Applied {
		if m == "" {
			return fmt.Errorf("commit %s: empty applied message id: %w", c.Thread, infinity.ErrInvalid)
		}
	}
	for _, o := range c.Outbox {
		if o.ID == "" {
			return fmt.Errorf("commit %s: empty outgoing id: %w", c.Thread, infinity.ErrInvalid)
		}
	}
	return nil
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

// Applied reports whether msg was applied by a commit of the thread.
func (s *ConversationStore) Applied(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.get("applied", id)
	if err != nil {
		return false, err
	}
	return s.isApplied(t, msg), nil
}

// Outbox returns the thread's unsent outgoing entries in commit order.
func (s *ConversationStore) Outbox(ctx context.Context, id infinity.ThreadID) ([]infinity.Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.get("outbox", id)
	if err != nil {
		return nil, err
	}
	return cloneOutbox(t.outbox), nil
}

// MarkSent removes the named entries from the thread's outbox; ids that are
// not there are ignored.
func (s *ConversationStore) MarkSent(ctx context.Context, id infinity.ThreadID, outgoing ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.get("mark sent", id)
	if err != nil {
		return err
	}
	if len(t.outbox) == 0 || len(outgoing) == 0 {
		return nil
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
	return nil
}
