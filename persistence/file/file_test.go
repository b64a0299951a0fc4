package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/persistence/internal/dirlock"
	"github.com/infinity-runtime/infinity/persistence/storetest"
)

func open(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// openTemp opens a store in a fresh directory, closed when the test ends.
func openTemp(t *testing.T, opts ...Option) *Store {
	s := open(t, t.TempDir(), opts...)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConversationStore(t *testing.T) {
	storetest.RunConversation(t, func(t *testing.T) infinity.ConversationStore {
		return openTemp(t).Conversations()
	})
}

func TestStateStore(t *testing.T) {
	storetest.RunState(t, func(t *testing.T, clock infinity.Clock) infinity.StateStore {
		return openTemp(t, WithClock(clock)).State()
	})
}

func TestInbox(t *testing.T) {
	storetest.RunInbox(t, func(t *testing.T, clock infinity.Clock) storetest.InboxStore {
		return openTemp(t, WithClock(clock)).state
	})
}

// crash simulates a process crash: the writer stops, nothing more is
// written, the files are closed and the directory lock is released.
func (s *Store) crash() {
	s.closed.Store(true)
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	j := s.j
	j.mu.Lock()
	if j.err == nil {
		j.err = errors.New("crashed")
	}
	j.work.Broadcast()
	j.done.Broadcast()
	j.mu.Unlock()
	<-j.exited
	j.f.Close()
	dirlock.Unlock(s.lock)
}

var epoch = time.Unix(1_700_000_000, 0).UTC()

func tid(name string) infinity.ThreadID { return infinity.ThreadID("t-" + name) }

// mkRoot creates the root thread tid(name) of agent "a" in cs.
func mkRoot(t testing.TB, cs infinity.ConversationStore, name string) infinity.ThreadID {
	t.Helper()
	id := tid(name)
	must(t, cs.CreateThread(context.Background(), infinity.ThreadInfo{ID: id, Root: id, Agent: "a", Created: epoch}))
	return id
}

func item(id string, n int) infinity.Item {
	return infinity.Item{ID: id, Kind: infinity.KindUser, Text: "text " + id, At: epoch.Add(time.Duration(n) * time.Second)}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// populate writes a workload touching every kind of record and returns the
// root ids it created.
func populate(t testing.TB, s *Store, clock *clocktest.Clock, tag string) []infinity.ThreadID {
	t.Helper()
	ctx := context.Background()
	cs, ss := s.Conversations(), s.State()
	var roots []infinity.ThreadID
	for r := range 3 {
		id := mkRoot(t, cs, fmt.Sprintf("%s-root%d", tag, r))
		roots = append(roots, id)
		n := 0
		for i := range 12 { // more than appliedInline applied ids
			var out []infinity.Outgoing
			if i%3 == 0 {
				out = []infinity.Outgoing{{ID: fmt.Sprintf("o%d", i), At: epoch.Add(time.Minute),
					Message: &infinity.InputMessage{ID: "m", GroupID: id, Content: infinity.TextContent("hi"), Metadata: json.RawMessage(`{"k":1}`)}}}
			}
			var err error
			n, err = cs.Commit(ctx, infinity.Commit{Thread: id, Expected: n,
				Items:   []infinity.Item{item(fmt.Sprintf("i%d", i), i)},
				Applied: []infinity.MessageID{infinity.MessageID(fmt.Sprintf("m%d", i))},
				Outbox:  out})
			must(t, err)
		}
		must(t, cs.MarkSent(ctx, id, "o3", "o9"))
		kid := tid(fmt.Sprintf("%s-kid%d", tag, r))
		gk := tid(fmt.Sprintf("%s-gkid%d", tag, r))
		_, err := cs.Commit(ctx, infinity.Commit{Thread: id, Expected: n, Create: []infinity.ThreadInfo{
			{ID: kid, Parent: id, Root: id, SpawnOrder: n, SpawnCallID: "c1", Created: epoch},
			{ID: gk, Parent: kid, Root: id, Kind: infinity.ThreadEvent, Created: epoch},
		}})
		must(t, err)
		_, err = cs.Commit(ctx, infinity.Commit{Thread: kid, Items: []infinity.Item{item("k1", 1)}, Close: []infinity.ThreadID{kid, gk}})
		must(t, err)

		v, err := ss.Save(ctx, id, infinity.State{Subscriptions: []string{"s1"}}, 0)
		must(t, err)
		_, err = ss.Save(ctx, id, infinity.State{Metadata: json.RawMessage(`{"x":2}`), Subscriptions: []string{"s1", "s2"},
			Choices: []infinity.PendingChoice{{ID: "c", Prompt: "p", Choices: []string{"a", "b"}}}}, v)
		must(t, err)
		must(t, ss.MarkProcessed(ctx, id, []infinity.MessageID{"short"}, time.Second))
		must(t, ss.MarkProcessed(ctx, id, []infinity.MessageID{"long", "long2"}, time.Hour))
	}
	clock.Advance(2 * time.Second) // "short" expires
	return roots
}

// dump reads everything reachable from roots through the public API.
func dump(t testing.TB, s *Store, roots []infinity.ThreadID) string {
	t.Helper()
	ctx := context.Background()
	cs, ss := s.Conversations(), s.State()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	var walk func(id infinity.ThreadID)
	walk = func(id infinity.ThreadID) {
		info, err := cs.Thread(ctx, id)
		must(t, err)
		items, err := cs.Items(ctx, id, 0, -1)
		must(t, err)
		n, err := cs.Len(ctx, id)
		must(t, err)
		out, err := cs.Outbox(ctx, id)
		must(t, err)
		lin, err := cs.Lineage(ctx, id)
		must(t, err)
		var applied []bool
		for i := range 14 {
			ok, err := cs.Applied(ctx, id, infinity.MessageID(fmt.Sprintf("m%d", i)))
			must(t, err)
			applied = append(applied, ok)
		}
		st, v, err := ss.Load(ctx, id)
		if err != nil && !errors.Is(err, infinity.ErrNotFound) {
			t.Fatal(err)
		}
		var proc []bool
		for _, m := range []infinity.MessageID{"short", "long", "long2", "none"} {
			ok, err := ss.Processed(ctx, id, m)
			must(t, err)
			proc = append(proc, ok)
		}
		must(t, enc.Encode([]any{info, items, n, out, lin, applied, st, v, proc}))
		kids, err := cs.Children(ctx, id)
		must(t, err)
		for _, k := range kids {
			walk(k.ID)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return b.String()
}

func TestReopen(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			clock := clocktest.New(epoch)
			s := open(t, dir, WithClock(clock))
			roots := populate(t, s, clock, "a")
			want := dump(t, s, roots)
			if !strings.Contains(want, `"o6"`) || strings.Contains(want, `"o3"`) || !strings.Contains(want, `"closed":true`) {
				t.Fatalf("workload did not produce the expected state:\n%s", want)
			}
			st := s.Stats()
			if st.Records == 0 || st.Fsyncs == 0 || st.Fsyncs > st.Records {
				t.Errorf("Stats = %+v", st)
			}
			if crash {
				s.crash()
			} else {
				must(t, s.Close())
			}
			s2 := open(t, dir, WithClock(clock))
			defer s2.Close()
			if got := dump(t, s2, roots); got != want {
				t.Errorf("after reopen:\n got %s\nwant %s", got, want)
			}
			// The reopened store keeps working and checks against the
			// replayed state.
			ctx := context.Background()
			if _, err := s2.Conversations().Commit(ctx, infinity.Commit{Thread: roots[0], Expected: 12, Applied: []infinity.MessageID{"m11"}}); !errors.Is(err, infinity.ErrApplied) {
				t.Errorf("Commit of applied message after reopen: %v, want ErrApplied", err)
			}
			if _, err := s2.State().Save(ctx, roots[0], infinity.State{}, 2); err != nil {
				t.Errorf("Save at version 2 after reopen: %v", err)
			}
		})
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	must(t, s.Close())
	must(t, s.Close()) // idempotent
	if err := s.Conversations().CreateThread(context.Background(), infinity.ThreadInfo{ID: tid("x"), Root: tid("x")}); err == nil {
		t.Error("CreateThread after Close succeeded")
	}
	s2 := open(t, dir)
	must(t, s2.Close())
}

func segmentPath(t testing.TB, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	must(t, err)
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	return filepath.Join(dir, segmentName(segs[0]))
}

func TestTornTail(t *testing.T) {
	half := appendFrame(nil, []byte(`{"op":"create","info":{"id":"t-torn","root":"t-torn"}}`))
	badSum := slices.Clone(half)
	badSum[len(badSum)-3] ^= 0xff
	cases := map[string][]byte{
		"half record":   half[:len(half)/2],
		"half header":   half[:5],
		"bad checksum":  badSum,
		"garbage":       []byte("this is not a record at all, just some garbage bytes"),
		"zeros":         make([]byte, 4096),
		"record+broken": append(slices.Clone(half[:len(half)-1]), 'x'),
	}
	for name, tail := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			clock := clocktest.New(epoch)
			s := open(t, dir, WithClock(clock))
			roots := populate(t, s, clock, "a")
			want := dump(t, s, roots)
			must(t, s.Close())
			path := segmentPath(t, dir)
			fi, err := os.Stat(path)
			must(t, err)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write(tail)
			must(t, err)
			must(t, f.Close())

			s2 := open(t, dir, WithClock(clock))
			if got := dump(t, s2, roots); got != want {
				t.Errorf("after torn tail:\n got %s\nwant %s", got, want)
			}
			if _, err := s2.Conversations().Thread(context.Background(), "t-torn"); !errors.Is(err, infinity.ErrNotFound) {
				t.Errorf("torn record was applied: %v", err)
			}
			fi2, err := os.Stat(path)
			must(t, err)
			if fi2.Size() != fi.Size() {
				t.Errorf("journal is %d bytes after Open, want truncated to %d", fi2.Size(), fi.Size())
			}
			// New records go after the last whole one and survive.
			must(t, s2.Conversations().CreateThread(context.Background(), infinity.ThreadInfo{ID: tid("after"), Root: tid("after")}))
			must(t, s2.Close())
			s3 := open(t, dir, WithClock(clock))
			defer s3.Close()
			if _, err := s3.Conversations().Thread(context.Background(), tid("after")); err != nil {
				t.Errorf("thread written after truncation: %v", err)
			}
		})
	}
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return sha256.Sum256(b)
}

