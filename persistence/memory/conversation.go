package memory

import (
	"context"
	"sync"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

// ConversationStore is an in-memory infinity.ConversationStore. The zero
// value is not usable; call NewConversationStore.
type ConversationStore struct {
	mu sync.RWMutex
	m  *model.Conversations
}

var _ infinity.ConversationStore = (*ConversationStore)(nil)

// NewConversationStore returns an empty store.
func NewConversationStore() *ConversationStore {
	return &ConversationStore{m: model.NewConversations()}
}

// CreateThread stores a new root thread. A non-root info or a malformed id
// is ErrInvalid; a taken id is ErrExists.
func (s *ConversationStore) CreateThread(ctx context.Context, info infinity.ThreadInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := model.CheckRoot(info); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.m.CheckCreate(info); err != nil {
		return err
	}
	s.m.ApplyCreate(info)
	return nil
}

// Thread returns a thread's info.
func (s *ConversationStore) Thread(ctx context.Context, id infinity.ThreadID) (infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return infinity.ThreadInfo{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Thread(id)
}

// Lineage returns the thread's ancestors and the thread, root first.
func (s *ConversationStore) Lineage(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dst := make([]infinity.ThreadInfo, 0, 1) // a root's; deeper ones grow
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Lineage(dst, id)
}

// Children returns a thread's direct children in creation order.
func (s *ConversationStore) Children(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Children(id)
}

// Items returns the thread's own items with positions in [from, to). A
// negative to, or one past the end, means the end; a from past the end or a
// to before from gives no items. A negative from is ErrInvalid.
func (s *ConversationStore) Items(ctx context.Context, id infinity.ThreadID, from, to int) ([]infinity.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	items, err := s.m.Items(id, from, to)
	s.mu.RUnlock()
	return model.CloneItemsRoom(items), err
}

// Len returns how many own items the thread has.
func (s *ConversationStore) Len(ctx context.Context, id infinity.ThreadID) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Len(id)
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
//   - a summary whose Position is not c.Expected, or whose Covers is
//     outside [0, c.Expected]: ErrInvalid
//
// c.Close may name c.Thread itself. An outgoing entry whose id is already in
// the thread's unsent outbox (or earlier in c.Outbox) is dropped: the first
// one wins.
func (s *ConversationStore) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Copy before locking: nothing the caller holds may end up in the store.
	items := model.CloneItems(c.Items)
	outbox := model.CloneOutbox(c.Outbox)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.m.CheckCommit(c); err != nil {
		return 0, err
	}
	return s.m.ApplyCommit(c, items, outbox), nil
}

// Summary returns the thread's newest summary with a position below
// before, or nil.
func (s *ConversationStore) Summary(ctx context.Context, id infinity.ThreadID, before int) (*infinity.Summary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	sum, err := s.m.Summary(id, before)
	s.mu.RUnlock()
	return model.CloneSummaryOf(sum), err // after the lock
}

// Applied reports whether msg was applied by a commit of the thread.
func (s *ConversationStore) Applied(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Applied(id, msg)
}

// Outbox returns the thread's unsent outgoing entries in commit order.
func (s *ConversationStore) Outbox(ctx context.Context, id infinity.ThreadID) ([]infinity.Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Outbox(id)
}

// MarkSent removes the named entries from the thread's outbox; ids that are
// not there are ignored.
func (s *ConversationStore) MarkSent(ctx context.Context, id infinity.ThreadID, outgoing ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	change, err := s.m.CheckMarkSent(id, outgoing)
	if change {
		s.m.ApplyMarkSent(id, outgoing)
	}
	return err
}

// Threads returns every thread's info, oldest first.
func (s *ConversationStore) Threads(ctx context.Context) ([]infinity.ThreadInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.All(), nil
}

// DeleteTree deletes a closed tree (infinity.TreeDeleter).
func (s *ConversationStore) DeleteTree(ctx context.Context, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.m.CheckDeleteTree(root); err != nil {
		return nil, err
	}
	return s.m.ApplyDeleteTree(root), nil
}
