package infinity_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

func items(prefix string, n int, at time.Time) []infinity.Item {
	out := make([]infinity.Item, n)
	for i := range out {
		out[i] = infinity.Item{ID: fmt.Sprintf("%s-%d", prefix, i), Kind: infinity.KindUser, Text: fmt.Sprintf("%s item %d", prefix, i), At: at}
	}
	return out
}

func ids(items []infinity.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func commit(t *testing.T, s infinity.ConversationStore, c infinity.Commit) {
	t.Helper()
	if _, err := s.Commit(context.Background(), c); err != nil {
		t.Fatalf("commit %+v: %v", c, err)
	}
}

// treeStore builds root (5 items) -> child (spawned at 3, 2 items) ->
// grandchild (spawned at the child's 1, 1 item).
func treeStore(t *testing.T) (s *memory.ConversationStore, root, child, grand []infinity.Item) {
	t.Helper()
	ctx := t.Context()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s = memory.NewConversationStore()
	if err := s.CreateThread(ctx, infinity.ThreadInfo{ID: "root", Root: "root", Created: at}); err != nil {
		t.Fatal(err)
	}
	root, child, grand = items("root", 5, at), items("child", 2, at), items("grand", 1, at)

	// The root's first slice writes three items and spawns the child; the
	// second writes two more.
	commit(t, s, infinity.Commit{
		Thread:   "root",
		Expected: 0,
		Items:    root[:3],
		Create: []infinity.ThreadInfo{{
			ID: "child", Parent: "root", Root: "root", SpawnOrder: 3, SpawnCallID: "call_spawn_child", Created: at,
		}},
	})
	commit(t, s, infinity.Commit{Thread: "root", Expected: 3, Items: root[3:]})

	commit(t, s, infinity.Commit{
		Thread:   "child",
		Expected: 0,
		Items:    child[:1],
		Create: []infinity.ThreadInfo{{
			ID: "grand", Parent: "child", Root: "root", SpawnOrder: 1, SpawnCallID: "call_spawn_grand", Created: at,
		}},
	})
	commit(t, s, infinity.Commit{Thread: "child", Expected: 1, Items: child[1:]})

	commit(t, s, infinity.Commit{Thread: "grand", Expected: 0, Items: grand})
	return s, root, child, grand
}

func TestLoadHistory(t *testing.T) {
	ctx := t.Context()
	s, root, child, grand := treeStore(t)

	h, err := infinity.LoadHistory(ctx, s, "grand")
	if err != nil {
		t.Fatalf("LoadHistory(grand): %v", err)
	}
	want := append(append(append([]infinity.Item(nil), root[:3]...), child[:1]...), grand...)
	if !reflect.DeepEqual(h.Items, want) {
		t.Fatalf("grand history = %v, want %v", ids(h.Items), ids(want))
	}
	if h.Inherited != 4 {
		t.Errorf("grand Inherited = %d, want 4", h.Inherited)
	}
	if got, want := h.Stack(), []infinity.ThreadID{"root", "child", "grand"}; !reflect.DeepEqual(got, want) {
		t.Errorf("grand Stack() = %v, want %v", got, want)
	}
	th := h.Thread()
	if th.ID != "grand" || th.Parent != "child" || th.Root != "root" || th.SpawnOrder != 1 || th.SpawnCallID != "call_spawn_grand" {
		t.Errorf("grand Thread() = %+v", th)
	}
	if len(h.Lineage) != 3 || h.Lineage[0].ID != "root" || !h.Lineage[0].IsRoot() || h.Lineage[1].ID != "child" || h.Lineage[1].SpawnOrder != 3 {
		t.Errorf("grand Lineage = %+v", h.Lineage)
	}
	if own := h.Own(); !reflect.DeepEqual(own, grand) {
		t.Errorf("grand Own() = %v, want %v", ids(own), ids(grand))
	}
	if own := h.Own(); len(own) != 1 || !reflect.DeepEqual(own[0], h.Items[len(h.Items)-1]) {
		t.Errorf("grand Own() = %v, want the last item only", ids(own))
	}

	// The child inherits the root's first three items.
	h, err = infinity.LoadHistory(ctx, s, "child")
	if err != nil {
		t.Fatalf("LoadHistory(child): %v", err)
	}
	want = append(append([]infinity.Item(nil), root[:3]...), child...)
	if !reflect.DeepEqual(h.Items, want) || h.Inherited != 3 {
		t.Errorf("child history = %v (inherited %d), want %v (inherited 3)", ids(h.Items), h.Inherited, ids(want))
	}
	if got, want := h.Stack(), []infinity.ThreadID{"root", "child"}; !reflect.DeepEqual(got, want) {
		t.Errorf("child Stack() = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(h.Own(), child) {
		t.Errorf("child Own() = %v, want %v", ids(h.Own()), ids(child))
	}

	// The root has only its own items.
	h, err = infinity.LoadHistory(ctx, s, "root")
	if err != nil {
		t.Fatalf("LoadHistory(root): %v", err)
	}
	if !reflect.DeepEqual(h.Items, root) || h.Inherited != 0 {
		t.Errorf("root history = %v (inherited %d), want %v (inherited 0)", ids(h.Items), h.Inherited, ids(root))
	}
	if got, want := h.Stack(), []infinity.ThreadID{"root"}; !reflect.DeepEqual(got, want) {
		t.Errorf("root Stack() = %v, want %v", got, want)
	}
	if h.Thread().ID != "root" || !reflect.DeepEqual(h.Own(), root) {
		t.Errorf("root Thread() = %+v, Own() = %v", h.Thread(), ids(h.Own()))
	}

	// Later items in the ancestors do not leak into the descendants.
	commit(t, s, infinity.Commit{Thread: "root", Expected: 5, Items: items("late-root", 2, time.Time{})})
	commit(t, s, infinity.Commit{Thread: "child", Expected: 2, Items: items("late-child", 1, time.Time{})})
	h, err = infinity.LoadHistory(ctx, s, "grand")
	if err != nil {
		t.Fatalf("LoadHistory(grand) after more commits: %v", err)
	}
	want = append(append(append([]infinity.Item(nil), root[:3]...), child[:1]...), grand...)
	if !reflect.DeepEqual(h.Items, want) || h.Inherited != 4 {
		t.Errorf("grand history after ancestors grew = %v (inherited %d), want %v (inherited 4)", ids(h.Items), h.Inherited, ids(want))
	}
}

func TestLoadHistoryEmptyThread(t *testing.T) {
	ctx := t.Context()
	s, root, _, _ := treeStore(t)
	// A child spawned at 0 inherits nothing; one with no items has an
	// empty Own.
	commit(t, s, infinity.Commit{
		Thread:   "root",
		Expected: 5,
		Create: []infinity.ThreadInfo{
			{ID: "zero", Parent: "root", Root: "root", SpawnOrder: 0},
			{ID: "all", Parent: "root", Root: "root", SpawnOrder: 5},
		},
	})
	h, err := infinity.LoadHistory(ctx, s, "zero")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Items) != 0 || h.Inherited != 0 || len(h.Own()) != 0 {
		t.Errorf("zero history = %v (inherited %d), want empty", ids(h.Items), h.Inherited)
	}
	h, err = infinity.LoadHistory(ctx, s, "all")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.Items, root) || h.Inherited != 5 || len(h.Own()) != 0 {
		t.Errorf("all history = %v (inherited %d), want %v (inherited 5)", ids(h.Items), h.Inherited, ids(root))
	}
}