func TestCorruptMiddle(t *testing.T) {
	// Offsets inside the first record: its length, its header checksum,
	// its payload checksum and its payload.
	for _, at := range []int{0, 5, 9, headerSize + 10} {
		t.Run(fmt.Sprintf("byte%d", at), func(t *testing.T) {
			dir := t.TempDir()
			clock := clocktest.New(epoch)
			s := open(t, dir, WithClock(clock))
			populate(t, s, clock, "a")
			must(t, s.Close())
			path := segmentPath(t, dir)
			b, err := os.ReadFile(path)
			must(t, err)
			b[at] ^= 0x5a
			must(t, os.WriteFile(path, b, 0o644))
			before := fileHash(t, path)

			_, err = Open(dir, WithClock(clock))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset 0") {
				t.Errorf("error %q does not name %s and offset 0", err, path)
			}
			if fileHash(t, path) != before {
				t.Error("Open modified the corrupt journal")
			}
			// The failed Open released the directory.
			b[at] ^= 0x5a
			must(t, os.WriteFile(path, b, 0o644))
			must(t, open(t, dir, WithClock(clock)).Close())
		})
	}
}

func TestCorruptSnapshot(t *testing.T) {
	dir := t.TempDir()
	clock := clocktest.New(epoch)
	s := open(t, dir, WithClock(clock))
	populate(t, s, clock, "a")
	must(t, s.Compact())
	must(t, s.Close())
	path := filepath.Join(dir, snapshotName)
	b, err := os.ReadFile(path)
	must(t, err)
	b[len(b)/2] ^= 1
	must(t, os.WriteFile(path, b, 0o644))
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open: %v, want ErrCorrupt naming %s", err, path)
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	clock := clocktest.New(epoch)
	s := open(t, dir, WithClock(clock))
	roots := populate(t, s, clock, "a")
	old := segmentPath(t, dir)
	must(t, s.Compact())
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old journal %s still there after Compact: %v", old, err)
	}
	roots = append(roots, populate(t, s, clock, "b")...)
	want := dump(t, s, roots)
	must(t, s.Compact())
	must(t, s.Compact()) // twice in a row
	roots = append(roots, populate(t, s, clock, "c")...)
	want = dump(t, s, roots)
	must(t, s.Close())
	if _, err := os.Stat(filepath.Join(dir, snapshotTmp)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot.tmp left behind: %v", err)
	}
	segmentPath(t, dir) // exactly one segment

	s2 := open(t, dir, WithClock(clock))
	if got := dump(t, s2, roots); got != want {
		t.Errorf("after compaction and reopen:\n got %s\nwant %s", got, want)
	}
	must(t, s2.Close())

	// A crash after the snapshot's rename but before the old segments were
	// removed: the stale segment is ignored and removed on Open.
	s3 := open(t, dir, WithClock(clock))
	seg := segmentPath(t, dir)
	data, err := os.ReadFile(seg)
	must(t, err)
	must(t, s3.Compact())
	must(t, s3.Close())
	must(t, os.WriteFile(seg, data, 0o644))
	s4 := open(t, dir, WithClock(clock))
	defer s4.Close()
	if got := dump(t, s4, roots); got != want {
		t.Errorf("with a stale segment:\n got %s\nwant %s", got, want)
	}
	if _, err := os.Stat(seg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale segment %s not removed: %v", seg, err)
	}
}

