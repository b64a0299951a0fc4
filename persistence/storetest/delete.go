package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// RunTreeDeletion runs the suite of infinity.TreeDeleter: every store the
// runtimes use (memory, disk, DSQL) passes it.
func RunTreeDeletion(t *testing.T, newStore func(t *testing.T) infinity.ConversationStore) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, c conv, d infinity.TreeDeleter)
	}{
		{"DeletesTheWholeTree", testDeleteTree},
		{"RefusesAnOpenTree", testDeleteOpen},
		{"RefusesAChild", testDeleteChild},
		{"Unknown", testDeleteUnknown},
		{"LeavesOtherTrees", testDeleteOthers},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			d, ok := s.(infinity.TreeDeleter)
			if !ok {
				t.Fatalf("%T does not implement infinity.TreeDeleter", s)
			}
			tc.fn(t, newConv(t, s), d)
		})
	}
}

// closedTree makes a root with a child and a grandchild, history, an
// outbox and a summary, and closes it all.
func closedTree(c conv, name string) (root, child, grand infinity.ThreadInfo) {
	c.t.Helper()
	root = c.root(name)
	child = childInfo(c.id(name+"-child"), root, 1, "spawn-1")
	grand = childInfo(c.id(name+"-grand"), child, 0, "spawn-2")
	wake := infinity.InputMessage{ID: "wake-" + infinity.MessageID(name), GroupID: root.ID, Content: infinity.TextContent("later")}
	c.commit(infinity.Commit{Thread: root.ID, Items: []infinity.Item{userItem(name+"-u", 1)}, Applied: []infinity.MessageID{"in-" + infinity.MessageID(name)},
		Create: []infinity.ThreadInfo{child, grand}, Outbox: []infinity.Outgoing{{ID: "o-" + name, Message: &wake, At: at(5)}}})
	c.commit(infinity.Commit{Thread: child.ID, Items: []infinity.Item{userItem(name+"-c", 2)}})
	c.commit(infinity.Commit{Thread: root.ID, Expected: 1, Items: []infinity.Item{userItem(name+"-v", 3)},
		Summary: &infinity.Summary{Position: 1, Covers: 1, Text: "so far", At: at(3)}})
	c.commit(infinity.Commit{Thread: root.ID, Expected: 2, Close: []infinity.ThreadID{root.ID, child.ID, grand.ID}})
	return root, child, grand
}

func testDeleteTree(t *testing.T, c conv, d infinity.TreeDeleter) {
	root, child, grand := closedTree(c, "tree")
	got, err := d.DeleteTree(c.ctx, root.ID)
	noErr(t, err, "DeleteTree")
	if len(got) != 3 || got[0] != root.ID || !slices.Contains(got, child.ID) || !slices.Contains(got, grand.ID) {
		t.Fatalf("DeleteTree returned %v, want the root first, then %s and %s", got, child.ID, grand.ID)
	}
	for _, id := range []infinity.ThreadID{root.ID, child.ID, grand.ID} {
		_, err := c.s.Thread(c.ctx, id)
		wantErr(t, err, infinity.ErrNotFound, "Thread after DeleteTree")
		_, err = c.s.Items(c.ctx, id, 0, -1)
		wantErr(t, err, infinity.ErrNotFound, "Items after DeleteTree")
		_, err = c.s.Outbox(c.ctx, id)
		wantErr(t, err, infinity.ErrNotFound, "Outbox after DeleteTree")
	}
	_, err = d.DeleteTree(c.ctx, root.ID)
	wantErr(t, err, infinity.ErrNotFound, "DeleteTree again")

	// The id is free again, with nothing of the old tree behind it.
	noErr(t, c.s.CreateThread(c.ctx, root), "CreateThread of a deleted id")
	n, err := c.s.Len(c.ctx, root.ID)
	noErr(t, err, "Len")
	if n != 0 {
		t.Fatalf("a new thread under a deleted id has %d items", n)
	}
	applied, err := c.s.Applied(c.ctx, root.ID, "in-tree")
	noErr(t, err, "Applied")
	sum, err := c.s.Summary(c.ctx, root.ID, 100)
	noErr(t, err, "Summary")
	kids, err := c.s.Children(c.ctx, root.ID)
	noErr(t, err, "Children")
	out, err := c.s.Outbox(c.ctx, root.ID)
	noErr(t, err, "Outbox")
	if applied || sum != nil || len(kids) != 0 || len(out) != 0 {
		t.Fatalf("the deleted tree left applied %v, summary %v, children %v, outbox %v", applied, sum, kids, out)
	}
	// Its commits start from nothing.
	c.commit(infinity.Commit{Thread: root.ID, Items: []infinity.Item{userItem("again", 9)}, Applied: []infinity.MessageID{"in-tree"}})
}

