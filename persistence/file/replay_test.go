package file

import (
	"context"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/storetest"
)

// reopening runs every read against a store freshly reopened from disk, so
// the conformance suites check what replay rebuilds, not only what the
// writing process holds in memory.
type reopening struct {
	t     *testing.T
	dir   string
	opts  []Option
	mu    sync.RWMutex // writes share it; a reopen takes it alone
	store *Store
	// compact writes a snapshot before each reopen, so that reads see
	// what the snapshot restores rather than what the journal replays.
	compact bool
}

func newReopening(t *testing.T, opts ...Option) *reopening {
	r := &reopening{t: t, dir: t.TempDir(), opts: opts}
	r.store = open(t, r.dir, opts...)
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := r.store.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// read reopens the store and runs f on it.
func (r *reopening) read(f func(*Store)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.compact {
		if err := r.store.Compact(); err != nil {
			r.t.Errorf("Compact: %v", err)
		}
	}
	if err := r.store.Close(); err != nil {
		r.t.Errorf("Close: %v", err)
	}
	s, err := Open(r.dir, r.opts...)
	if err != nil {
		r.t.Fatalf("reopen: %v", err)
	}
	r.store = s
	f(s)
}

func (r *reopening) write(f func(*Store)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f(r.store)
}

type replayConv struct{ r *reopening }

func (c replayConv) CreateThread(ctx context.Context, info infinity.ThreadInfo) (err error) {
	c.r.write(func(s *Store) { err = s.Conversations().CreateThread(ctx, info) })
	return
}
func (c replayConv) Commit(ctx context.Context, cm infinity.Commit) (n int, err error) {
	c.r.write(func(s *Store) { n, err = s.Conversations().Commit(ctx, cm) })
	return
}
func (c replayConv) MarkSent(ctx context.Context, id infinity.ThreadID, out ...string) (err error) {
	c.r.write(func(s *Store) { err = s.Conversations().MarkSent(ctx, id, out...) })
	return
}
func (c replayConv) Thread(ctx context.Context, id infinity.ThreadID) (i infinity.ThreadInfo, err error) {
	c.r.read(func(s *Store) { i, err = s.Conversations().Thread(ctx, id) })
	return
}
func (c replayConv) Lineage(ctx context.Context, id infinity.ThreadID) (l []infinity.ThreadInfo, err error) {
	c.r.read(func(s *Store) { l, err = s.Conversations().Lineage(ctx, id) })
	return
}
func (c replayConv) Children(ctx context.Context, id infinity.ThreadID) (l []infinity.ThreadInfo, err error) {
	c.r.read(func(s *Store) { l, err = s.Conversations().Children(ctx, id) })
	return
}
func (c replayConv) Items(ctx context.Context, id infinity.ThreadID, from, to int) (l []infinity.Item, err error) {
	c.r.read(func(s *Store) { l, err = s.Conversations().Items(ctx, id, from, to) })
	return
}
func (c replayConv) Len(ctx context.Context, id infinity.ThreadID) (n int, err error) {
	c.r.read(func(s *Store) { n, err = s.Conversations().Len(ctx, id) })
	return
}
func (c replayConv) Applied(ctx context.Context, id infinity.ThreadID, m infinity.MessageID) (ok bool, err error) {
	c.r.read(func(s *Store) { ok, err = s.Conversations().Applied(ctx, id, m) })
	return
}
func (c replayConv) Outbox(ctx context.Context, id infinity.ThreadID) (o []infinity.Outgoing, err error) {
	c.r.read(func(s *Store) { o, err = s.Conversations().Outbox(ctx, id) })
	return
}

func (c replayConv) Summary(ctx context.Context, id infinity.ThreadID, before int) (sum *infinity.Summary, err error) {
	c.r.read(func(s *Store) { sum, err = s.Conversations().Summary(ctx, id, before) })
	return
}

type replayState struct{ r *reopening }

func (c replayState) Processed(ctx context.Context, id infinity.ThreadID, m infinity.MessageID) (ok bool, err error) {
	c.r.read(func(s *Store) { ok, err = s.State().Processed(ctx, id, m) })
	return
}
func (c replayState) MarkProcessed(ctx context.Context, id infinity.ThreadID, ms []infinity.MessageID, ttl time.Duration) (err error) {
	c.r.write(func(s *Store) { err = s.State().MarkProcessed(ctx, id, ms, ttl) })
	return
}
func (c replayState) Load(ctx context.Context, id infinity.ThreadID) (st infinity.State, v infinity.Version, err error) {
	c.r.read(func(s *Store) { st, v, err = s.State().Load(ctx, id) })
	return
}
func (c replayState) Save(ctx context.Context, id infinity.ThreadID, st infinity.State, v infinity.Version) (nv infinity.Version, err error) {
	c.r.write(func(s *Store) { nv, err = s.State().Save(ctx, id, st, v) })
	return
}
func (c replayState) Put(ctx context.Context, m infinity.InputMessage, at time.Time) (ok bool, err error) {
	c.r.write(func(s *Store) { ok, err = s.Inbox().Put(ctx, m, at) })
	return
}
func (c replayState) Drop(ctx context.Context, id infinity.ThreadID, ms ...infinity.MessageID) (err error) {
	c.r.write(func(s *Store) { err = s.Inbox().Drop(ctx, id, ms...) })
	return
}
func (c replayState) Waiting(ctx context.Context) (q []infinity.Queued, err error) {
	c.r.read(func(s *Store) { q, err = s.Inbox().Waiting(ctx) })
	return
}

// The conformance suites again, with every read served by a store rebuilt
// from the journal: replay must give exactly what was acknowledged.
func TestConversationStoreReplay(t *testing.T) {
	storetest.RunConversation(t, func(t *testing.T) infinity.ConversationStore {
		return replayConv{newReopening(t)}
	})
}

// And with every reopening starting from a snapshot.
func TestConversationStoreSnapshot(t *testing.T) {
	storetest.RunConversation(t, func(t *testing.T) infinity.ConversationStore {
		r := newReopening(t)
		r.compact = true
		return replayConv{r}
	})
}

func TestStateStoreReplay(t *testing.T) {
	storetest.RunState(t, func(t *testing.T, clock infinity.Clock) infinity.StateStore {
		return replayState{newReopening(t, WithClock(clock))}
	})
}

func TestInboxReplay(t *testing.T) {
	storetest.RunInbox(t, func(t *testing.T, clock infinity.Clock) storetest.InboxStore {
		return replayState{newReopening(t, WithClock(clock))}
	})
}

func TestInboxSnapshot(t *testing.T) {
	storetest.RunInbox(t, func(t *testing.T, clock infinity.Clock) storetest.InboxStore {
		r := newReopening(t, WithClock(clock))
		r.compact = true
		return replayState{r}
	})
}
