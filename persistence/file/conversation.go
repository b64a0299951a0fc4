package file

import (
	"context"
	"fmt"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

// convStore is the journalled infinity.ConversationStore: the data model
// shared with the memory package (persistence/internal/model) behind a
// guard that checks, journals and applies every mutation under its lock.
type convStore struct {
	guard
	m *model.Conversations
}

var _ infinity.ConversationStore = (*convStore)(nil)

func newConvStore(st *Store) *convStore {
	return &convStore{guard: guard{st: st}, m: model.NewConversations()}
}

// CreateThread stores a new root thread. A non-root info or a malformed id
// is ErrInvalid; a taken id is ErrExists. It returns once the thread is
// durable.
func (s *convStore) CreateThread(ctx context.Context, info infinity.ThreadInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := model.CheckRoot(info); err != nil {
		return err
	}
	rb, err := encodeRecord(record{Op: opCreate, Info: &info})
	if err != nil {
		return fmt.Errorf("create thread %s: %w", info.ID, err)
	}
	defer rb.free()
	return s.mutate("create thread", info.ID, nil, rb.b,
		func() error { return s.m.CheckCreate(info) },
		func() { s.m.ApplyCreate(info) })
}

// Thread returns a thread's info.
func (s *convStore) Thread(ctx context.Context, id infinity.ThreadID) (infinity.ThreadInfo, error) {
	return readThread(&s.guard, ctx, id, func() (infinity.ThreadInfo, error) { return s.m.Thread(id) })
}

// Lineage returns the thread's ancestors and the thread, root first.
func (s *convStore) Lineage(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	var lin []infinity.ThreadInfo
	err := ctx.Err()
	if err == nil {
		dst := make([]infinity.ThreadInfo, 0, 1) // a root's; deeper ones grow
		s.mu.RLock()
		lin, err = s.m.Lineage(dst, id)
		s.mu.RUnlock()
	}
	if err != nil {
		return nil, s.barrier(err)
	}
	// The lineage is these threads' infos: wait for their mutations only.
	var seq uint64
	for _, t := range lin {
		seq = max(seq, s.stripes[stripe(t.ID)].Load())
	}
	return lin, s.st.j.wait(seq)
}

// Children returns a thread's direct children in creation order.
func (s *convStore) Children(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	return read(&s.guard, ctx, func() ([]infinity.ThreadInfo, error) { return s.m.Children(id) })
}

// Items returns the thread's own items with positions in [from, to). A
// negative to, or one past the end, means the end; a from past the end or a
// to before from gives no items. A negative from is ErrInvalid.
func (s *convStore) Items(ctx context.Context, id infinity.ThreadID, from, to int) ([]infinity.Item, error) {
	items, err := readThread(&s.guard, ctx, id, func() ([]infinity.Item, error) { return s.m.Items(id, from, to) })
	if err != nil {
		return nil, err
	}
	// Copied after the lock (see model.Conversations.Items).
	return model.CloneItemsRoom(items), nil
}

// Len returns how many own items the thread has.
func (s *convStore) Len(ctx context.Context, id infinity.ThreadID) (int, error) {
	return readThread(&s.guard, ctx, id, func() (int, error) { return s.m.Len(id) })
}

// Applied reports whether msg was applied by a commit of the thread.
func (s *convStore) Applied(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	return readThread(&s.guard, ctx, id, func() (bool, error) { return s.m.Applied(id, msg) })
}

// Outbox returns the thread's unsent outgoing entries in commit order.
func (s *convStore) Outbox(ctx context.Context, id infinity.ThreadID) ([]infinity.Outgoing, error) {
	return readThread(&s.guard, ctx, id, func() ([]infinity.Outgoing, error) { return s.m.Outbox(id) })
}

// Summary returns the thread's newest summary with a position below
// before, or nil.
func (s *convStore) Summary(ctx context.Context, id infinity.ThreadID, before int) (*infinity.Summary, error) {
	sum, err := readThread(&s.guard, ctx, id, func() (*infinity.Summary, error) { return s.m.Summary(id, before) })
	if err != nil {
		return nil, err
	}
	return model.CloneSummaryOf(sum), nil // after the lock
}

// Commit applies one slice atomically, with the checks, error order and
// outbox deduplication of the memory package (see model.CheckCommit);
// nothing changes on error. Commit returns once the commit is durable.
// The same record consumes the messages the slice applied from the inbox
// (Commit.Applied) and puts the outbox's messages into it (see
// stateStore.putOutbox).
func (s *convStore) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	n, durable, err := s.CommitDeferred(ctx, c)
	if err != nil {
		return 0, err
	}
	if err := durable(); err != nil {
		return 0, err
	}
	return n, nil
}

