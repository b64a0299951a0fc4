package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

var conversationCases = []struct {
	name string
	fn   func(t *testing.T, s infinity.ConversationStore)
}{
	{"CreateAndGet", testCreateAndGet},
	{"UnknownThread", testUnknownThread},
	{"DuplicateCreate", testDuplicateCreate},
	{"InvalidRoot", testInvalidRoot},
	{"Ordering", testOrdering},
	{"ItemRanges", testItemRanges},
	{"IdempotentAppend", testIdempotentAppend},
	{"ManyApplied", testManyApplied},
	{"Conflict", testConflict},
	{"ConcurrentCommit", testConcurrentCommit},
	{"ErrorOrder", testErrorOrder},
	{"Closed", testClosed},
	{"CloseSubtree", testCloseSubtree},
	{"CloseUnknown", testCloseUnknown},
	{"Lineage", testLineage},
	{"ChildrenOrder", testChildrenOrder},
	{"CreateInvalid", testCreateInvalid},
	{"CreateDuplicate", testCreateDuplicate},
	{"ConcurrentCreate", testConcurrentCreate},
	{"Outbox", testOutbox},
	{"OutboxDuplicates", testOutboxDuplicates},
	{"IsolationIn", testIsolationIn},
	{"IsolationOut", testIsolationOut},
	{"Concurrency", testConcurrency},
	{"Summaries", testSummaries},
}

// conv bundles a store with the helpers the cases share.
type conv struct {
	t   *testing.T
	s   infinity.ConversationStore
	ctx context.Context
	id  func(name string) infinity.ThreadID
}

func newConv(t *testing.T, s infinity.ConversationStore) conv {
	return conv{t: t, s: s, ctx: ctxOf(t), id: idsFor()}
}

func rootInfo(id infinity.ThreadID) infinity.ThreadInfo {
	return infinity.ThreadInfo{ID: id, Root: id, Agent: "main", Created: at(0)}
}

func childInfo(id infinity.ThreadID, parent infinity.ThreadInfo, order int, call string) infinity.ThreadInfo {
	return infinity.ThreadInfo{
		ID: id, Parent: parent.ID, Root: parent.Root,
		SpawnOrder: order, SpawnCallID: call, Kind: infinity.ThreadNormal,
		Agent: "sub", Created: at(100 + order),
	}
}

// root creates a root thread named name and returns its info.
func (c conv) root(name string) infinity.ThreadInfo {
	c.t.Helper()
	info := rootInfo(c.id(name))
	noErr(c.t, c.s.CreateThread(c.ctx, info), "CreateThread "+string(info.ID))
	return info
}

// commit commits cm, which must succeed, and checks the returned length.
func (c conv) commit(cm infinity.Commit) int {
	c.t.Helper()
	n, err := c.s.Commit(c.ctx, cm)
	noErr(c.t, err, "Commit "+string(cm.Thread))
	if want := cm.Expected + len(cm.Items); n != want {
		c.t.Fatalf("Commit %s returned length %d, want %d", cm.Thread, n, want)
	}
	return n
}

// commitErr commits cm, which must fail with target.
func (c conv) commitErr(cm infinity.Commit, target error, what string) {
	c.t.Helper()
	_, err := c.s.Commit(c.ctx, cm)
	wantErr(c.t, err, target, what)
}

func (c conv) info(id infinity.ThreadID) infinity.ThreadInfo {
	c.t.Helper()
	info, err := c.s.Thread(c.ctx, id)
	noErr(c.t, err, "Thread "+string(id))
	return info
}

func (c conv) len(id infinity.ThreadID) int {
	c.t.Helper()
	n, err := c.s.Len(c.ctx, id)
	noErr(c.t, err, "Len "+string(id))
	return n
}

func (c conv) items(id infinity.ThreadID, from, to int) []infinity.Item {
	c.t.Helper()
	items, err := c.s.Items(c.ctx, id, from, to)
	noErr(c.t, err, fmt.Sprintf("Items %s [%d,%d)", id, from, to))
	return items
}

func (c conv) outbox(id infinity.ThreadID) []infinity.Outgoing {
	c.t.Helper()
	o, err := c.s.Outbox(c.ctx, id)
	noErr(c.t, err, "Outbox "+string(id))
	return o
}

func (c conv) applied(id infinity.ThreadID, m infinity.MessageID) bool {
	c.t.Helper()
	ok, err := c.s.Applied(c.ctx, id, m)
	noErr(c.t, err, fmt.Sprintf("Applied %s %s", id, m))
	return ok
}

func (c conv) lineage(id infinity.ThreadID) []infinity.ThreadInfo {
	c.t.Helper()
	l, err := c.s.Lineage(c.ctx, id)
	noErr(c.t, err, "Lineage "+string(id))
	return l
}

func (c conv) children(id infinity.ThreadID) []infinity.ThreadInfo {
	c.t.Helper()
	l, err := c.s.Children(c.ctx, id)
	noErr(c.t, err, "Children "+string(id))
	return l
}

func (c conv) markSent(id infinity.ThreadID, ids ...string) {
	c.t.Helper()
	noErr(c.t, c.s.MarkSent(c.ctx, id, ids...), "MarkSent "+string(id))
}

func (c conv) notFound(id infinity.ThreadID) {
	c.t.Helper()
	_, err := c.s.Thread(c.ctx, id)
	wantErr(c.t, err, infinity.ErrNotFound, "Thread "+string(id))
}

// snapshot is what a failed commit must leave unchanged.
type snapshot struct {
	info     infinity.ThreadInfo
	n        int
	items    []infinity.Item
	outbox   []infinity.Outgoing
	children []infinity.ThreadInfo
}

func (c conv) snap(id infinity.ThreadID) snapshot {
	c.t.Helper()
	return snapshot{c.info(id), c.len(id), c.items(id, 0, -1), c.outbox(id), c.children(id)}
}

func (c conv) unchanged(id infinity.ThreadID, want snapshot, what string) {
	c.t.Helper()
	got := c.snap(id)
	checkInfo(c.t, what+": thread", got.info, want.info)
	if got.n != want.n {
		c.t.Errorf("%s: Len = %d, want %d", what, got.n, want.n)
	}
	checkItems(c.t, what+": items", got.items, want.items)
	checkOutbox(c.t, what+": outbox", got.outbox, want.outbox)
	checkInfos(c.t, what+": children", got.children, want.children)
}

func userItem(id string, n int) infinity.Item {
	return infinity.Item{ID: id, Kind: infinity.KindUser, Text: "text of " + id, At: at(n)}
}

// richItems returns a model response and a tool result that use every item
// field.
func richItems(prefix string, n int) []infinity.Item {
	return []infinity.Item{
		{ID: prefix + "-text", Kind: infinity.KindAssistant, Text: "let me look", At: at(n)},
		{
			ID: prefix + "-call", Kind: infinity.KindToolCall, At: at(n),
			Call:  &infinity.ToolCall{ID: prefix + "-c1", Name: "search", Args: json.RawMessage(`{"query": "weather", "limit": 3}`)},
			Usage: &infinity.Usage{Input: 120, Output: 17},
			Model: "anthropic/claude-sonnet-4-5",
		},
		{
			ID: prefix + "-result", Kind: infinity.KindToolResult, At: at(n + 1),
			Result: &infinity.ToolResult{
				CallID: prefix + "-c1",
				Parts: []infinity.Part{
					{Type: "text", Text: "sunny"},
					{Type: "image", Data: "aGVsbG8=", MediaType: "image/png"},
				},
				IsError: true,
				State:   infinity.ResultPending,
				Display: []infinity.DisplaySegment{{Type: "diff", Content: json.RawMessage(`{"before": "a", "after": "b"}`)}},
			},
		},
	}
}