func TestBackgroundCompact(t *testing.T) {
	dir := t.TempDir()
	clock := clocktest.New(epoch)
	s := open(t, dir, WithClock(clock), WithCompactThreshold(4<<10))
	var roots []infinity.ThreadID
	for i := range 6 {
		roots = append(roots, populate(t, s, clock, fmt.Sprint(i))...)
	}
	want := dump(t, s, roots)
	must(t, s.Close())
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
		t.Fatalf("no snapshot after background compaction: %v", err)
	}
	s2 := open(t, dir, WithClock(clock))
	defer s2.Close()
	if got := dump(t, s2, roots); got != want {
		t.Errorf("after background compaction and reopen:\n got %s\nwant %s", got, want)
	}
}

func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir, WithCompactThreshold(16<<10))
	cs, ss := s.Conversations(), s.State()
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var compactErr error
	var cwg sync.WaitGroup
	cwg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Compact(); err != nil {
				compactErr = err
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	for w := range workers {
		wg.Go(func() {
			id := tid(fmt.Sprintf("w%d", w))
			if err := cs.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id}); err != nil {
				t.Error(err)
				return
			}
			for r := range rounds {
				if _, err := cs.Commit(ctx, infinity.Commit{Thread: id, Expected: r, Items: []infinity.Item{item(fmt.Sprint(r), r)},
					Applied: []infinity.MessageID{infinity.MessageID(fmt.Sprint(r))}}); err != nil {
					t.Error(err)
					return
				}
				if err := ss.MarkProcessed(ctx, id, []infinity.MessageID{infinity.MessageID(fmt.Sprint(r))}, time.Hour); err != nil {
					t.Error(err)
					return
				}
				if _, err := ss.Save(ctx, id, infinity.State{Subscriptions: []string{fmt.Sprint(r)}}, infinity.Version(r)); err != nil {
					t.Error(err)
					return
				}
				if _, err := cs.Items(ctx, id, 0, -1); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	cwg.Wait()
	if compactErr != nil {
		t.Fatal(compactErr)
	}
	must(t, s.Close())
	s2 := open(t, dir)
	defer s2.Close()
	for w := range workers {
		id := tid(fmt.Sprintf("w%d", w))
		if n, err := s2.Conversations().Len(ctx, id); err != nil || n != rounds {
			t.Errorf("%s: Len = %d, %v; want %d", id, n, err, rounds)
		}
		if _, v, err := s2.State().Load(ctx, id); err != nil || v != rounds {
			t.Errorf("%s: version = %d, %v; want %d", id, v, err, rounds)
		}
		if ok, err := s2.State().Processed(ctx, id, infinity.MessageID(fmt.Sprint(rounds-1))); err != nil || !ok {
			t.Errorf("%s: Processed = %v, %v", id, ok, err)
		}
	}
}

// BenchmarkCommitParallel commits one item per call to a thread of each
// goroutine's own, many goroutines at once, and reports how many commits
// share one fsync.
func BenchmarkCommitParallel(b *testing.B) {
	for _, par := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("goroutines=%d", par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s := open(b, b.TempDir(), WithCompactThreshold(0))
			defer s.Close()
			cs := s.Conversations()
			ctx := context.Background()
			var mu sync.Mutex
			next := 0
			b.SetParallelism(par)
			start := s.Stats()
			t0 := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				id := tid(fmt.Sprintf("bench%d", next))
				next++
				mu.Unlock()
				if err := cs.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id}); err != nil {
					b.Error(err)
					return
				}
				n := 0
				for pb.Next() {
					var err error
					if n, err = cs.Commit(ctx, infinity.Commit{Thread: id, Expected: n, Items: []infinity.Item{item("i", n)}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(t0)
			st := s.Stats()
			fsyncs := st.Fsyncs - start.Fsyncs
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			b.ReportMetric(float64(fsyncs)/float64(b.N), "fsyncs/commit")
		})
	}
}

func TestUnsentAndThreads(t *testing.T) {
	clock := clocktest.New(time.Unix(1_700_000_000, 0))
	s := open(t, t.TempDir(), WithClock(clock))
	defer s.Close()
	ctx := t.Context()
	for i, id := range []infinity.ThreadID{tid("b"), tid("a")} {
		must(t, s.Conversations().CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Created: clock.Now().Add(time.Duration(i) * time.Second)}))
	}
	msg := infinity.InputMessage{ID: "m", GroupID: tid("b"), Content: infinity.TextContent("x")}
	_, err := s.Conversations().Commit(ctx, infinity.Commit{Thread: tid("a"), Items: []infinity.Item{item("i", 0)},
		Outbox: []infinity.Outgoing{{ID: "o", Message: &msg}}})
	must(t, err)
	unsent, err := s.Unsent(ctx)
	must(t, err)
	if len(unsent) != 1 || unsent[0] != tid("a") {
		t.Fatalf("Unsent = %v, want [%s]", unsent, tid("a"))
	}
	must(t, s.Conversations().MarkSent(ctx, tid("a"), "o"))
	if unsent, _ = s.Unsent(ctx); len(unsent) != 0 {
		t.Fatalf("Unsent after MarkSent = %v", unsent)
	}
	all, err := s.Threads(ctx)
	must(t, err)
	if len(all) != 2 || all[0].ID != tid("b") || all[1].ID != tid("a") {
		t.Fatalf("Threads = %v, want b then a (creation order)", all)
	}
}