// CommitDeferred is Commit that returns once the commit is checked,
// journalled and applied, before it is durable: durable waits until it is
// (group commit), and returns the journal's error if it never will be.
// Reads of the thread wait for it meanwhile, as they wait for every record
// of the thread. The engine uses it so that a slice's goroutine does not
// sit idle through the fsync (actors.DeferredCommitter).
func (s *convStore) CommitDeferred(ctx context.Context, c infinity.Commit) (n int, durable func() error, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	// Copy and encode before locking: nothing the caller holds may end up
	// in the store, and the lock is held only to check, journal and apply.
	items := model.CloneItems(c.Items)
	outbox := model.CloneOutbox(c.Outbox)
	rb, err := encodeRecord(record{Op: opCommit, Commit: &c})
	if err != nil {
		return 0, nil, fmt.Errorf("commit %s: %w", c.Thread, err)
	}
	defer rb.free()
	seq, err := s.record("commit", c.Thread, commitTouches(c), rb.b,
		func() error { return s.m.CheckCommit(c) },
		func(seq uint64) {
			n = s.m.ApplyCommit(c, items, outbox)
			s.st.state.consume(seq, c.Thread, c.Applied)
			s.st.state.putOutbox(seq, outbox)
		})
	if err != nil {
		return 0, nil, err
	}
	j, id := s.st.j, c.Thread
	return n, func() error {
		if err := j.wait(seq); err != nil {
			return fmt.Errorf("commit %s: %w", id, err)
		}
		return nil
	}, nil
}

// MarkSent removes the named entries from the thread's outbox; ids that are
// not there are ignored. Only a call that removes something is journalled,
// and MarkSent does not wait for that record's fsync: a crash that loses it
// leaves the entries in the outbox, and the restart sends them again under
// their stable ids, which the receivers treat as repeats. (A slice that
// sleeps waits for one fsync less.)
func (s *convStore) MarkSent(ctx context.Context, id infinity.ThreadID, outgoing ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rb, err := encodeRecord(record{Op: opMarkSent, Thread: id, IDs: outgoing})
	if err != nil {
		return fmt.Errorf("mark sent %s: %w", id, err)
	}
	defer rb.free()
	return s.mutateLazy("mark sent", id, rb.b,
		func() error {
			change, err := s.m.CheckMarkSent(id, outgoing)
			if err == nil && !change {
				return errUnchanged // nothing to remove: nothing to journal
			}
			return err
		},
		func() { s.m.ApplyMarkSent(id, outgoing) })
}

// KeepsApplied says that the store's applied records are read as cheaply
// as processed marks and that a commit consumes the messages it applied
// from the inbox (actors.AppliedKeeper): the runtime then writes no
// processed marks for them.
func (c *convStore) KeepsApplied() bool { return true }

// Unsent returns the threads whose outbox still holds entries: after a
// crash between a commit and its sends, the daemon wakes them.
func (s *Store) Unsent(ctx context.Context) ([]infinity.ThreadID, error) {
	return read(&s.conv.guard, ctx, func() ([]infinity.ThreadID, error) { return s.conv.m.Unsent(), nil })
}

// Counts returns how many threads the store holds and how many messages
// wait in its inbox, without copying either (the daemon's status).
func (s *Store) Counts(ctx context.Context) (threads, waiting int, err error) {
	threads, err = read(&s.conv.guard, ctx, func() (int, error) { return s.conv.m.Count(), nil })
	if err != nil {
		return 0, 0, err
	}
	waiting, err = read(&s.state.guard, ctx, func() (int, error) { return s.state.m.WaitingCount(), nil })
	return threads, waiting, err
}

// Threads returns every thread's info, oldest first.
func (s *Store) Threads(ctx context.Context) ([]infinity.ThreadInfo, error) {
	return s.conv.Threads(ctx)
}

// Threads returns every thread's info, oldest first (actors.ThreadLister).
func (c *convStore) Threads(ctx context.Context) ([]infinity.ThreadInfo, error) {
	return read(&c.guard, ctx, func() ([]infinity.ThreadInfo, error) { return c.m.All(), nil })
}

// commitTouches names the threads whose data a commit's check reads or its
// apply changes: the committing thread, the created threads and their
// parents (whose children lists grow) and the closed threads.
func commitTouches(c infinity.Commit) []infinity.ThreadID {
	if len(c.Create) == 0 && len(c.Close) == 0 {
		return nil // c.Thread only
	}
	ids := make([]infinity.ThreadID, 0, 1+2*len(c.Create)+len(c.Close))
	ids = append(ids, c.Thread)
	for _, info := range c.Create {
		ids = append(ids, info.ID, info.Parent)
	}
	return append(ids, c.Close...)
}
