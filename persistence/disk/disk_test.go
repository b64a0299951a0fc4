package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/persistence/file"
	"github.com/infinity-runtime/infinity/persistence/storetest"
)

// openTemp opens a store in a fresh directory, closed at the end of the
// test.
func openTemp(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
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

func ctxT(t *testing.T) context.Context { return t.Context() }

var at0 = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

func root(id string) infinity.ThreadInfo {
	return infinity.ThreadInfo{ID: infinity.ThreadID(id), Root: infinity.ThreadID(id), Created: at0}
}

func item(id, text string) infinity.Item {
	return infinity.Item{ID: id, Kind: infinity.KindUser, Text: text, At: at0}
}

// fill writes a tree, history, an outbox, a summary, state, marks and
// inbox messages: something of every table.
func fill(t *testing.T, conv infinity.ConversationStore, state infinity.StateStore, inbox infinity.Inbox) {
	t.Helper()
	ctx := ctxT(t)
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	wake := infinity.InputMessage{ID: "wake", GroupID: "r", Content: infinity.TextContent("wake up")}
	child := infinity.ThreadInfo{ID: "c", Parent: "r", Root: "r", SpawnOrder: 1, Created: at0}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Items: []infinity.Item{item("i0", "hello"), item("i1", "world")},
		Applied: []infinity.MessageID{"in-1"}, Create: []infinity.ThreadInfo{child},
		Outbox: []infinity.Outgoing{{ID: "o1", Message: &wake, At: at0.Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: 2, Items: []infinity.Item{item("i2", "again")},
		Summary: &infinity.Summary{Position: 2, Covers: 1, Text: "sum", At: at0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Save(ctx, "r", infinity.State{Subscriptions: []string{"s1"}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := state.MarkProcessed(ctx, "c", []infinity.MessageID{"m1"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := inbox.Put(ctx, infinity.InputMessage{ID: "later", GroupID: "c", Content: infinity.TextContent("x")}, at0); err != nil {
		t.Fatal(err)
	}
}

// check reads back what fill wrote.
func check(t *testing.T, conv infinity.ConversationStore, state infinity.StateStore, inbox infinity.Inbox) {
	t.Helper()
	ctx := ctxT(t)
	items, err := conv.Items(ctx, "r", 0, -1)
	if err != nil || len(items) != 3 || items[2].Text != "again" {
		t.Fatalf("items %+v, %v", items, err)
	}
	kids, err := conv.Children(ctx, "r")
	if err != nil || len(kids) != 1 || kids[0].ID != "c" {
		t.Fatalf("children %+v, %v", kids, err)
	}
	if ok, err := conv.Applied(ctx, "r", "in-1"); !ok || err != nil {
		t.Fatalf("applied %v, %v", ok, err)
	}
	if out, err := conv.Outbox(ctx, "r"); err != nil || len(out) != 1 || out[0].Message.ID != "wake" {
		t.Fatalf("outbox %+v, %v", out, err)
	}
	if sum, err := conv.Summary(ctx, "r", 4); err != nil || sum == nil || sum.Text != "sum" {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if info, err := conv.Thread(ctx, "r"); err != nil || !info.Compacted {
		t.Fatalf("thread %+v, %v", info, err)
	}
	if st, v, err := state.Load(ctx, "r"); err != nil || v != 1 || len(st.Subscriptions) != 1 {
		t.Fatalf("state %+v %d %v", st, v, err)
	}
	if ok, err := state.Processed(ctx, "c", "m1"); !ok || err != nil {
		t.Fatalf("processed %v, %v", ok, err)
	}
	w, err := inbox.Waiting(ctx)
	if err != nil || len(w) != 2 || w[0].Message.ID != "wake" || w[1].Message.ID != "later" {
		t.Fatalf("waiting %+v, %v", w, err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s.Conversations(), s.State(), s.Inbox())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(t, s.Conversations(), s.State(), s.Inbox())
	if n, w, err := s.Counts(ctxT(t)); n != 2 || w != 2 || err != nil {
		t.Fatalf("counts %d %d %v", n, w, err)
	}
	if u, err := s.Unsent(ctxT(t)); err != nil || len(u) != 1 || u[0] != "r" {
		t.Fatalf("unsent %v %v", u, err)
	}
	if all, err := s.Threads(ctxT(t)); err != nil || len(all) != 2 {
		t.Fatalf("threads %v %v", all, err)
	}
	// What waits and what was processed is known after a reopen (the
	// occupancy counts are loaded): a repeat is kept once, a processed id
	// is refused.
	if ok, err := s.Inbox().Put(ctxT(t), infinity.InputMessage{ID: "later", GroupID: "c"}, at0); !ok || err != nil {
		t.Fatalf("repeat put: %v %v", ok, err)
	}
	if ok, err := s.Inbox().Put(ctxT(t), infinity.InputMessage{ID: "m1", GroupID: "c"}, at0); ok || err != nil {
		t.Fatalf("put of a processed id: %v %v", ok, err)
	}
	if _, w, _ := s.Counts(ctxT(t)); w != 2 {
		t.Fatalf("%d waiting after the repeats, want 2", w)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Conversations().Thread(ctxT(t), "x"); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.Conversations().CreateThread(ctxT(t), root("x")); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// TestUpgradeFromJournal converts a home the journal store wrote, once,
// keeping the journal beside it.
func TestUpgradeFromJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	old, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, old.Conversations(), old.State(), old.Inbox())
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	check(t, s.Conversations(), s.State(), s.Inbox())
	// The converted store takes commits where the journal left off.
	if _, err := s.Conversations().Commit(ctxT(t), infinity.Commit{Thread: "r", Expected: 3, Items: []infinity.Item{item("i3", "more")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !isJournalStore(dir + journalSuffix) {
		t.Fatal("the journal was not kept")
	}
	s, err = Open(dir) // no second conversion
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Conversations().Len(ctxT(t), "r"); n != 4 || err != nil {
		t.Fatalf("len %d %v", n, err)
	}
}

// TestUpgradeCrash: a conversion cut short before it completed is done
// again; one cut short between its renames is finished.
func TestUpgradeCrash(t *testing.T) {
	for _, stage := range []string{"incomplete", "between renames", "before renames"} {
		t.Run(stage, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			old, err := file.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			fill(t, old.Conversations(), old.State(), old.Inbox())
			d := old.Dump()
			old.Close()
			o := options{clock: infinity.SystemClock{}, logger: slog.New(slog.DiscardHandler), cache: 1 << 20, memtable: 1 << 20, freeFn: freeSpace, fs: vfs.Default}
			if _, err := convert(dir+convertingSuffix, d, o); err != nil {
				t.Fatal(err)
			}
			switch stage {
			case "incomplete": // no CONVERTED: converted again from the journal
			case "before renames", "between renames":
				if err := os.WriteFile(filepath.Join(dir+convertingSuffix, convertedName), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if stage == "between renames" {
					if err := os.Rename(dir, dir+journalSuffix); err != nil {
						t.Fatal(err)
					}
				}
			}
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			check(t, s.Conversations(), s.State(), s.Inbox())
			if _, err := os.Stat(dir + convertingSuffix); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s left: %v", dir+convertingSuffix, err)
			}
		})
	}
}

// TestMissingFiles: a store that lost a file is named at Open, never
// started empty.
func TestMissingFiles(t *testing.T) {
	mk := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s.Conversations(), s.State(), s.Inbox())
		if err := s.db.Flush(); err != nil { // make a table file
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	remove := func(t *testing.T, dir, pattern string) string {
		names, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(names) == 0 {
			t.Fatalf("no %s in %s", pattern, dir)
		}
		for _, n := range names {
			if err := os.Remove(n); err != nil {
				t.Fatal(err)
			}
		}
		return filepath.Base(names[0])
	}
	for _, c := range []struct{ pattern, want string }{
		{"MANIFEST-*", "MANIFEST"},
		{"marker.manifest.*", "MANIFEST"},
		{"*.sst", ".sst"},
		{formatName, formatName},
	} {
		t.Run(c.pattern, func(t *testing.T) {
			dir := mk(t)
			name := remove(t, dir, c.pattern)
			_, err := Open(dir)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open without %s: %v, want ErrCorrupt naming %s", name, err, c.want)
			}
		})
	}
	t.Run("damaged FORMAT", func(t *testing.T) {
		dir := mk(t)
		if err := os.WriteFile(filepath.Join(dir, formatName), []byte("something else\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "something else") {
			t.Fatalf("Open: %v", err)
		}
	})
}

// TestNoSpace: writes are refused while the disk is short of the reserve,
// reads go on, and writes go on once space is freed, without a reopen.
func TestNoSpace(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 40)
	s := openTemp(t, WithMinFree(64<<20), WithFreeSpace(func(string) (uint64, error) { return free.Load(), nil }))
	ctx := ctxT(t)
	conv := s.Conversations()
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	free.Store(10 << 20)
	time.Sleep(2 * spaceRecheck)
	_, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Items: []infinity.Item{item("a", "x")}})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("commit on a full disk: %v, want ErrNoSpace", err)
	}
	if _, err := s.Inbox().Put(ctx, infinity.InputMessage{ID: "m", GroupID: "r"}, time.Time{}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("put on a full disk: %v", err)
	}
	if n, err := conv.Len(ctx, "r"); n != 0 || err != nil {
		t.Fatalf("read on a full disk: %d %v", n, err)
	}
	free.Store(1 << 40)
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Items: []infinity.Item{item("a", "x")}}); err != nil {
		t.Fatalf("commit once space is back: %v", err)
	}
}

// TestSweep: expired processed marks are deleted from the disk.
func TestSweep(t *testing.T) {
	clock := clocktest.New(at0)
	s := openTemp(t, WithClock(clock))
	ctx := ctxT(t)
	if err := s.State().MarkProcessed(ctx, "t", []infinity.MessageID{"a", "b"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.State().MarkProcessed(ctx, "t", []infinity.MessageID{"b"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if err := s.sweep(); err != nil {
		t.Fatal(err)
	}
	count := func(tag byte) int {
		n := 0
		scanPrefix(s.db, []byte{tag}, func(k, v []byte) (bool, error) { n++; return true, nil })
		return n
	}
	if p, x := count(tagMark), count(tagExpiry); p != 1 || x != 1 {
		t.Fatalf("after the sweep: %d marks, %d expiry keys; want 1 and 1", p, x)
	}
	if ok, _ := s.State().Processed(ctx, "t", "b"); !ok {
		t.Fatal("the unexpired mark went")
	}
}

// TestGroupCommit: concurrent commits share fsyncs, and Stats counts them.
func TestGroupCommit(t *testing.T) {
	s := openTemp(t)
	ctx := ctxT(t)
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("t%d", i)
		if err := s.Conversations().CreateThread(ctx, root(id)); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for j := range 10 {
				if _, err := s.Conversations().Commit(ctx, infinity.Commit{Thread: infinity.ThreadID(id), Expected: j, Items: []infinity.Item{item(fmt.Sprint(j), "x")}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Records < n*11 || st.Fsyncs == 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d records, %d fsyncs", st.Records, st.Fsyncs)
}

// TestCreateRoot: a root and its first message are one write; a crash
// after it (a reopen without the send that would follow) finds both.
func TestCreateRoot(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := infinity.InputMessage{ID: "start_r", GroupID: "r", Content: infinity.TextContent("hello")}
	if err := s.conv.CreateRoot(ctxT(t), root("r"), first); err != nil {
		t.Fatal(err)
	}
	if err := s.conv.CreateRoot(ctxT(t), root("r"), first); !errors.Is(err, infinity.ErrExists) {
		t.Fatalf("again: %v, want ErrExists", err)
	}
	if err := s.conv.CreateRoot(ctxT(t), root("x"), first); !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("message for another thread: %v, want ErrInvalid", err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Inbox().Waiting(ctxT(t))
	if err != nil || len(w) != 1 || w[0].Message.ID != "start_r" {
		t.Fatalf("waiting after a reopen: %+v, %v", w, err)
	}
	if _, err := s.Conversations().Thread(ctxT(t), "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conversations().Thread(ctxT(t), "x"); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("refused root stored: %v", err)
	}
}

func TestTreeDeletion(t *testing.T) {
	storetest.RunTreeDeletion(t, func(t *testing.T) infinity.ConversationStore { return openTemp(t).Conversations() })
}

func TestStateDeletion(t *testing.T) {
	storetest.RunStateDeletion(t, func(t *testing.T, c infinity.Clock) infinity.StateStore {
		return openTemp(t, WithClock(c)).State()
	})
}

// TestDeleteThreadsEmptiesTheInbox: a deleted thread's waiting messages go
// too, and the count follows.
func TestDeleteThreadsEmptiesTheInbox(t *testing.T) {
	s := openTemp(t)
	ctx := ctxT(t)
	for _, m := range []infinity.InputMessage{{ID: "a", GroupID: "x"}, {ID: "b", GroupID: "x"}, {ID: "c", GroupID: "y"}} {
		if _, err := s.Inbox().Put(ctx, m, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.state.DeleteThreads(ctx, []infinity.ThreadID{"x"}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Inbox().Waiting(ctx)
	if err != nil || len(w) != 1 || w[0].Message.ID != "c" {
		t.Fatalf("waiting %+v, %v", w, err)
	}
	if _, n, _ := s.Counts(ctx); n != 1 {
		t.Fatalf("waiting count %d", n)
	}
}

// TestHistoryCache: reads served from the cache of decoded history match
// the store, follow commits and deletions, and hand out copies.
func TestHistoryCache(t *testing.T) {
	s := openTemp(t)
	ctx := ctxT(t)
	conv := s.Conversations()
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	n := 0
	for round := range 5 {
		if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: n, Items: []infinity.Item{item(fmt.Sprint(n), "a"), item(fmt.Sprint(n+1), "b")}}); err != nil {
			t.Fatal(err)
		}
		n += 2
		got, err := conv.Items(ctx, "r", 0, -1) // fills, then hits
		if err != nil || len(got) != n {
			t.Fatalf("round %d: %d items, %v", round, len(got), err)
		}
		got[0].Text = "changed by the caller"
		again, err := conv.Items(ctx, "r", 1, n)
		if err != nil || len(again) != n-1 || again[0].ID != "1" {
			t.Fatalf("round %d: range: %+v, %v", round, again, err)
		}
		first, _ := conv.Items(ctx, "r", 0, 1)
		if first[0].Text != "a" {
			t.Fatalf("a caller's change reached the cache: %q", first[0].Text)
		}
	}
	if s.hist.used == 0 {
		t.Fatal("nothing was cached")
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: n, Close: []infinity.ThreadID{"r"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conv.DeleteTree(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	if got, err := conv.Items(ctx, "r", 0, -1); err != nil || len(got) != 0 {
		t.Fatalf("a new thread under a deleted id reads %d items, %v", len(got), err)
	}
}

// TestConcurrentCommitsAndReads: readers of a thread that commits all the
// time see a prefix of what was committed, never a stale or torn history.
func TestConcurrentCommitsAndReads(t *testing.T) {
	s := openTemp(t, WithHistoryCache(4<<10))
	ctx := ctxT(t)
	conv := s.Conversations()
	const threads, commits = 4, 50
	var wg sync.WaitGroup
	for i := range threads {
		id := infinity.ThreadID(fmt.Sprintf("t%d", i))
		if err := conv.CreateThread(ctx, root(string(id))); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for j := range commits {
				if _, err := conv.Commit(ctx, infinity.Commit{Thread: id, Expected: j, Items: []infinity.Item{item(fmt.Sprint(j), fmt.Sprint(j))}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range commits {
				items, err := conv.Items(ctx, id, 0, -1)
				if err != nil {
					t.Error(err)
					return
				}
				for k, it := range items {
					if it.ID != fmt.Sprint(k) {
						t.Errorf("%s: item %d is %q", id, k, it.ID)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestSetCache: applied ids, waiting messages and processed marks answer
// the same from the cache as from the engine, past the size the cache
// keeps, across deletes and sweeps.
func TestSetCache(t *testing.T) {
	clock := clocktest.New(at0)
	s := openTemp(t, WithClock(clock))
	ctx := ctxT(t)
	conv := s.Conversations()
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	applied := func(m string) bool {
		ok, err := conv.Applied(ctx, "r", infinity.MessageID(m))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range maxSet + 20 {
		if applied(fmt.Sprint("m", i)) {
			t.Fatalf("m%d applied before its commit", i)
		}
		if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: i, Applied: []infinity.MessageID{infinity.MessageID(fmt.Sprint("m", i))},
			Items: []infinity.Item{item(fmt.Sprint(i), "x")}}); err != nil {
			t.Fatal(err)
		}
		if !applied(fmt.Sprint("m", i)) || !applied("m0") {
			t.Fatalf("m%d (or m0) not applied after its commit", i)
		}
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: maxSet + 20, Applied: []infinity.MessageID{"m3"}}); !errors.Is(err, infinity.ErrApplied) {
		t.Fatalf("a repeat past the cached size: %v", err)
	}

	// Waiting messages: put, repeat, consume.
	in := s.Inbox()
	msg := infinity.InputMessage{ID: "w1", GroupID: "r"}
	for range 2 {
		if ok, err := in.Put(ctx, msg, time.Time{}); !ok || err != nil {
			t.Fatalf("put: %v %v", ok, err)
		}
	}
	if _, n, _ := s.Counts(ctx); n != 1 {
		t.Fatalf("%d waiting, want 1", n)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: maxSet + 20, Applied: []infinity.MessageID{"w1"}}); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := s.Counts(ctx); n != 0 {
		t.Fatalf("%d waiting after the commit consumed it", n)
	}

	// Marks: in force, swept, then absent.
	st := s.State()
	if err := st.MarkProcessed(ctx, "r", []infinity.MessageID{"p1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Processed(ctx, "r", "p1"); !ok {
		t.Fatal("mark not in force")
	}
	if ok, _ := in.Put(ctx, infinity.InputMessage{ID: "p1", GroupID: "r"}, time.Time{}); ok {
		t.Fatal("a processed message was put")
	}
	clock.Advance(time.Hour)
	if err := s.sweep(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(-time.Hour + time.Second) // back before the expiry: only a swept mark reads absent
	if ok, _ := st.Processed(ctx, "r", "p1"); ok {
		t.Fatal("a swept mark still reads processed")
	}

	// Deleting the tree empties its sets.
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Expected: maxSet + 20, Close: []infinity.ThreadID{"r"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conv.DeleteTree(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	if applied("m0") || applied(fmt.Sprint("m", maxSet+5)) {
		t.Fatal("a deleted thread's applied ids came back")
	}
}

// TestDeleteTreeTakesItsState: the disk store's DeleteTree deletes the
// tree's state, marks and waiting messages in the same write, and is
// allowed under the free-space reserve.
func TestDeleteTreeTakesItsState(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 40)
	s := openTemp(t, WithMinFree(64<<20), WithFreeSpace(func(string) (uint64, error) { return free.Load(), nil }))
	ctx := ctxT(t)
	conv, st, in := s.Conversations(), s.State(), s.Inbox()
	if err := conv.CreateThread(ctx, root("r")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Save(ctx, "r", infinity.State{Subscriptions: []string{"s"}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkProcessed(ctx, "r", []infinity.MessageID{"p"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Put(ctx, infinity.InputMessage{ID: "w", GroupID: "r"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "r", Close: []infinity.ThreadID{"r"}}); err != nil {
		t.Fatal(err)
	}
	free.Store(1 << 20)
	time.Sleep(2 * spaceRecheck)
	if _, err := s.conv.DeleteTree(ctx, "r"); err != nil {
		t.Fatalf("delete on a full disk: %v", err)
	}
	free.Store(1 << 40)
	if _, _, err := st.Load(ctx, "r"); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("state after DeleteTree: %v", err)
	}
	if ok, _ := st.Processed(ctx, "r", "p"); ok {
		t.Fatal("a mark survived DeleteTree")
	}
	if w, _ := in.Waiting(ctx); len(w) != 0 {
		t.Fatalf("waiting after DeleteTree: %+v", w)
	}
	if th, w, _ := s.Counts(ctx); th != 0 || w != 0 {
		t.Fatalf("counts after DeleteTree: %d threads, %d waiting", th, w)
	}
}

// TestOutboxSkipsProcessed: a commit's outbox message that its thread
// already marked processed is not queued (as Put would not).
func TestOutboxSkipsProcessed(t *testing.T) {
	s := openTemp(t)
	ctx := ctxT(t)
	conv := s.Conversations()
	for _, id := range []string{"a", "b"} {
		if err := conv.CreateThread(ctx, root(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.State().MarkProcessed(ctx, "b", []infinity.MessageID{"done"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	msg := infinity.InputMessage{ID: "done", GroupID: "b"}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "a", Outbox: []infinity.Outgoing{{ID: "o", Message: &msg}}}); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.Inbox().Waiting(ctx); len(w) != 0 {
		t.Fatalf("a processed message was queued: %+v", w)
	}
}

// TestTrailingSlash: a directory given with a trailing slash converts and
// reopens like the clean path.
func TestTrailingSlash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	old, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, old.Conversations(), old.State(), old.Inbox())
	old.Close()
	for range 2 {
		s, err := Open(dir + "/")
		if err != nil {
			t.Fatal(err)
		}
		check(t, s.Conversations(), s.State(), s.Inbox())
		s.Close()
	}
}

// TestOutboxWithoutPending: a thread header written before headers named
// their unsent outbox entries (Unsent counted, Pending absent) still has
// its entries marked sent and its repeats skipped, from a scan, and is
// rewritten with the list.
func TestOutboxWithoutPending(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	conv := s.Conversations()
	if err := conv.CreateThread(ctx, root("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "a", Outbox: []infinity.Outgoing{{ID: "o1", Invoke: &infinity.Invocation{Tool: "t"}}, {ID: "o2", Invoke: &infinity.Invocation{Tool: "t"}}}}); err != nil {
		t.Fatal(err)
	}
	// Rewrite the header as an older version of the store wrote it.
	h, err := readHeader(s.db, "a")
	if err != nil || h == nil || len(h.Pending) != 2 || h.Unsent != 2 {
		t.Fatalf("header %+v %v", h, err)
	}
	h.Pending = nil
	v, err := encode(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(threadKey(tagThread, "a", 0), v, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conv = s.Conversations()
	if err := conv.MarkSent(ctx, "a", "o1"); err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "a", Expected: 0, Outbox: []infinity.Outgoing{{ID: "o2", Invoke: &infinity.Invocation{Tool: "t"}}, {ID: "o3", Invoke: &infinity.Invocation{Tool: "t"}}}}); err != nil {
		t.Fatal(err)
	}
	out, err := conv.Outbox(ctx, "a")
	if err != nil || len(out) != 2 || out[0].ID != "o2" || out[1].ID != "o3" {
		t.Fatalf("outbox %+v %v, want o2 o3", out, err)
	}
	h, err = readHeader(s.db, "a")
	if err != nil || h.Unsent != 2 || len(h.Pending) != 2 || h.Pending[0] != (outRef{"o2", 1}) || h.Pending[1] != (outRef{"o3", 2}) {
		t.Fatalf("header %+v %v", h, err)
	}
	if err := conv.MarkSent(ctx, "a", "o2", "o3", "unknown"); err != nil {
		t.Fatal(err)
	}
	if out, err := conv.Outbox(ctx, "a"); err != nil || len(out) != 0 {
		t.Fatalf("outbox %+v %v, want empty", out, err)
	}
	if u, err := s.Unsent(ctx); err != nil || len(u) != 0 {
		t.Fatalf("unsent %v %v", u, err)
	}
}

// TestQueuedBeforeCreate: a message queued for a thread id before the
// thread exists is seen by the thread's checks once it is created (the
// caches do not take a new thread's sets for empty when the store holds
// entries for its id).
func TestQueuedBeforeCreate(t *testing.T) {
	s := openTemp(t)
	ctx := ctxT(t)
	in, conv := s.Inbox(), s.Conversations()
	m := infinity.InputMessage{ID: "m1", GroupID: "x"}
	if ok, err := in.Put(ctx, m, time.Time{}); !ok || err != nil {
		t.Fatalf("put: %v %v", ok, err)
	}
	if err := s.State().MarkProcessed(ctx, "x", []infinity.MessageID{"p1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := conv.CreateThread(ctx, root("x")); err != nil {
		t.Fatal(err)
	}
	if ok, err := in.Put(ctx, m, time.Time{}); !ok || err != nil {
		t.Fatalf("repeat put: %v %v", ok, err)
	}
	if ok, err := in.Put(ctx, infinity.InputMessage{ID: "p1", GroupID: "x"}, time.Time{}); ok || err != nil {
		t.Fatalf("put of a processed id: %v %v", ok, err)
	}
	if w, _ := in.Waiting(ctx); len(w) != 1 {
		t.Fatalf("%d waiting, want 1: %+v", len(w), w)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "x", Applied: []infinity.MessageID{"m1"}}); err != nil {
		t.Fatal(err)
	}
	if w, _ := in.Waiting(ctx); len(w) != 0 {
		t.Fatalf("%d waiting after the commit consumed it: %+v", len(w), w)
	}
	if _, n, _ := s.Counts(ctx); n != 0 {
		t.Fatalf("waiting count %d", n)
	}
}
