package file

import (
	"context"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// TestThreadReadBarrier holds the journal writer back so that a commit of
// thread a stays pending, and checks that reads of a return only once the
// commit is durable, while a read of thread b (another stripe, nothing
// pending) returns meanwhile (it would deadlock otherwise).
func TestThreadReadBarrier(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	conv := s.Conversations()
	now := time.Now()
	mk := func() infinity.ThreadID {
		id := infinity.NewThreadID()
		if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Created: now}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := mk()
	b := mk()
	for stripe(b) == stripe(a) {
		b = mk()
	}

	release := make(chan struct{})
	held := make(chan struct{}, 1)
	s.j.mu.Lock()
	s.j.beforeWrite = func() {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
	}
	s.j.mu.Unlock()

	committed := make(chan error, 1)
	go func() {
		_, err := conv.Commit(ctx, infinity.Commit{Thread: a, Items: []infinity.Item{{ID: "u1", Kind: infinity.KindUser, Text: "hi", At: now}}})
		committed <- err
	}()
	<-held // the commit's batch is being written, not yet durable
	s.j.mu.Lock()
	seq := s.j.seq // the commit's record
	s.j.mu.Unlock()

	type result struct {
		n       int
		durable uint64
		err     error
	}
	itemsA := make(chan result, 1)
	linA := make(chan result, 1)
	go func() {
		items, err := conv.Items(ctx, a, 0, -1)
		itemsA <- result{len(items), s.j.durable.Load(), err}
	}()
	go func() {
		lin, err := conv.Lineage(ctx, a)
		linA <- result{len(lin), s.j.durable.Load(), err}
	}()

	// Thread b has nothing pending: its reads do not wait for a's commit.
	if n, err := conv.Len(ctx, b); err != nil || n != 0 {
		t.Fatalf("Len(b) = %d, %v", n, err)
	}
	if _, err := conv.Thread(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.State().(*stateStore).Processed(ctx, b, "m"); err != nil {
		t.Fatal(err)
	}

	s.j.mu.Lock()
	s.j.beforeWrite = nil
	s.j.mu.Unlock()
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan result{"Items(a)": itemsA, "Lineage(a)": linA} {
		r := <-ch
		if r.err != nil || r.n != 1 {
			t.Fatalf("%s = %d, %v", name, r.n, r.err)
		}
		if r.durable < seq {
			t.Fatalf("%s returned with the journal durable to %d, before the commit's record %d", name, r.durable, seq)
		}
	}
}

// TestCommitDeferredReturnsBeforeTheFsync: CommitDeferred returns with the
// commit applied while the journal's write is held; its durable waits for
// the write, and a reader of the thread waits with it.
func TestCommitDeferredReturnsBeforeTheFsync(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	conv := s.Conversations().(*convStore)
	id := mkRoot(t, conv, "deferred")

	release := make(chan struct{})
	s.j.mu.Lock()
	s.j.beforeWrite = func() { <-release }
	s.j.mu.Unlock()

	n, durable, err := conv.CommitDeferred(ctx, infinity.Commit{Thread: id, Items: []infinity.Item{item("i1", 1)}})
	must(t, err)
	if n != 1 {
		t.Fatalf("length %d after the commit, want 1", n)
	}
	if got, seq := s.j.durable.Load(), s.j.seq; got >= seq {
		t.Fatalf("journal durable up to %d of %d before the write was released", got, seq)
	}
	done := make(chan error, 1)
	go func() { done <- durable() }()
	read := make(chan int, 1)
	go func() {
		n, _ := conv.Len(ctx, id)
		read <- n
	}()
	select {
	case err := <-done:
		t.Fatalf("durable returned (%v) while the write was held", err)
	case n := <-read:
		t.Fatalf("a read of the thread returned (length %d) while its commit was not durable", n)
	case <-time.After(50 * time.Millisecond):
	}
	s.j.mu.Lock()
	s.j.beforeWrite = nil
	s.j.mu.Unlock()
	close(release)
	must(t, <-done)
	if n := <-read; n != 1 {
		t.Fatalf("read length %d once durable, want 1", n)
	}
}