func TestLoadHistoryNotFound(t *testing.T) {
	s, _, _, _ := treeStore(t)
	_, err := infinity.LoadHistory(t.Context(), s, "nope")
	if !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("LoadHistory(nope) = %v, want ErrNotFound", err)
	}
	_, err = infinity.LoadHistory(t.Context(), memory.NewConversationStore(), "root")
	if !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("LoadHistory on an empty store = %v, want ErrNotFound", err)
	}
}

func TestLoadHistoryCanceled(t *testing.T) {
	s, _, _, _ := treeStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := infinity.LoadHistory(ctx, s, "grand"); !errors.Is(err, context.Canceled) {
		t.Fatalf("LoadHistory with a canceled context = %v, want context.Canceled", err)
	}
}

// A summary replaces what it covers for the thread itself and for children
// spawned after it; children spawned before it keep their exact history.
func TestLoadHistoryCompacted(t *testing.T) {
	ctx := t.Context()
	s, root, child, grand := treeStore(t)
	load := func(id infinity.ThreadID) infinity.History {
		t.Helper()
		h, err := infinity.LoadHistory(ctx, s, id)
		if err != nil {
			t.Fatalf("LoadHistory(%s): %v", id, err)
		}
		return h
	}
	late := items("late", 1, time.Time{})
	rootSum := &infinity.Summary{Position: 5, Covers: 4, Text: "root so far"}
	commit(t, s, infinity.Commit{Thread: "root", Expected: 5, Items: late, Summary: rootSum,
		Create: []infinity.ThreadInfo{{ID: "after", Parent: "root", Root: "root", SpawnOrder: 6}}})
	commit(t, s, infinity.Commit{Thread: "after", Expected: 0, Items: items("after", 1, time.Time{})})

	h := load("root")
	want := []string{"summary/root/5", "root-4", "late-0"}
	if got := ids(h.Items); !reflect.DeepEqual(got, want) || h.Inherited != 1 || h.Start != 4 || h.Len() != 6 {
		t.Errorf("root: %v inherited %d start %d len %d; want %v inherited 1 start 4 len 6", got, h.Inherited, h.Start, h.Len(), want)
	}
	if h.Items[0].Kind != infinity.KindSummary || h.Items[0].Text != "root so far" || h.SummaryOf != "root" || h.Summary == nil {
		t.Errorf("root: first item %+v, summary of %q", h.Items[0], h.SummaryOf)
	}
	if !reflect.DeepEqual(h.Own(), append(root[4:5:5], late...)) {
		t.Errorf("root Own() = %v", ids(h.Own()))
	}

	// Spawned at 3, before the summary: exactly what it inherited.
	h = load("child")
	if wantItems := append(append([]infinity.Item(nil), root[:3]...), child...); !reflect.DeepEqual(h.Items, wantItems) || h.Summary != nil || h.Len() != 2 {
		t.Errorf("child (spawned before the summary) = %v, want %v", ids(h.Items), ids(wantItems))
	}
	// Spawned after it: the summary, the root's tail, its own items.
	h = load("after")
	want = []string{"summary/root/5", "root-4", "late-0", "after-0"}
	if got := ids(h.Items); !reflect.DeepEqual(got, want) || h.Inherited != 3 || h.Start != 0 || h.Len() != 1 || h.SummaryOf != "root" {
		t.Errorf("after: %v inherited %d start %d, want %v inherited 3 start 0", got, h.Inherited, h.Start, want)
	}

	// The child compacts its own history; the grandchild, spawned before,
	// still sees everything it inherited.
	commit(t, s, infinity.Commit{Thread: "child", Expected: 2, Summary: &infinity.Summary{Position: 2, Covers: 1, Text: "child so far"}})
	h = load("child")
	if got, want := ids(h.Items), []string{"summary/child/2", "child-1"}; !reflect.DeepEqual(got, want) || h.Start != 1 || h.Len() != 2 {
		t.Errorf("child after its summary = %v start %d, want %v start 1", got, h.Start, want)
	}
	h = load("grand")
	if wantItems := append(append(append([]infinity.Item(nil), root[:3]...), child[:1]...), grand...); !reflect.DeepEqual(h.Items, wantItems) || h.Inherited != 4 {
		t.Errorf("grand = %v, want %v", ids(h.Items), ids(wantItems))
	}
	// A summary covering all of a thread's items leaves it the summary alone.
	commit(t, s, infinity.Commit{Thread: "grand", Expected: 1, Summary: &infinity.Summary{Position: 1, Covers: 1, Text: "all of it"}})
	h = load("grand")
	if got := ids(h.Items); !reflect.DeepEqual(got, []string{"summary/grand/1"}) || len(h.Own()) != 0 || h.Len() != 1 {
		t.Errorf("grand after a full summary = %v own %d len %d", got, len(h.Own()), h.Len())
	}
}

func TestChildName(t *testing.T) {
	kinds := []infinity.ThreadKind{infinity.ThreadNormal, infinity.ThreadEvent, infinity.ThreadNormal, infinity.ThreadCompaction, infinity.ThreadEvent, infinity.ThreadNormal}
	var got []string
	for i := range kinds {
		got = append(got, infinity.ChildName("root/2", kinds, i))
	}
	if want := "root/2/1 root/2/e1 root/2/2 root/2/c1 root/2/e2 root/2/3"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	for _, k := range []infinity.ThreadKind{infinity.ThreadNormal, infinity.ThreadEvent, infinity.ThreadCompaction} {
		if back, err := infinity.ParseThreadKind(k.String()); err != nil || back != k {
			t.Errorf("%v: %v, %v", k, back, err)
		}
	}
	if k, err := infinity.ParseThreadKind(""); err != nil || k != infinity.ThreadNormal {
		t.Errorf("empty: %v, %v", k, err)
	}
	if _, err := infinity.ParseThreadKind("nope"); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("nope: %v", err)
	}
}