// A commit consumes the messages it applied from the durable inbox, in its
// own journal record: at once, after a replay of the journal, and in a
// snapshot. Messages it did not apply stay.
func TestCommitConsumesInbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	cs, in := s.Conversations(), s.Inbox()
	id := mkRoot(t, cs, "consume")
	for _, m := range []string{"in1", "in2", "timer"} {
		fresh, err := in.Put(ctx, infinity.InputMessage{ID: infinity.MessageID(m), GroupID: id, Content: infinity.TextContent(m)}, time.Time{})
		must(t, err)
		if !fresh {
			t.Fatalf("Put %s: not fresh", m)
		}
	}
	_, err := cs.Commit(ctx, infinity.Commit{Thread: id, Items: []infinity.Item{item("i1", 1)}, Applied: []infinity.MessageID{"in1", "in2"}})
	must(t, err)
	waiting := func(what string, s *Store) {
		t.Helper()
		q, err := s.Inbox().Waiting(ctx)
		must(t, err)
		if len(q) != 1 || q[0].Message.ID != "timer" {
			t.Fatalf("%s: waiting %+v, want only the timer", what, q)
		}
	}
	waiting("after the commit", s)
	defer reopenTwice(t, dir, s, waiting).Close()
}

// reopenTwice closes s, reopens dir (a journal replay) and runs check,
// compacts and reopens again (a snapshot load) and runs check; it returns
// the open store.
func reopenTwice(t *testing.T, dir string, s *Store, check func(what string, s *Store)) *Store {
	t.Helper()
	must(t, s.Close())
	s = open(t, dir) // replays the journal
	check("after a replay", s)
	must(t, s.Compact())
	must(t, s.Close())
	s = open(t, dir) // loads the snapshot
	check("after a compaction", s)
	return s
}