func msgOut(id string, to infinity.ThreadID, text string, when time.Time) infinity.Outgoing {
	return infinity.Outgoing{
		ID: id,
		At: when,
		Message: &infinity.InputMessage{
			ID:        infinity.MessageID("msg-" + id),
			GroupID:   to,
			Content:   infinity.TextContent(text),
			Metadata:  json.RawMessage(`{"user": "someone", "n": 2}`),
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticThreadReport, ToolCallID: "call-" + id, ChildThreadID: "child-x", Final: true},
			DisplayAs: []infinity.DisplaySegment{{Type: "text", Content: json.RawMessage(`"shown"`)}},
		},
	}
}

func resultOut(id string, to infinity.ThreadID) infinity.Outgoing {
	c := infinity.ResultContent("call-"+id, "done")
	c.Choices = []string{"yes", "no"}
	return infinity.Outgoing{
		ID:      id,
		Message: &infinity.InputMessage{ID: infinity.MessageID("msg-" + id), GroupID: to, Content: c},
	}
}

func invokeOut(id, tool string) infinity.Outgoing {
	return infinity.Outgoing{
		ID: id,
		Invoke: &infinity.Invocation{
			Tool: tool,
			Call: infinity.ToolCall{ID: "call-" + id, Name: tool, Args: json.RawMessage(`{"seconds": 30}`)},
		},
	}
}

func testCreateAndGet(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	checkInfo(t, "Thread", c.info(r.ID), r)
	if n := c.len(r.ID); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
	if items := c.items(r.ID, 0, -1); len(items) != 0 {
		t.Errorf("Items = %v, want none", itemIDs(items))
	}
	if o := c.outbox(r.ID); len(o) != 0 {
		t.Errorf("Outbox = %v, want none", outIDs(o))
	}
	checkInfos(t, "Lineage", c.lineage(r.ID), []infinity.ThreadInfo{r})
	checkInfos(t, "Children", c.children(r.ID), nil)
	if c.applied(r.ID, "m1") {
		t.Error("Applied(m1) = true on a new thread")
	}

	// A second root is independent of the first.
	r2 := c.root("other")
	checkInfo(t, "Thread other", c.info(r2.ID), r2)
	checkInfo(t, "Thread root again", c.info(r.ID), r)
}

func testUnknownThread(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	c.root("known")
	id := c.id("missing")
	ctx := c.ctx

	_, err := s.Thread(ctx, id)
	wantErr(t, err, infinity.ErrNotFound, "Thread")
	_, err = s.Lineage(ctx, id)
	wantErr(t, err, infinity.ErrNotFound, "Lineage")
	_, err = s.Children(ctx, id)
	wantErr(t, err, infinity.ErrNotFound, "Children")
	_, err = s.Items(ctx, id, 0, -1)
	wantErr(t, err, infinity.ErrNotFound, "Items")
	_, err = s.Len(ctx, id)
	wantErr(t, err, infinity.ErrNotFound, "Len")
	_, err = s.Applied(ctx, id, "m1")
	wantErr(t, err, infinity.ErrNotFound, "Applied")
	_, err = s.Outbox(ctx, id)
	wantErr(t, err, infinity.ErrNotFound, "Outbox")
	err = s.MarkSent(ctx, id, "o1")
	wantErr(t, err, infinity.ErrNotFound, "MarkSent")
	c.commitErr(infinity.Commit{
		Thread: id, Items: []infinity.Item{userItem("u1", 1)}, Applied: []infinity.MessageID{"m1"},
	}, infinity.ErrNotFound, "Commit")
	// The failed commit did not create the thread.
	c.notFound(id)
}

func testDuplicateCreate(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	dup := r
	dup.Agent = "other"
	dup.Created = at(5)
	wantErr(t, s.CreateThread(c.ctx, dup), infinity.ErrExists, "second CreateThread")
	checkInfo(t, "Thread after duplicate", c.info(r.ID), r)
}

func testInvalidRoot(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	other := c.root("other")

	withParent := rootInfo(c.id("with-parent"))
	withParent.Parent = other.ID
	withParent.Root = other.ID
	wrongRoot := rootInfo(c.id("wrong-root"))
	wrongRoot.Root = other.ID
	noRoot := rootInfo(c.id("no-root"))
	noRoot.Root = ""
	spaced := rootInfo(c.id("has space"))
	long := rootInfo(infinity.ThreadID(strings.Repeat("x", 129)))

	for _, tc := range []struct {
		what  string
		info  infinity.ThreadInfo
		check bool // whether to check Thread afterwards
	}{
		{"parent set", withParent, true},
		{"root not id", wrongRoot, true},
		{"empty root", noRoot, true},
		{"empty id", infinity.ThreadInfo{}, false},
		{"id with a space", spaced, false},
		{"id too long", long, false},
	} {
		wantErr(t, s.CreateThread(c.ctx, tc.info), infinity.ErrInvalid, "CreateThread "+tc.what)
		if tc.check {
			c.notFound(tc.info.ID)
		}
	}
	checkInfos(t, "Children of other", c.children(other.ID), nil)
}

func testOrdering(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	var all []infinity.Item

	add := func(items []infinity.Item, m infinity.MessageID) {
		t.Helper()
		n := c.commit(infinity.Commit{Thread: r.ID, Expected: len(all), Items: items, Applied: []infinity.MessageID{m}})
		all = append(all, items...)
		if got := c.len(r.ID); got != n || n != len(all) {
			t.Fatalf("Len = %d, Commit returned %d, want %d", got, n, len(all))
		}
	}
	add([]infinity.Item{userItem("u1", 1), userItem("u2", 2)}, "m1")
	add([]infinity.Item{userItem("u3", 3)}, "m2")
	add(richItems("r1", 4), "m3")
	// A commit without items (an input consumed without output) keeps the
	// length.
	add(nil, "m4")
	add([]infinity.Item{userItem("u4", 9)}, "m5")

	checkItems(t, "Items(0,-1)", c.items(r.ID, 0, -1), all)
	for _, m := range []infinity.MessageID{"m1", "m2", "m3", "m4", "m5"} {
		if !c.applied(r.ID, m) {
			t.Errorf("Applied(%s) = false", m)
		}
	}
}

func testItemRanges(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	all := []infinity.Item{userItem("u0", 0), userItem("u1", 1)}
	all = append(all, richItems("r", 2)...)
	all = append(all, userItem("u5", 5))
	c.commit(infinity.Commit{Thread: r.ID, Items: all[:2]})
	c.commit(infinity.Commit{Thread: r.ID, Expected: 2, Items: all[2:]})
	n := len(all) // 6

	for _, tc := range []struct{ from, to, lo, hi int }{
		{0, -1, 0, n},
		{0, n, 0, n},
		{1, 3, 1, 3},
		{2, -1, 2, n},
		{n - 1, n, n - 1, n},
		{0, 1, 0, 1},
		{0, 100, 0, n},   // to past the end: clamped
		{3, 3, 3, 3},     // empty range
		{n, -1, n, n},    // from at the end
		{100, -1, n, n},  // from past the end
		{100, 200, n, n}, // both past the end
		{4, 2, 4, 4},     // to before from
	} {
		what := fmt.Sprintf("Items(%d,%d)", tc.from, tc.to)
		checkItems(t, what, c.items(r.ID, tc.from, tc.to), all[tc.lo:tc.hi])
	}
	_, err := s.Items(c.ctx, r.ID, -1, 2)
	wantErr(t, err, infinity.ErrInvalid, "Items(-1,2)")
}