func testDeleteOpen(t *testing.T, c conv, d infinity.TreeDeleter) {
	root := c.root("open")
	c.commit(infinity.Commit{Thread: root.ID, Items: []infinity.Item{userItem("open-u", 1)}})
	_, err := d.DeleteTree(c.ctx, root.ID)
	wantErr(t, err, infinity.ErrConflict, "DeleteTree of an open root")
	n, err := c.s.Len(c.ctx, root.ID)
	noErr(t, err, "Len after a refused delete")
	if n != 1 {
		t.Fatalf("a refused delete changed the thread: %d items", n)
	}
}

func testDeleteChild(t *testing.T, c conv, d infinity.TreeDeleter) {
	_, child, _ := closedTree(c, "kid")
	_, err := d.DeleteTree(c.ctx, child.ID)
	wantErr(t, err, infinity.ErrInvalid, "DeleteTree of a child")
	_, err = c.s.Thread(c.ctx, child.ID)
	noErr(t, err, "Thread after a refused delete")
}

func testDeleteUnknown(t *testing.T, c conv, d infinity.TreeDeleter) {
	_, err := d.DeleteTree(c.ctx, c.id("nobody"))
	wantErr(t, err, infinity.ErrNotFound, "DeleteTree of an unknown id")
}

func testDeleteOthers(t *testing.T, c conv, d infinity.TreeDeleter) {
	gone, _, _ := closedTree(c, "gone")
	kept, keptChild, _ := closedTree(c, "kept")
	open := c.root("open")
	_, err := d.DeleteTree(c.ctx, gone.ID)
	noErr(t, err, "DeleteTree")
	for _, id := range []infinity.ThreadID{kept.ID, keptChild.ID, open.ID} {
		_, err := c.s.Thread(c.ctx, id)
		noErr(t, err, "Thread of another tree")
	}
	items, err := c.s.Items(c.ctx, kept.ID, 0, -1)
	noErr(t, err, "Items of another tree")
	if len(items) != 2 {
		t.Fatalf("another tree has %d items, want 2", len(items))
	}
	kids, err := c.s.Children(c.ctx, kept.ID)
	noErr(t, err, "Children of another tree")
	if len(kids) != 1 {
		t.Fatalf("another tree has %d children, want 1", len(kids))
	}
}

// RunStateDeletion runs the suite of infinity.StateDeleter.
func RunStateDeletion(t *testing.T, newStore func(t *testing.T, clock infinity.Clock) infinity.StateStore) {
	t.Helper()
	t.Run("ForgetsStateAndMarks", func(t *testing.T) {
		s := newStore(t, infinity.SystemClock{})
		d, ok := s.(infinity.StateDeleter)
		if !ok {
			t.Fatalf("%T does not implement infinity.StateDeleter", s)
		}
		ctx := ctxOf(t)
		id := idsFor()
		a, b, other := id("a"), id("b"), id("other")
		for _, th := range []infinity.ThreadID{a, b, other} {
			_, err := s.Save(ctx, th, sampleState(string(th)), 0)
			noErr(t, err, "Save")
			noErr(t, s.MarkProcessed(ctx, th, []infinity.MessageID{"m1", "m2"}, time.Hour), "MarkProcessed")
		}
		noErr(t, d.DeleteThreads(ctx, []infinity.ThreadID{a, b, id("unknown")}), "DeleteThreads")
		for _, th := range []infinity.ThreadID{a, b} {
			_, _, err := s.Load(ctx, th)
			wantErr(t, err, infinity.ErrNotFound, "Load after DeleteThreads")
			p, err := s.Processed(ctx, th, "m1")
			noErr(t, err, "Processed")
			if p {
				t.Fatalf("%s: a processed mark survived DeleteThreads", th)
			}
			// The thread starts again from version 0.
			v, err := s.Save(ctx, th, sampleState("new"), 0)
			noErr(t, err, "Save after DeleteThreads")
			if v != 1 {
				t.Fatalf("Save after DeleteThreads returned version %d, want 1", v)
			}
		}
		_, v, err := s.Load(ctx, other)
		noErr(t, err, "Load of another thread")
		if v != 1 {
			t.Fatalf("another thread's version is %d", v)
		}
		p, err := s.Processed(ctx, other, "m2")
		noErr(t, err, "Processed of another thread")
		if !p {
			t.Fatal("another thread's mark went")
		}
		noErr(t, d.DeleteThreads(ctx, nil), "DeleteThreads of nothing")
	})
}