// A commit puts its outbox's messages into the inbox in its own record: the
// sender's Put that follows finds them waiting, reports true and journals
// nothing; replay, compaction and MarkSent keep them waiting until their
// thread consumes them.
func TestCommitPutsOutboxIntoInbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	cs, in := s.Conversations(), s.Inbox()
	id := mkRoot(t, cs, "outbox")
	wake := infinity.InputMessage{ID: "wake", GroupID: id, Content: infinity.TextContent("wake up")}
	due := epoch.Add(time.Hour)
	_, err := cs.Commit(ctx, infinity.Commit{Thread: id, Items: []infinity.Item{item("i1", 1)},
		Outbox: []infinity.Outgoing{{ID: "o1", Message: &wake, At: due}}})
	must(t, err)
	waiting := func(what string, s *Store) {
		t.Helper()
		q, err := s.Inbox().Waiting(ctx)
		must(t, err)
		if len(q) != 1 || q[0].Message.ID != "wake" || !q[0].At.Equal(due) {
			t.Fatalf("%s: waiting %+v, want the wake-up due at %s", what, q, due)
		}
	}
	waiting("after the commit", s)
	before := s.Stats().Records
	fresh, err := in.Put(ctx, wake, due)
	must(t, err)
	if !fresh {
		t.Fatal("the sender's Put of a message the commit put: not fresh (the sender would not arm it)")
	}
	if got := s.Stats().Records; got != before {
		t.Fatalf("the sender's Put journalled %d records, want none", got-before)
	}
	must(t, cs.MarkSent(ctx, id, "o1"))
	waiting("after MarkSent", s)
	s = reopenTwice(t, dir, s, waiting)
	defer s.Close()
	_, err = s.Conversations().Commit(ctx, infinity.Commit{Thread: id, Expected: 1, Items: []infinity.Item{item("i2", 2)}, Applied: []infinity.MessageID{"wake"}})
	must(t, err)
	if q, err := s.Inbox().Waiting(ctx); err != nil || len(q) != 0 {
		t.Fatalf("after the thread applied it: waiting %+v, %v", q, err)
	}
}