func testIdempotentAppend(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	other := c.root("other")
	c.commit(infinity.Commit{
		Thread: r.ID, Items: []infinity.Item{userItem("m1", 1), userItem("a1", 2)},
		Applied: []infinity.MessageID{"m1"}, Outbox: []infinity.Outgoing{invokeOut("o1", "sleep")},
	})
	if !c.applied(r.ID, "m1") {
		t.Fatal("Applied(m1) = false after commit")
	}
	if c.applied(r.ID, "m2") {
		t.Fatal("Applied(m2) = true before any commit applied it")
	}
	before := c.snap(r.ID)

	for _, tc := range []struct {
		what    string
		applied []infinity.MessageID
	}{
		{"re-applying m1", []infinity.MessageID{"m1"}},
		{"m2 with m1", []infinity.MessageID{"m2", "m1"}},
		{"m2 twice", []infinity.MessageID{"m2", "m2"}},
	} {
		c.commitErr(infinity.Commit{
			Thread: r.ID, Expected: 2, Items: []infinity.Item{userItem("m2", 3)},
			Applied: tc.applied, Outbox: []infinity.Outgoing{invokeOut("o2", "sleep")},
		}, infinity.ErrApplied, "Commit "+tc.what)
		c.unchanged(r.ID, before, tc.what)
		if c.applied(r.ID, "m2") {
			t.Fatalf("%s: Applied(m2) = true after a failed commit", tc.what)
		}
	}

	// Applied ids are per thread.
	if c.applied(other.ID, "m1") {
		t.Error("Applied(other, m1) = true: applied ids leak between threads")
	}
	c.commit(infinity.Commit{Thread: other.ID, Items: []infinity.Item{userItem("m1", 1)}, Applied: []infinity.MessageID{"m1"}})

	c.commit(infinity.Commit{Thread: r.ID, Expected: 2, Items: []infinity.Item{userItem("m2", 3)}, Applied: []infinity.MessageID{"m2"}})
	if !c.applied(r.ID, "m2") {
		t.Error("Applied(m2) = false after commit")
	}
	if n := c.len(r.ID); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func testManyApplied(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	const n = 40
	for i := range n {
		var applied []infinity.MessageID
		// Alternate single and paired ids: 60 ids in all.
		applied = append(applied, infinity.MessageID(fmt.Sprintf("m%d", i)))
		if i%2 == 0 {
			applied = append(applied, infinity.MessageID(fmt.Sprintf("p%d", i)))
		}
		c.commit(infinity.Commit{Thread: r.ID, Expected: i, Items: []infinity.Item{userItem(fmt.Sprintf("u%d", i), i)}, Applied: applied})
	}
	for i := range n {
		if !c.applied(r.ID, infinity.MessageID(fmt.Sprintf("m%d", i))) {
			t.Errorf("Applied(m%d) = false", i)
		}
		if got, want := c.applied(r.ID, infinity.MessageID(fmt.Sprintf("p%d", i))), i%2 == 0; got != want {
			t.Errorf("Applied(p%d) = %v, want %v", i, got, want)
		}
	}
	for _, m := range []infinity.MessageID{"m0", "m7", "p38", "m39"} {
		c.commitErr(infinity.Commit{Thread: r.ID, Expected: n, Applied: []infinity.MessageID{"fresh", m}}, infinity.ErrApplied, "re-applying "+string(m))
	}
	if c.applied(r.ID, "fresh") {
		t.Error("Applied(fresh) = true after failed commits")
	}
}

func testConflict(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	c.commit(infinity.Commit{Thread: r.ID, Items: []infinity.Item{userItem("u1", 1), userItem("u2", 2)}, Applied: []infinity.MessageID{"m1"}})
	before := c.snap(r.ID)
	for _, expected := range []int{0, 1, 3, 10, -1} {
		what := fmt.Sprintf("Expected %d", expected)
		c.commitErr(infinity.Commit{
			Thread: r.ID, Expected: expected, Items: []infinity.Item{userItem("u3", 3)},
			Applied: []infinity.MessageID{"m2"}, Outbox: []infinity.Outgoing{invokeOut("o1", "sleep")},
			Create: []infinity.ThreadInfo{childInfo(c.id("kid"), r, 2, "call-1")},
			Close:  []infinity.ThreadID{r.ID},
		}, infinity.ErrConflict, "Commit with "+what)
		c.unchanged(r.ID, before, what)
		if c.applied(r.ID, "m2") {
			t.Fatalf("%s: Applied(m2) = true after a failed commit", what)
		}
		c.notFound(c.id("kid"))
	}
	c.commit(infinity.Commit{Thread: r.ID, Expected: 2, Items: []infinity.Item{userItem("u3", 3)}, Applied: []infinity.MessageID{"m2"}})
}

func testConcurrentCommit(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	const workers, rounds = 8, 5
	var want []infinity.Item
	for round := range rounds {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			winners atomic.Int32
			winner  atomic.Int32
		)
		expected := len(want)
		for w := range workers {
			wg.Go(func() {
				<-start
				tag := fmt.Sprintf("r%d-w%d", round, w)
				n, err := s.Commit(c.ctx, infinity.Commit{
					Thread: r.ID, Expected: expected,
					Items:   []infinity.Item{userItem(tag+"-a", round), userItem(tag+"-b", round)},
					Applied: []infinity.MessageID{infinity.MessageID("m-" + tag)},
					Outbox:  []infinity.Outgoing{invokeOut("o-"+tag, "sleep")},
				})
				switch {
				case err == nil:
					winners.Add(1)
					winner.Store(int32(w))
					if n != expected+2 {
						t.Errorf("round %d: winner's Commit returned %d, want %d", round, n, expected+2)
					}
				case errors.Is(err, infinity.ErrConflict):
				default:
					t.Errorf("round %d worker %d: Commit: %v, want nil or ErrConflict", round, w, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := winners.Load(); got != 1 {
			t.Fatalf("round %d: %d commits with the same Expected succeeded, want exactly 1", round, got)
		}
		wtag := fmt.Sprintf("r%d-w%d", round, winner.Load())
		want = append(want, userItem(wtag+"-a", round), userItem(wtag+"-b", round))
		checkItems(t, fmt.Sprintf("round %d: Items", round), c.items(r.ID, 0, -1), want)
		for w := range workers {
			tag := fmt.Sprintf("r%d-w%d", round, w)
			if got := c.applied(r.ID, infinity.MessageID("m-"+tag)); got != (tag == wtag) {
				t.Errorf("round %d: Applied(m-%s) = %v, want %v", round, tag, got, tag == wtag)
			}
		}
		checkOutbox(t, fmt.Sprintf("round %d: Outbox", round), c.outbox(r.ID), []infinity.Outgoing{invokeOut("o-"+wtag, "sleep")})
		c.markSent(r.ID, "o-"+wtag)
	}
}

func testErrorOrder(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	x := c.root("x")
	closed := c.root("closed")
	c.commit(infinity.Commit{Thread: r.ID, Items: []infinity.Item{userItem("m1", 1)}, Applied: []infinity.MessageID{"m1"}})
	c.commit(infinity.Commit{Thread: closed.ID, Items: []infinity.Item{userItem("m1", 1)}, Applied: []infinity.MessageID{"m1"}, Close: []infinity.ThreadID{closed.ID}})
	before := c.snap(r.ID)
	beforeClosed := c.snap(closed.ID)

	badParent := childInfo(c.id("orphan"), r, 1, "call-o")
	badParent.Parent = c.id("nobody")
	exists := childInfo(x.ID, r, 1, "call-x")
	missing := c.id("missing")

	// Each commit fails two or more checks; the earlier check decides.
	c.commitErr(infinity.Commit{Thread: closed.ID, Expected: 0, Applied: []infinity.MessageID{"m1"}},
		infinity.ErrClosed, "closed thread with stale Expected and applied input")
	c.commitErr(infinity.Commit{Thread: r.ID, Expected: 0, Applied: []infinity.MessageID{"m1"}, Create: []infinity.ThreadInfo{exists}},
		infinity.ErrConflict, "stale Expected with applied input")
	c.commitErr(infinity.Commit{Thread: r.ID, Expected: 1, Applied: []infinity.MessageID{"m1"}, Create: []infinity.ThreadInfo{exists}},
		infinity.ErrApplied, "applied input with existing child")
	c.commitErr(infinity.Commit{Thread: r.ID, Expected: 1, Applied: []infinity.MessageID{"m2"}, Create: []infinity.ThreadInfo{badParent, exists}},
		infinity.ErrExists, "invalid child before existing child")
	c.commitErr(infinity.Commit{Thread: r.ID, Expected: 1, Applied: []infinity.MessageID{"m2"}, Create: []infinity.ThreadInfo{badParent}, Close: []infinity.ThreadID{missing}},
		infinity.ErrInvalid, "invalid child with unknown close")
	c.commitErr(infinity.Commit{Thread: r.ID, Expected: 1, Applied: []infinity.MessageID{"m2"}, Close: []infinity.ThreadID{r.ID, missing}},
		infinity.ErrNotFound, "unknown close")

	c.unchanged(r.ID, before, "after failed commits")
	c.unchanged(closed.ID, beforeClosed, "closed thread after failed commit")
	if c.applied(r.ID, "m2") {
		t.Error("Applied(m2) = true after failed commits")
	}
	c.notFound(badParent.ID)
}

func testClosed(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	c.commit(infinity.Commit{Thread: r.ID, Items: []infinity.Item{userItem("m0", 0)}, Applied: []infinity.MessageID{"m0"}})
	if c.info(r.ID).Closed {
		t.Fatal("new thread is closed")
	}
	// The closing commit appends the thread's last items and closes it.
	last := richItems("last", 1)
	c.commit(infinity.Commit{
		Thread: r.ID, Expected: 1, Items: last, Applied: []infinity.MessageID{"m1"},
		Outbox: []infinity.Outgoing{msgOut("report", c.id("parent"), "bye", time.Time{})},
		Close:  []infinity.ThreadID{r.ID},
	})
	info := c.info(r.ID)
	if !info.Closed {
		t.Fatal("Thread().Closed = false after a commit closing it")
	}
	want := r
	want.Closed = true
	checkInfo(t, "Thread after close", info, want)
	checkInfos(t, "Lineage after close", c.lineage(r.ID), []infinity.ThreadInfo{want})
	if n := c.len(r.ID); n != 4 {
		t.Errorf("Len = %d, want 4", n)
	}
	if !c.applied(r.ID, "m1") {
		t.Error("Applied(m1) = false after the closing commit")
	}
	before := c.snap(r.ID)

	for _, expected := range []int{4, 0} {
		c.commitErr(infinity.Commit{Thread: r.ID, Expected: expected, Items: []infinity.Item{userItem("m2", 5)}, Applied: []infinity.MessageID{"m2"}},
			infinity.ErrClosed, fmt.Sprintf("Commit to a closed thread (Expected %d)", expected))
	}
	c.unchanged(r.ID, before, "after commits to a closed thread")
	if c.applied(r.ID, "m2") {
		t.Error("Applied(m2) = true on a closed thread")
	}

	// The closing commit's outbox is still delivered.
	checkOutbox(t, "Outbox of closed thread", c.outbox(r.ID), []infinity.Outgoing{msgOut("report", c.id("parent"), "bye", time.Time{})})
	c.markSent(r.ID, "report")
	if o := c.outbox(r.ID); len(o) != 0 {
		t.Errorf("Outbox after MarkSent = %v, want none", outIDs(o))
	}
}

// tree creates root -> a -> b and root -> c through commits and returns
// their infos.
func (c conv) tree() (root, a, b, cc infinity.ThreadInfo) {
	c.t.Helper()
	root = c.root("root")
	a = childInfo(c.id("a"), root, 1, "call-a")
	b = childInfo(c.id("b"), a, 0, "call-b")
	cc = childInfo(c.id("c"), root, 1, "call-c")
	c.commit(infinity.Commit{Thread: root.ID, Items: []infinity.Item{userItem("u1", 1)}, Create: []infinity.ThreadInfo{a, b}})
	c.commit(infinity.Commit{Thread: root.ID, Expected: 1, Create: []infinity.ThreadInfo{cc}})
	return root, a, b, cc
}

func testCloseSubtree(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	root, a, b, cc := c.tree()
	c.commit(infinity.Commit{Thread: a.ID, Items: []infinity.Item{userItem("a1", 1)}})

	// a closes itself and its subtree.
	c.commit(infinity.Commit{Thread: a.ID, Expected: 1, Items: []infinity.Item{userItem("a2", 2)}, Close: []infinity.ThreadID{a.ID, b.ID}})
	for _, x := range []infinity.ThreadInfo{a, b} {
		if !c.info(x.ID).Closed {
			t.Errorf("%s not closed", x.ID)
		}
	}
	for _, x := range []infinity.ThreadInfo{root, cc} {
		if c.info(x.ID).Closed {
			t.Errorf("%s closed, but it was not named", x.ID)
		}
	}
	c.commitErr(infinity.Commit{Thread: b.ID, Items: []infinity.Item{userItem("b1", 1)}}, infinity.ErrClosed, "Commit to closed grandchild")

	// The root closes the whole tree; closing a closed thread again is fine.
	c.commit(infinity.Commit{Thread: root.ID, Expected: 1, Items: []infinity.Item{userItem("u2", 2)}, Close: []infinity.ThreadID{root.ID, a.ID, b.ID, cc.ID}})
	for _, x := range []infinity.ThreadInfo{root, a, b, cc} {
		want := x
		want.Closed = true
		checkInfo(t, "closed "+string(x.ID), c.info(x.ID), want)
		c.commitErr(infinity.Commit{Thread: x.ID, Expected: c.len(x.ID)}, infinity.ErrClosed, "Commit to closed "+string(x.ID))
	}
	checkInfos(t, "Children of closed root", c.children(root.ID), []infinity.ThreadInfo{
		{ID: a.ID, Parent: a.Parent, Root: a.Root, SpawnOrder: a.SpawnOrder, SpawnCallID: a.SpawnCallID, Kind: a.Kind, Agent: a.Agent, Closed: true, Created: a.Created},
		{ID: cc.ID, Parent: cc.Parent, Root: cc.Root, SpawnOrder: cc.SpawnOrder, SpawnCallID: cc.SpawnCallID, Kind: cc.Kind, Agent: cc.Agent, Closed: true, Created: cc.Created},
	})
}

func testCloseUnknown(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	root, a, _, _ := c.tree()
	before := c.snap(root.ID)
	beforeA := c.snap(a.ID)
	c.commitErr(infinity.Commit{
		Thread: root.ID, Expected: 1, Items: []infinity.Item{userItem("u2", 2)}, Applied: []infinity.MessageID{"m2"},
		Close: []infinity.ThreadID{root.ID, a.ID, c.id("missing")},
	}, infinity.ErrNotFound, "Commit closing an unknown thread")
	c.unchanged(root.ID, before, "root")
	c.unchanged(a.ID, beforeA, "a")
	if c.applied(root.ID, "m2") {
		t.Error("Applied(m2) = true after failed commit")
	}
}

func testLineage(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	root := c.root("root")
	a := childInfo(c.id("a"), root, 2, "call-a")
	c.commit(infinity.Commit{Thread: root.ID, Items: []infinity.Item{userItem("u1", 1), userItem("u2", 2)}, Create: []infinity.ThreadInfo{a}})
	b := childInfo(c.id("b"), a, 3, "call-b")
	b.Kind = infinity.ThreadEvent
	b.Agent = "events"
	b.Model = "openai/gpt-4o-mini"
	c.commit(infinity.Commit{Thread: a.ID, Items: []infinity.Item{userItem("a1", 3)}, Create: []infinity.ThreadInfo{b}})
	cc := childInfo(c.id("c"), b, 0, "")
	cc.Kind = infinity.ThreadCompaction
	c.commit(infinity.Commit{Thread: b.ID, Create: []infinity.ThreadInfo{cc}})

	checkInfos(t, "Lineage(c)", c.lineage(cc.ID), []infinity.ThreadInfo{root, a, b, cc})
	checkInfos(t, "Lineage(b)", c.lineage(b.ID), []infinity.ThreadInfo{root, a, b})
	checkInfos(t, "Lineage(a)", c.lineage(a.ID), []infinity.ThreadInfo{root, a})
	checkInfos(t, "Lineage(root)", c.lineage(root.ID), []infinity.ThreadInfo{root})
	checkInfo(t, "Thread(b)", c.info(b.ID), b)
	checkInfos(t, "Children(root)", c.children(root.ID), []infinity.ThreadInfo{a})
	checkInfos(t, "Children(a)", c.children(a.ID), []infinity.ThreadInfo{b})
	checkInfos(t, "Children(b)", c.children(b.ID), []infinity.ThreadInfo{cc})
	checkInfos(t, "Children(c)", c.children(cc.ID), nil)
	if n := c.len(b.ID); n != 0 {
		t.Errorf("Len(b) = %d, want 0 (a child's inherited history is not its own)", n)
	}
	if n := c.len(a.ID); n != 1 {
		t.Errorf("Len(a) = %d, want 1", n)
	}
	if n := c.len(root.ID); n != 2 {
		t.Errorf("Len(root) = %d, want 2", n)
	}
	// A new child has its own empty outbox and applied set.
	if o := c.outbox(b.ID); len(o) != 0 {
		t.Errorf("Outbox(b) = %v, want none", outIDs(o))
	}
	if c.applied(b.ID, "m1") {
		t.Error("Applied(b, m1) = true on a new child")
	}
	// The child accepts commits of its own.
	c.commit(infinity.Commit{Thread: b.ID, Items: []infinity.Item{userItem("b1", 4)}, Applied: []infinity.MessageID{"m1"}})
}

func testChildrenOrder(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	root := c.root("root")
	// Creation order differs from the ids' order and from Created.
	zeta := childInfo(c.id("zeta"), root, 0, "call-1")
	alpha := childInfo(c.id("alpha"), root, 0, "call-2")
	alpha.Created = at(1)
	c.commit(infinity.Commit{Thread: root.ID, Create: []infinity.ThreadInfo{zeta, alpha}})
	mid := childInfo(c.id("mid"), root, 1, "call-3")
	c.commit(infinity.Commit{Thread: root.ID, Items: []infinity.Item{userItem("u1", 1)}, Create: []infinity.ThreadInfo{mid}})
	// A child and its own child created by one commit: the parent comes
	// earlier in Create.
	beta := childInfo(c.id("beta"), root, 1, "call-4")
	betaKid := childInfo(c.id("beta-kid"), beta, 0, "call-5")
	c.commit(infinity.Commit{Thread: root.ID, Expected: 1, Create: []infinity.ThreadInfo{beta, betaKid}})
	// A thread may create a child of another thread (a grandchild here).
	zetaKid := childInfo(c.id("zeta-kid"), zeta, 0, "call-6")
	c.commit(infinity.Commit{Thread: root.ID, Expected: 1, Create: []infinity.ThreadInfo{zetaKid}})

	checkInfos(t, "Children(root)", c.children(root.ID), []infinity.ThreadInfo{zeta, alpha, mid, beta})
	checkInfos(t, "Children(beta)", c.children(beta.ID), []infinity.ThreadInfo{betaKid})
	checkInfos(t, "Children(zeta)", c.children(zeta.ID), []infinity.ThreadInfo{zetaKid})
	checkInfos(t, "Lineage(beta-kid)", c.lineage(betaKid.ID), []infinity.ThreadInfo{root, beta, betaKid})
}

func testCreateInvalid(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	root := c.root("root")
	other := c.root("other")
	before := c.snap(root.ID)
	beforeOther := c.snap(other.ID)

	orphan := childInfo(c.id("orphan"), root, 0, "call-1")
	orphan.Parent = c.id("nobody")
	wrongRoot := childInfo(c.id("wrong-root"), root, 0, "call-2")
	wrongRoot.Root = other.ID
	selfRoot := childInfo(c.id("self-root"), root, 0, "call-3")
	selfRoot.Root = selfRoot.ID
	noParent := rootInfo(c.id("no-parent")) // a root cannot be created by Commit
	later := childInfo(c.id("later"), root, 0, "call-4")
	early := childInfo(c.id("early"), later, 0, "call-5") // its parent comes after it
	badID := childInfo("bad id", root, 0, "call-6")
	ownParent := childInfo(c.id("own-parent"), root, 0, "call-7")
	ownParent.Parent = ownParent.ID

	for _, tc := range []struct {
		what   string
		create []infinity.ThreadInfo
	}{
		{"missing parent", []infinity.ThreadInfo{orphan}},
		{"root not the parent's", []infinity.ThreadInfo{wrongRoot}},
		{"root is itself", []infinity.ThreadInfo{selfRoot}},
		{"no parent", []infinity.ThreadInfo{noParent}},
		{"parent created later in the commit", []infinity.ThreadInfo{early, later}},
		{"malformed id", []infinity.ThreadInfo{badID}},
		{"own parent", []infinity.ThreadInfo{ownParent}},
		{"valid child then a bad one", []infinity.ThreadInfo{later, orphan}},
	} {
		c.commitErr(infinity.Commit{
			Thread: root.ID, Items: []infinity.Item{userItem("u1", 1)}, Applied: []infinity.MessageID{"m1"},
			Outbox: []infinity.Outgoing{invokeOut("o1", "sleep")}, Create: tc.create,
		}, infinity.ErrInvalid, "Commit with "+tc.what)
		c.unchanged(root.ID, before, tc.what)
		c.unchanged(other.ID, beforeOther, tc.what)
		for _, x := range tc.create {
			if x.ID != "bad id" {
				c.notFound(x.ID)
			}
		}
		if c.applied(root.ID, "m1") {
			t.Fatalf("%s: Applied(m1) = true after a failed commit", tc.what)
		}
	}
}

func testCreateDuplicate(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	root := c.root("root")
	other := c.root("other")
	a := childInfo(c.id("a"), root, 0, "call-a")
	c.commit(infinity.Commit{Thread: root.ID, Create: []infinity.ThreadInfo{a}})
	before := c.snap(root.ID)
	beforeA := c.snap(a.ID)

	b := childInfo(c.id("b"), root, 0, "call-b")
	aAgain := childInfo(a.ID, root, 0, "call-a2")
	aAgain.Agent = "different"
	bKid := childInfo(c.id("b-kid"), b, 0, "call-bk")
	otherAsChild := childInfo(other.ID, root, 0, "call-o")
	rootAsChild := childInfo(root.ID, a, 0, "call-r")

	for _, tc := range []struct {
		what   string
		create []infinity.ThreadInfo
	}{
		{"existing child", []infinity.ThreadInfo{b, bKid, aAgain}},
		{"child repeated in the commit", []infinity.ThreadInfo{b, b}},
		{"existing root as child", []infinity.ThreadInfo{otherAsChild}},
		{"the committing thread as child", []infinity.ThreadInfo{rootAsChild}},
	} {
		c.commitErr(infinity.Commit{
			Thread: root.ID, Items: []infinity.Item{userItem("u1", 1)}, Applied: []infinity.MessageID{"m1"},
			Outbox: []infinity.Outgoing{invokeOut("o1", "sleep")}, Create: tc.create,
		}, infinity.ErrExists, "Commit with "+tc.what)
		c.unchanged(root.ID, before, tc.what)
		c.unchanged(a.ID, beforeA, tc.what+": a")
		c.notFound(b.ID)
		c.notFound(bKid.ID)
		if c.applied(root.ID, "m1") {
			t.Fatalf("%s: Applied(m1) = true after a failed commit", tc.what)
		}
	}
	checkInfo(t, "Thread(other)", c.info(other.ID), other)
	checkInfos(t, "Lineage(other)", c.lineage(other.ID), []infinity.ThreadInfo{other})
}

func testConcurrentCreate(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	const workers = 8
	id := c.id("contested")

	// Roots.
	var wg sync.WaitGroup
	var ok atomic.Int32
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			info := rootInfo(id)
			info.Agent = fmt.Sprintf("agent-%d", w)
			switch err := s.CreateThread(c.ctx, info); {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, infinity.ErrExists):
				t.Errorf("CreateThread: %v, want nil or ErrExists", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := ok.Load(); n != 1 {
		t.Fatalf("%d concurrent CreateThread calls with one id succeeded, want 1", n)
	}

	// The same child id created by commits of different parents.
	parents := make([]infinity.ThreadInfo, workers)
	for w := range parents {
		parents[w] = c.root(fmt.Sprintf("p%d", w))
	}
	kid := c.id("kid")
	ok.Store(0)
	var winner atomic.Int32
	start = make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			_, err := s.Commit(c.ctx, infinity.Commit{
				Thread: parents[w].ID, Items: []infinity.Item{userItem("spawn", 1)},
				Create: []infinity.ThreadInfo{childInfo(kid, parents[w], 1, "call")},
			})
			switch {
			case err == nil:
				ok.Add(1)
				winner.Store(int32(w))
			case !errors.Is(err, infinity.ErrExists):
				t.Errorf("Commit: %v, want nil or ErrExists", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := ok.Load(); n != 1 {
		t.Fatalf("%d concurrent commits creating one child succeeded, want 1", n)
	}
	w := int(winner.Load())
	checkInfo(t, "Thread(kid)", c.info(kid), childInfo(kid, parents[w], 1, "call"))
	for i, p := range parents {
		wantLen, wantKids := 0, []infinity.ThreadInfo(nil)
		if i == w {
			wantLen, wantKids = 1, []infinity.ThreadInfo{childInfo(kid, p, 1, "call")}
		}
		if n := c.len(p.ID); n != wantLen {
			t.Errorf("Len(%s) = %d, want %d", p.ID, n, wantLen)
		}
		checkInfos(t, "Children of "+string(p.ID), c.children(p.ID), wantKids)
	}
}

func testOutbox(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	peer := c.root("peer")

	o1 := msgOut("o1", peer.ID, "hello", at(50))
	o2 := invokeOut("o2", "search")
	o3 := resultOut("o3", r.ID)
	o4 := msgOut("o4", r.ID, "continue", time.Time{})
	o4.Message.Synthetic = &infinity.Synthetic{Type: infinity.SyntheticContinue}
	c.commit(infinity.Commit{Thread: r.ID, Items: []infinity.Item{userItem("u1", 1)}, Outbox: []infinity.Outgoing{o1, o2}})
	c.commit(infinity.Commit{Thread: r.ID, Expected: 1, Outbox: []infinity.Outgoing{o3}})
	c.commit(infinity.Commit{Thread: r.ID, Expected: 1, Items: []infinity.Item{userItem("u2", 2)}, Outbox: []infinity.Outgoing{o4}})
	// The peer's outbox has an entry with a clashing id.
	p1 := invokeOut("o1", "peer-tool")
	c.commit(infinity.Commit{Thread: peer.ID, Outbox: []infinity.Outgoing{p1}})

	checkOutbox(t, "Outbox", c.outbox(r.ID), []infinity.Outgoing{o1, o2, o3, o4})
	checkOutbox(t, "Outbox(peer)", c.outbox(peer.ID), []infinity.Outgoing{p1})

	c.markSent(r.ID, "o2", "unknown")
	checkOutbox(t, "Outbox after MarkSent(o2, unknown)", c.outbox(r.ID), []infinity.Outgoing{o1, o3, o4})
	c.markSent(r.ID)
	c.markSent(r.ID, "unknown", "o2")
	checkOutbox(t, "Outbox after no-op MarkSent", c.outbox(r.ID), []infinity.Outgoing{o1, o3, o4})

	c.markSent(r.ID, "o1")
	checkOutbox(t, "Outbox(peer) after root's MarkSent(o1)", c.outbox(peer.ID), []infinity.Outgoing{p1})

	// New entries come after the remaining ones.
	o5 := invokeOut("o5", "sleep")
	c.commit(infinity.Commit{Thread: r.ID, Expected: 2, Outbox: []infinity.Outgoing{o5}})
	checkOutbox(t, "Outbox after another commit", c.outbox(r.ID), []infinity.Outgoing{o3, o4, o5})
	c.markSent(r.ID, "o5", "o3", "o4")
	if o := c.outbox(r.ID); len(o) != 0 {
		t.Errorf("Outbox after sending everything = %v, want none", outIDs(o))
	}
	checkOutbox(t, "Outbox(peer) at the end", c.outbox(peer.ID), []infinity.Outgoing{p1})
}

func testOutboxDuplicates(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	o1 := msgOut("o1", r.ID, "first", at(1))
	o2 := invokeOut("o2", "sleep")
	c.commit(infinity.Commit{Thread: r.ID, Outbox: []infinity.Outgoing{o1, o2}})

	o1b := msgOut("o1", r.ID, "second", at(2))
	o3 := invokeOut("o3", "first")
	o3b := invokeOut("o3", "second")
	c.commit(infinity.Commit{Thread: r.ID, Outbox: []infinity.Outgoing{o1b, o3, o3b}})
	checkOutbox(t, "Outbox", c.outbox(r.ID), []infinity.Outgoing{o1, o2, o3})

	c.markSent(r.ID, "o1")
	checkOutbox(t, "Outbox after MarkSent(o1)", c.outbox(r.ID), []infinity.Outgoing{o2, o3})
}

// isoData builds the values the isolation cases commit; each call returns
// fresh copies.
func isoData(r infinity.ThreadInfo, kid infinity.ThreadID) ([]infinity.Item, []infinity.Outgoing, []infinity.ThreadInfo) {
	items := richItems("x", 1)
	items = append(items, userItem("u", 3))
	out := []infinity.Outgoing{msgOut("o1", r.ID, "hello", at(9)), resultOut("o2", r.ID), invokeOut("o3", "sleep")}
	create := []infinity.ThreadInfo{childInfo(kid, r, 4, "call-k")}
	return items, out, create
}

// mutateItems changes everything reachable from items.
func mutateItems(items []infinity.Item) {
	for i := range items {
		it := &items[i]
		it.Text += "!"
		it.ID += "!"
		if it.Call != nil {
			it.Call.Name += "!"
			scramble(it.Call.Args)
		}
		if it.Result != nil {
			it.Result.CallID += "!"
			for j := range it.Result.Parts {
				it.Result.Parts[j].Text += "!"
			}
			for j := range it.Result.Display {
				scramble(it.Result.Display[j].Content)
			}
		}
		if it.Usage != nil {
			it.Usage.Input++
		}
	}
}

// mutateOutbox changes everything reachable from o.
func mutateOutbox(o []infinity.Outgoing) {
	for i := range o {
		x := &o[i]
		x.ID += "!"
		if m := x.Message; m != nil {
			m.Content.Text += "!"
			scramble(m.Metadata)
			if m.Synthetic != nil {
				m.Synthetic.ToolCallID += "!"
			}
			for j := range m.DisplayAs {
				scramble(m.DisplayAs[j].Content)
			}
			for j := range m.Content.Parts {
				m.Content.Parts[j].Text += "!"
			}
			for j := range m.Content.Choices {
				m.Content.Choices[j] += "!"
			}
		}
		if x.Invoke != nil {
			x.Invoke.Tool += "!"
			scramble(x.Invoke.Call.Args)
		}
	}
}

func testIsolationIn(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	victim := c.root("victim")
	kid := c.id("kid")
	items, out, create := isoData(r, kid)
	applied := []infinity.MessageID{"m1"}
	closeIDs := []infinity.ThreadID{victim.ID}
	c.commit(infinity.Commit{Thread: r.ID, Items: items, Applied: applied, Outbox: out, Create: create, Close: closeIDs})

	mutateItems(items)
	mutateOutbox(out)
	applied[0] = "m2"
	create[0].Agent = "changed"
	create[0].ID = "changed"
	closeIDs[0] = r.ID

	wantItems, wantOut, wantCreate := isoData(r, kid)
	if !c.info(victim.ID).Closed {
		t.Error("thread named in Close not closed")
	}
	checkItems(t, "Items after mutating the committed slice", c.items(r.ID, 0, -1), wantItems)
	checkOutbox(t, "Outbox after mutating the committed slice", c.outbox(r.ID), wantOut)
	checkInfos(t, "Children after mutating the committed slice", c.children(r.ID), wantCreate)
	if !c.applied(r.ID, "m1") || c.applied(r.ID, "m2") {
		t.Error("Applied follows the mutated slice")
	}
	if c.info(r.ID).Closed {
		t.Error("root closed after mutating the Close slice")
	}

	// The info passed to CreateThread is a value, but check anyway.
	info := rootInfo(c.id("other"))
	noErr(t, s.CreateThread(c.ctx, info), "CreateThread")
	info.Agent = "changed"
	checkInfo(t, "Thread(other)", c.info(info.ID), rootInfo(c.id("other")))
}

func testIsolationOut(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	kid := c.id("kid")
	items, out, create := isoData(r, kid)
	c.commit(infinity.Commit{Thread: r.ID, Items: items, Outbox: out, Create: create})
	wantItems, wantOut, wantCreate := isoData(r, kid)

	got := c.items(r.ID, 0, -1)
	mutateItems(got)
	checkItems(t, "Items after mutating returned items", c.items(r.ID, 0, -1), wantItems)
	got = c.items(r.ID, 1, 3)
	mutateItems(got)
	checkItems(t, "Items after mutating a returned range", c.items(r.ID, 0, -1), wantItems)

	gotOut := c.outbox(r.ID)
	mutateOutbox(gotOut)
	checkOutbox(t, "Outbox after mutating returned entries", c.outbox(r.ID), wantOut)

	kids := c.children(r.ID)
	kids[0].Agent = "changed"
	checkInfos(t, "Children after mutating returned infos", c.children(r.ID), wantCreate)
	lin := c.lineage(kid)
	lin[0].Agent = "changed"
	lin[1].SpawnOrder = 99
	checkInfos(t, "Lineage after mutating returned infos", c.lineage(kid), []infinity.ThreadInfo{r, wantCreate[0]})
	info := c.info(r.ID)
	info.Closed = true
	checkInfo(t, "Thread after mutating a returned info", c.info(r.ID), r)

	// Appending to a returned slice must not show up either.
	got = c.items(r.ID, 0, 2)
	_ = append(got, userItem("extra", 9))
	checkItems(t, "Items after appending to a returned range", c.items(r.ID, 0, -1), wantItems)
}

func testConcurrency(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	const threads, commits = 16, 20
	roots := make([]infinity.ThreadInfo, threads)
	for i := range roots {
		roots[i] = c.root(fmt.Sprintf("t%d", i))
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	// Readers run alongside the writers.
	var readers sync.WaitGroup
	for i := range 4 {
		readers.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				id := roots[(i+k)%threads].ID
				if _, err := s.Items(c.ctx, id, 0, -1); err != nil {
					t.Errorf("Items: %v", err)
					return
				}
				if _, err := s.Len(c.ctx, id); err != nil {
					t.Errorf("Len: %v", err)
					return
				}
				if _, err := s.Outbox(c.ctx, id); err != nil {
					t.Errorf("Outbox: %v", err)
					return
				}
				if _, err := s.Lineage(c.ctx, id); err != nil {
					t.Errorf("Lineage: %v", err)
					return
				}
				if _, err := s.Applied(c.ctx, id, "m0"); err != nil {
					t.Errorf("Applied: %v", err)
					return
				}
			}
		})
	}
	for i, r := range roots {
		wg.Go(func() {
			for k := range commits {
				_, err := s.Commit(c.ctx, infinity.Commit{
					Thread: r.ID, Expected: 2 * k,
					Items:   []infinity.Item{userItem(fmt.Sprintf("m%d", k), k), userItem(fmt.Sprintf("a%d", k), k)},
					Applied: []infinity.MessageID{infinity.MessageID(fmt.Sprintf("m%d", k))},
					Outbox:  []infinity.Outgoing{invokeOut(fmt.Sprintf("o%d", k), "sleep")},
					Create:  []infinity.ThreadInfo{childInfo(infinity.ThreadID(fmt.Sprintf("%s-k%d", r.ID, k)), r, 2*k+2, "call")},
				})
				if err != nil {
					t.Errorf("thread %d commit %d: %v", i, k, err)
					return
				}
				if k%2 == 1 {
					if err := s.MarkSent(c.ctx, r.ID, fmt.Sprintf("o%d", k-1), fmt.Sprintf("o%d", k)); err != nil {
						t.Errorf("thread %d MarkSent: %v", i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		return
	}
	for _, r := range roots {
		var want []infinity.Item
		var kids []infinity.ThreadInfo
		for k := range commits {
			want = append(want, userItem(fmt.Sprintf("m%d", k), k), userItem(fmt.Sprintf("a%d", k), k))
			kids = append(kids, childInfo(infinity.ThreadID(fmt.Sprintf("%s-k%d", r.ID, k)), r, 2*k+2, "call"))
			if !c.applied(r.ID, infinity.MessageID(fmt.Sprintf("m%d", k))) {
				t.Errorf("%s: Applied(m%d) = false", r.ID, k)
			}
		}
		checkItems(t, "Items of "+string(r.ID), c.items(r.ID, 0, -1), want)
		checkInfos(t, "Children of "+string(r.ID), c.children(r.ID), kids)
		if o := c.outbox(r.ID); len(o) != 0 {
			t.Errorf("Outbox of %s = %v, want none", r.ID, outIDs(o))
		}
	}
}

func (c conv) summary(id infinity.ThreadID, before int) *infinity.Summary {
	c.t.Helper()
	sum, err := c.s.Summary(c.ctx, id, before)
	noErr(c.t, err, fmt.Sprintf("Summary %s before %d", id, before))
	return sum
}

func checkSummary(t *testing.T, what string, got *infinity.Summary, want *infinity.Summary) {
	t.Helper()
	switch {
	case got == nil && want == nil:
		return
	case got == nil || want == nil:
		t.Errorf("%s = %+v, want %+v", what, got, want)
		return
	}
	if !got.At.Equal(want.At) {
		t.Errorf("%s: At = %v, want %v", what, got.At, want.At)
	}
	g, w := *got, *want
	g.At, w.At = time.Time{}, time.Time{}
	gj, _ := json.Marshal(g) // plain data always marshals
	wj, _ := json.Marshal(w)
	if string(gj) != string(wj) {
		t.Errorf("%s:\n got %s\nwant %s", what, gj, wj)
	}
}

// testSummaries: compaction summaries are kept per thread by position; a
// bound selects the newest one a view may see; bad ones are refused
// whole; what goes in and comes out is not shared with the caller.
func testSummaries(t *testing.T, s infinity.ConversationStore) {
	c := newConv(t, s)
	r := c.root("root")
	kid := childInfo(c.id("kid"), r, 2, "call-kid")
	c.commit(infinity.Commit{Thread: r.ID, Items: []infinity.Item{userItem("u0", 0), userItem("u1", 1), userItem("u2", 2), userItem("u3", 3)}, Create: []infinity.ThreadInfo{kid}})
	if got := c.summary(r.ID, math.MaxInt); got != nil {
		t.Fatalf("Summary of a thread without summaries = %+v, want nil", got)
	}
	if c.info(r.ID).Compacted {
		t.Error("Compacted set before any summary")
	}

	before := c.snap(r.ID)
	bad := []struct {
		what string
		sum  infinity.Summary
	}{
		{"position is not the expected length", infinity.Summary{Position: 3, Covers: 2, Text: "x"}},
		{"covers more than the thread has", infinity.Summary{Position: 4, Covers: 5, Text: "x"}},
		{"negative covers", infinity.Summary{Position: 4, Covers: -1, Text: "x"}},
	}
	for _, b := range bad {
		sum := b.sum
		c.commitErr(infinity.Commit{Thread: r.ID, Expected: 4, Items: []infinity.Item{userItem("bad", 4)}, Summary: &sum}, infinity.ErrInvalid, b.what)
		c.unchanged(r.ID, before, b.what)
	}
	if got := c.summary(r.ID, math.MaxInt); got != nil {
		t.Fatalf("a refused summary was stored: %+v", got)
	}

	first := &infinity.Summary{
		Position: 4, Covers: 3, Text: "the first three items, summarised", Thread: c.id("k1"), At: at(50),
		Calls: []infinity.SummaryCall{
			{Call: infinity.ToolCall{ID: "c-sub", Name: "watch", Args: json.RawMessage(`{"topic": "news"}`)}, Subscription: true},
			{Call: infinity.ToolCall{ID: "c-slow", Name: "crawl", Args: json.RawMessage(`{}`)}, State: infinity.ResultPending},
		},
	}
	in := *first
	in.Calls = append([]infinity.SummaryCall(nil), first.Calls...)
	in.Calls[0].Call.Args = append(json.RawMessage(nil), first.Calls[0].Call.Args...)
	c.commit(infinity.Commit{Thread: r.ID, Expected: 4, Items: []infinity.Item{userItem("u4", 4)}, Summary: &in})
	// What the caller keeps is not the store's.
	in.Text = "changed"
	in.Calls[0].Call.Args[2] = 'X'
	in.Calls[1].State = infinity.ResultFinal

	if !c.info(r.ID).Compacted {
		t.Error("Thread: Compacted not set after a summary")
	}
	if lin := c.lineage(kid.ID); !lin[0].Compacted || lin[1].Compacted {
		t.Errorf("Lineage(kid): Compacted = %v, %v; want true, false", lin[0].Compacted, lin[1].Compacted)
	}
	checkSummary(t, "Summary(root, max)", c.summary(r.ID, math.MaxInt), first)
	checkSummary(t, "Summary(root, 5)", c.summary(r.ID, 5), first)
	checkSummary(t, "Summary(root, 4): a child spawned at 4 predates it", c.summary(r.ID, 4), nil)
	checkSummary(t, "Summary(root, 0)", c.summary(r.ID, 0), nil)
	if got := c.summary(kid.ID, math.MaxInt); got != nil {
		t.Errorf("Summary(kid) = %+v, want nil: summaries belong to one thread", got)
	}

	// A returned summary is the caller's to change.
	got := c.summary(r.ID, math.MaxInt)
	got.Text = "mine"
	got.Calls[0].Call.Args[2] = 'Y'
	got.Calls = nil
	checkSummary(t, "Summary after the caller changed a copy", c.summary(r.ID, math.MaxInt), first)

	second := &infinity.Summary{Position: 5, Covers: 5, Text: "everything up to u4", At: at(60)}
	c.commit(infinity.Commit{Thread: r.ID, Expected: 5, Summary: second})
	if n := c.len(r.ID); n != 5 {
		t.Errorf("Len after a summary-only commit = %d, want 5", n)
	}
	checkSummary(t, "Summary(root, max) after the second", c.summary(r.ID, math.MaxInt), second)
	checkSummary(t, "Summary(root, 5) after the second", c.summary(r.ID, 5), first)
	checkSummary(t, "Summary(root, 6)", c.summary(r.ID, 6), second)
	// Items are never removed by a summary.
	if items := c.items(r.ID, 0, -1); len(items) != 5 {
		t.Errorf("Items after summaries: %d, want all 5", len(items))
	}

	_, err := s.Summary(c.ctx, c.id("nobody"), math.MaxInt)
	wantErr(t, err, infinity.ErrNotFound, "Summary of an unknown thread")
}