// A replay decodes records in parallel batches and applies them in order:
// a journal of several batches comes back whole, and a record that does not
// decode in a later batch is reported at its own offset.
func TestReplayBatches(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	const n = 2*replayBatch + 300
	for i := range n {
		mkRoot(t, s.Conversations(), fmt.Sprintf("batch%d", i))
	}
	must(t, s.Close())
	s = open(t, dir)
	all, err := s.Threads(ctx)
	must(t, err)
	if len(all) != n {
		t.Fatalf("after a replay: %d threads, want %d", len(all), n)
	}
	must(t, s.Close())

	path := segmentPath(t, dir)
	data, err := os.ReadFile(path)
	must(t, err)
	off := 0
	for range replayBatch + 500 { // into the second batch
		_, next, r := parseFrame(data, off)
		if r != frameOK {
			t.Fatalf("frame at %d: %v", off, r)
		}
		off = next
	}
	bad := appendFrame(slices.Clone(data[:off]), []byte(`{"op":"create","info":`))
	bad = append(bad, data[off:]...)
	must(t, os.WriteFile(path, bad, 0o644))
	_, err = Open(dir)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", off)) {
		t.Fatalf("Open: %v, want ErrCorrupt at offset %d", err, off)
	}
}

// A store opened in a directory with looser modes (an older version's, or
// the user's) makes it private: the directory 0700, its files 0600.
func TestOpenMakesTheStorePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Chmod(filepath.Join(dir, e.Name()), 0o644)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatal("the store wrote no files")
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if e.Type().IsRegular() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}
