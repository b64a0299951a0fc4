package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// sessionsTree builds, through the stores, a root with two children (one
// closed, with a grandchild) and a second, closed root without items. It
// returns the root ids in creation order and every thread id.
func sessionsTree(t testing.TB, ctx context.Context, conv infinity.ConversationStore, st infinity.StateStore) (roots, all []infinity.ThreadID) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	root := infinity.ThreadInfo{ID: "troot", Root: "troot", Agent: "coder-abc", Created: at(0)}
	must(conv.CreateThread(ctx, root))
	childA := infinity.ThreadInfo{ID: "tchild-a", Parent: "troot", Root: "troot", SpawnOrder: 2,
		SpawnCallID: "call1", Agent: "coder-abc", Created: at(2)}
	childB := infinity.ThreadInfo{ID: "tchild-b", Parent: "troot", Root: "troot", SpawnOrder: 2,
		SpawnCallID: "call2", Kind: infinity.ThreadEvent, Agent: "helper-1", Created: at(3)}
	_, err := conv.Commit(ctx, infinity.Commit{Thread: "troot", Expected: 0,
		Items: []infinity.Item{
			{ID: "m1", Kind: infinity.KindUser, Text: "hello", At: at(1)},
			{ID: "r1", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "call1", Name: "spawn_thread",
				Args: json.RawMessage(`{"task":"dig","n":[1,2]}`)}, Usage: &infinity.Usage{Input: 10, Output: 3}, At: at(2)},
		},
		Applied: []infinity.MessageID{"m1"},
		Create:  []infinity.ThreadInfo{childA, childB},
	})
	must(err)
	// Two compaction summaries, before and after the next item.
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "troot", Expected: 2, Summary: &infinity.Summary{
		Position: 2, Covers: 1, Text: "the first summary", Thread: "tk1", At: at(3),
		Calls: []infinity.SummaryCall{{Call: infinity.ToolCall{ID: "call0", Name: "watch", Args: json.RawMessage(`{"x":1}`)}, Subscription: true}},
	}})
	must(err)
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "troot", Expected: 2, Items: []infinity.Item{
		{ID: "r2", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call1",
			Parts:   []infinity.Part{{Type: "text", Text: "started"}},
			Display: []infinity.DisplaySegment{{Type: "diff", Content: json.RawMessage(`{"a":"b"}`)}}}, At: at(4)},
	}})
	must(err)
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "troot", Expected: 3, Summary: &infinity.Summary{Position: 3, Covers: 2, Text: "the second summary", At: at(5)}})
	must(err)
	grand := infinity.ThreadInfo{ID: "tgrand", Parent: "tchild-a", Root: "troot", SpawnOrder: 1,
		SpawnCallID: "call3", Kind: infinity.ThreadCompaction, Agent: "coder-abc", Created: at(6)}
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "tchild-a", Expected: 0,
		Items:  []infinity.Item{{ID: "a1", Kind: infinity.KindAssistant, Text: "digging", At: at(5)}},
		Create: []infinity.ThreadInfo{grand},
	})
	must(err)
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "tgrand", Expected: 0,
		Items: []infinity.Item{{ID: "g1", Kind: infinity.KindAssistant, Text: "summary", At: at(7)}}})
	must(err)
	// Close the first child and its subtree, as close_thread does.
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "tchild-a", Expected: 1,
		Items: []infinity.Item{{ID: "a2", Kind: infinity.KindAssistant, Text: "done", At: at(8)}},
		Close: []infinity.ThreadID{"tchild-a", "tgrand"}})
	must(err)
	_, err = st.Save(ctx, "troot", infinity.State{
		Metadata:      json.RawMessage(`{"user":"ann","tags":["x"]}`),
		Subscriptions: []string{"call9"},
		Choices: []infinity.PendingChoice{{ID: "c1", Prompt: "which?", Choices: []string{"a", "b"},
			Default: 1, ResponseURL: "http://x/y"}},
	}, 0)
	must(err)
	_, err = st.Save(ctx, "tchild-b", infinity.State{Subscriptions: []string{"s1"}}, 0)
	must(err)

	// A second root: closed, no items, no children.
	other := infinity.ThreadInfo{ID: "tother", Root: "tother", Agent: "helper-1", Created: at(10)}
	must(conv.CreateThread(ctx, other))
	_, err = conv.Commit(ctx, infinity.Commit{Thread: "tother", Expected: 0, Close: []infinity.ThreadID{"tother"}})
	must(err)

	return []infinity.ThreadID{"troot", "tother"},
		[]infinity.ThreadID{"troot", "tchild-a", "tchild-b", "tgrand", "tother"}
}

func exportString(t *testing.T, ctx context.Context, conv infinity.ConversationStore, st infinity.StateStore, roots []infinity.ThreadID, agents map[string]AgentSource) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(ctx, conv, st, roots, agents, t0.Add(time.Hour), &buf); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.String()
}

// compareStores checks that every thread has the same info, own items and
// state in both store pairs.
func compareStores(t *testing.T, ctx context.Context, ids []infinity.ThreadID,
	convA infinity.ConversationStore, stA infinity.StateStore, convB infinity.ConversationStore, stB infinity.StateStore) {
	t.Helper()
	for _, id := range ids {
		infoA, err := convA.Thread(ctx, id)
		if err != nil {
			t.Fatalf("source thread %s: %v", id, err)
		}
		infoB, err := convB.Thread(ctx, id)
		if err != nil {
			t.Fatalf("imported thread %s: %v", id, err)
		}
		if infoA != infoB {
			t.Errorf("thread %s info:\n got %+v\nwant %+v", id, infoB, infoA)
		}
		itemsA, err := convA.Items(ctx, id, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		itemsB, err := convB.Items(ctx, id, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(itemsA, itemsB) {
			t.Errorf("thread %s items:\n got %+v\nwant %+v", id, itemsB, itemsA)
		}
		kidsA, _ := convA.Children(ctx, id)
		kidsB, _ := convB.Children(ctx, id)
		if !reflect.DeepEqual(kidsA, kidsB) {
			t.Errorf("thread %s children:\n got %+v\nwant %+v", id, kidsB, kidsA)
		}
		sA, _, errA := stA.Load(ctx, id)
		sB, _, errB := stB.Load(ctx, id)
		if errors.Is(errA, infinity.ErrNotFound) != errors.Is(errB, infinity.ErrNotFound) {
			t.Errorf("thread %s state presence: source %v, imported %v", id, errA, errB)
		}
		if !reflect.DeepEqual(sA, sB) {
			t.Errorf("thread %s state:\n got %+v\nwant %+v", id, sB, sA)
		}
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	roots, all := sessionsTree(t, ctx, conv, st)
	agents := map[string]AgentSource{
		"coder-abc": {YAML: "name: coder\n", Script: `{"steps":[]}`},
		"helper-1":  {YAML: "name: helper\n"},
	}
	out := exportString(t, ctx, conv, st, roots, agents)

	doc, err := ReadSessions(strings.NewReader(out))
	if err != nil {
		t.Fatalf("ReadSessions: %v\n%s", err, out)
	}
	if doc.Format != SessionsFormat || doc.Version != SessionsVersion || !doc.ExportedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("header: %q %d %s", doc.Format, doc.Version, doc.ExportedAt)
	}
	if !reflect.DeepEqual(doc.Agents, agents) {
		t.Errorf("agents = %+v, want %+v", doc.Agents, agents)
	}
	if len(doc.Sessions) != 2 || doc.Sessions[0].Root != "troot" || doc.Sessions[1].Root != "tother" {
		t.Fatalf("sessions = %+v", doc.Sessions)
	}
	s0 := doc.Sessions[0]
	if s0.Agent != "coder-abc" || !s0.Created.Equal(at(0)) || s0.Closed {
		t.Errorf("session summary = %q %s %t", s0.Agent, s0.Created, s0.Closed)
	}
	var order []infinity.ThreadID
	for _, th := range s0.Threads {
		order = append(order, th.Info.ID)
	}
	if want := []infinity.ThreadID{"troot", "tchild-a", "tchild-b", "tgrand"}; !slices.Equal(order, want) {
		t.Errorf("thread order = %v, want %v (breadth-first)", order, want)
	}
	if s0.Threads[3].State != nil || s0.Threads[0].State == nil {
		t.Errorf("states: root %v, grandchild %v", s0.Threads[0].State, s0.Threads[3].State)
	}
	if !doc.Sessions[1].Closed {
		t.Errorf("second session not closed")
	}

	conv2, st2 := memory.NewConversationStore(), memory.NewStateStore(nil)
	rep, err := Import(ctx, conv2, st2, doc)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !slices.Equal(rep.Imported, roots) || len(rep.Skipped) != 0 {
		t.Errorf("report = %+v, want imported %v", rep, roots)
	}
	compareStores(t, ctx, all, conv, st, conv2, st2)

	// History through the lineage is the same too.
	for _, id := range all {
		hA, err := infinity.LoadHistory(ctx, conv, id)
		if err != nil {
			t.Fatal(err)
		}
		hB, err := infinity.LoadHistory(ctx, conv2, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(hA, hB) {
			t.Errorf("history of %s differs:\n got %+v\nwant %+v", id, hB, hA)
		}
	}

	// Re-exporting the imported stores gives the same document.
	if again := exportString(t, ctx, conv2, st2, roots, agents); again != out {
		t.Errorf("re-export differs:\n%s\nwant\n%s", again, out)
	}

	// Importing again skips every root and changes nothing.
	rep, err = Import(ctx, conv2, st2, doc)
	if err != nil {
		t.Fatalf("second Import: %v", err)
	}
	if len(rep.Imported) != 0 || !slices.Equal(rep.Skipped, roots) {
		t.Errorf("second report = %+v, want skipped %v", rep, roots)
	}
	compareStores(t, ctx, all, conv, st, conv2, st2)

	// The user messages the threads had are applied there: a message sent
	// again with one of their ids is known.
	if ok, err := conv2.Applied(ctx, "troot", "m1"); err != nil || !ok {
		t.Errorf("m1 applied after the import: %v, %v", ok, err)
	}

	// Imported threads are open for new work where the source was.
	if _, err := conv2.Commit(ctx, infinity.Commit{Thread: "troot", Expected: 3,
		Items: []infinity.Item{{ID: "m9", Kind: infinity.KindUser, Text: "more", At: at(20)}}}); err != nil {
		t.Errorf("commit to imported open root: %v", err)
	}
	if _, err := conv2.Commit(ctx, infinity.Commit{Thread: "tgrand", Expected: 1}); !errors.Is(err, infinity.ErrClosed) {
		t.Errorf("commit to imported closed thread = %v, want ErrClosed", err)
	}
}

func TestImportPartialSkip(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	roots, _ := sessionsTree(t, ctx, conv, st)
	doc, err := ReadSessions(strings.NewReader(exportString(t, ctx, conv, st, roots, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// The target already has the second root (with other content).
	conv2, st2 := memory.NewConversationStore(), memory.NewStateStore(nil)
	if err := conv2.CreateThread(ctx, infinity.ThreadInfo{ID: "tother", Root: "tother", Agent: "mine"}); err != nil {
		t.Fatal(err)
	}
	rep, err := Import(ctx, conv2, st2, doc)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !slices.Equal(rep.Imported, []infinity.ThreadID{"troot"}) || !slices.Equal(rep.Skipped, []infinity.ThreadID{"tother"}) {
		t.Errorf("report = %+v", rep)
	}
	if info, _ := conv2.Thread(ctx, "tother"); info.Agent != "mine" || info.Closed {
		t.Errorf("skipped root was touched: %+v", info)
	}
}

func TestImportRefusesExistingChild(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	roots, _ := sessionsTree(t, ctx, conv, st)
	doc, err := ReadSessions(strings.NewReader(exportString(t, ctx, conv, st, roots, nil)))
	if err != nil {
		t.Fatal(err)
	}
	conv2, st2 := memory.NewConversationStore(), memory.NewStateStore(nil)
	// A root elsewhere that took a child's id.
	if err := conv2.CreateThread(ctx, infinity.ThreadInfo{ID: "tgrand", Root: "tgrand"}); err != nil {
		t.Fatal(err)
	}
	_, err = Import(ctx, conv2, st2, doc)
	if !errors.Is(err, infinity.ErrExists) {
		t.Fatalf("Import = %v, want ErrExists", err)
	}
	if _, err := conv2.Thread(ctx, "troot"); !errors.Is(err, infinity.ErrNotFound) {
		t.Errorf("root written before the refusal: %v", err)
	}

	// A state record in the way is a conflict, found before writing.
	conv3, st3 := memory.NewConversationStore(), memory.NewStateStore(nil)
	if _, err := st3.Save(ctx, "tchild-b", infinity.State{}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(ctx, conv3, st3, doc); !errors.Is(err, infinity.ErrConflict) {
		t.Fatalf("Import = %v, want ErrConflict", err)
	}
	if _, err := conv3.Thread(ctx, "troot"); !errors.Is(err, infinity.ErrNotFound) {
		t.Errorf("root written before the refusal: %v", err)
	}
}

func TestImportValidates(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	if _, err := Import(ctx, conv, st, nil); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("Import(nil) = %v, want ErrInvalid", err)
	}
	bad := &Sessions{Format: SessionsFormat, Version: SessionsVersion, Sessions: []Session{{
		Root: "ta", Threads: []SessionThread{
			{Info: infinity.ThreadInfo{ID: "ta", Root: "ta"}},
			{Info: infinity.ThreadInfo{ID: "tb", Parent: "tz", Root: "ta"}},
		}}}}
	if _, err := Import(ctx, conv, st, bad); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("Import(orphan) = %v, want ErrInvalid", err)
	}
	if _, err := conv.Thread(ctx, "ta"); !errors.Is(err, infinity.ErrNotFound) {
		t.Errorf("invalid document was partly written: %v", err)
	}
}

func TestExportErrors(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	sessionsTree(t, ctx, conv, st)
	var buf bytes.Buffer
	now := t0
	if err := Export(ctx, conv, st, []infinity.ThreadID{"nope"}, nil, now, &buf); !errors.Is(err, infinity.ErrNotFound) {
		t.Errorf("unknown root: %v, want ErrNotFound", err)
	}
	if err := Export(ctx, conv, st, []infinity.ThreadID{"tchild-a"}, nil, now, &buf); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("non-root: %v, want ErrInvalid", err)
	}
	if err := Export(ctx, conv, st, []infinity.ThreadID{"troot", "troot"}, nil, now, &buf); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("duplicate root: %v, want ErrInvalid", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed exports wrote %q", buf.String())
	}

	// No roots: a valid, empty document.
	out := exportString(t, ctx, conv, st, nil, nil)
	doc, err := ReadSessions(strings.NewReader(out))
	if err != nil {
		t.Fatalf("ReadSessions(empty export): %v\n%s", err, out)
	}
	if len(doc.Sessions) != 0 || !strings.Contains(out, `"sessions": []`) {
		t.Errorf("empty export = %s", out)
	}
}

func TestExportIsIndented(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	roots, _ := sessionsTree(t, ctx, conv, st)
	out := exportString(t, ctx, conv, st, roots, map[string]AgentSource{"coder-abc": {YAML: "name: coder\n"}})

	if !json.Valid([]byte(out)) {
		t.Fatalf("export is not JSON:\n%s", out)
	}
	var compact, want bytes.Buffer
	if err := json.Compact(&compact, []byte(out)); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSuffix(out, "\n") != want.String() || !strings.HasSuffix(out, "}\n") {
		t.Errorf("export is not two-space indented JSON ending in a newline:\n%s", out)
	}
	for _, line := range []string{
		"{\n  \"format\": \"infinity-sessions\",\n  \"version\": 1,",
		"\n  \"sessions\": [\n    {\n      \"root\": \"troot\",",
		"\n          \"items\": [\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("export lacks %q:\n%s", line, out)
		}
	}
	if strings.Count(out, "\n") < 50 {
		t.Errorf("export has only %d lines", strings.Count(out, "\n"))
	}
}

// validDoc returns a small valid sessions document to break.
func validDoc() *Sessions {
	return &Sessions{
		Format: SessionsFormat, Version: SessionsVersion, ExportedAt: t0,
		Sessions: []Session{{
			Root: "ta", Agent: "ag", Created: t0,
			Threads: []SessionThread{
				{Info: infinity.ThreadInfo{ID: "ta", Root: "ta", Agent: "ag", Created: t0},
					Items: []infinity.Item{{ID: "i1", Kind: infinity.KindUser, Text: "hi", At: t0}}},
				{Info: infinity.ThreadInfo{ID: "tb", Parent: "ta", Root: "ta", SpawnOrder: 1, Agent: "ag", Created: t0}},
				{Info: infinity.ThreadInfo{ID: "tc", Parent: "tb", Root: "ta", Agent: "ag", Created: t0}},
			},
		}},
	}
}

func encodeDoc(t testing.TB, s *Sessions) string {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadSessionsRejects(t *testing.T) {
	if _, err := ReadSessions(strings.NewReader(encodeDoc(t, validDoc()))); err != nil {
		t.Fatalf("valid document rejected: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(s *Sessions)
		raw   string // used instead of the edited document when set
		where string // must appear in the error
	}{
		{name: "wrong format", edit: func(s *Sessions) { s.Format = "infinity-threads" }, where: "format"},
		{name: "no format", edit: func(s *Sessions) { s.Format = "" }, where: "format"},
		{name: "wrong version", edit: func(s *Sessions) { s.Version = 2 }, where: "version"},
		{name: "summary past the items", edit: func(s *Sessions) {
			s.Sessions[0].Threads[0].Summaries = []infinity.Summary{{Position: 99, Text: "x"}}
		}, where: "summaries[0]"},
		{name: "summaries out of order", edit: func(s *Sessions) {
			s.Sessions[0].Threads[0].Summaries = []infinity.Summary{{Position: 1, Text: "x"}, {Position: 1, Text: "y"}}
		}, where: "summaries[1]"},
		{name: "summary covering more than its position", edit: func(s *Sessions) {
			s.Sessions[0].Threads[0].Summaries = []infinity.Summary{{Position: 0, Covers: 1, Text: "x"}}
		}, where: "summaries[0]"},
		{name: "child before parent", edit: func(s *Sessions) {
			th := s.Sessions[0].Threads
			th[1], th[2] = th[2], th[1]
		}, where: `threads[1] ("tc")`},
		{name: "root not first", edit: func(s *Sessions) {
			th := s.Sessions[0].Threads
			th[0], th[1] = th[1], th[0]
		}, where: "threads[0]"},
		{name: "root differs from session", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.Root = "tb" },
			where: `threads[2] ("tc")`},
		{name: "thread of another session", edit: func(s *Sessions) {
			s.Sessions = append(s.Sessions, Session{Root: "tx", Threads: []SessionThread{
				{Info: infinity.ThreadInfo{ID: "tx", Root: "tx"}},
				{Info: infinity.ThreadInfo{ID: "ty", Parent: "tb", Root: "ta"}},
			}})
		}, where: `sessions[1] (root "tx"): threads[1] ("ty")`},
		{name: "invalid root id", edit: func(s *Sessions) {
			s.Sessions[0].Root = "t a"
			for i := range s.Sessions[0].Threads {
				s.Sessions[0].Threads[i].Info.Root = "t a"
			}
			s.Sessions[0].Threads[0].Info.ID = "t a"
			s.Sessions[0].Threads[1].Info.Parent = "t a"
		}, where: "malformed root id"},
		{name: "invalid thread id", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.ID = "t/c" }, where: `threads[2] ("t/c")`},
		{name: "empty thread id", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.ID = "" }, where: "malformed thread id"},
		{name: "too long id", edit: func(s *Sessions) {
			s.Sessions[0].Threads[2].Info.ID = infinity.ThreadID(strings.Repeat("a", 129))
		}, where: "malformed thread id"},
		{name: "unknown parent", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.Parent = "tq" }, where: "parent"},
		{name: "second root", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.Parent = "" }, where: "second root"},
		{name: "duplicate thread", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.ID = "tb" }, where: "twice"},
		{name: "duplicate session", edit: func(s *Sessions) { s.Sessions = append(s.Sessions, s.Sessions[0]) }, where: "sessions[1]"},
		{name: "no threads", edit: func(s *Sessions) { s.Sessions[0].Threads = nil }, where: "no threads"},
		{name: "spawn order past parent", edit: func(s *Sessions) { s.Sessions[0].Threads[1].Info.SpawnOrder = 2 }, where: "spawn order"},
		{name: "negative spawn order", edit: func(s *Sessions) { s.Sessions[0].Threads[2].Info.SpawnOrder = -1 }, where: "spawn order"},
		{name: "summary disagrees", edit: func(s *Sessions) { s.Sessions[0].Closed = true }, where: "closed"},
		{name: "unknown kind", edit: func(s *Sessions) { s.Sessions[0].Threads[1].Info.Kind = 9 }, where: "kind"},
		{name: "malformed JSON", raw: `{"format": "infinity-sessions", "version": 1, "sessions": [`, where: "malformed JSON"},
		{name: "wrong JSON type", raw: `{"format": "infinity-sessions", "version": "1", "sessions": []}`, where: "malformed JSON"},
		{name: "trailing data", raw: `{"format": "infinity-sessions", "version": 1, "sessions": []} {}`, where: "malformed JSON"},
		{name: "unknown item kind", raw: `{"format": "infinity-sessions", "version": 1, "sessions": [{"root": "ta",
			"threads": [{"info": {"id": "ta", "root": "ta"}, "items": [{"id": "x", "kind": "bogus"}]}]}]}`, where: "malformed JSON"},
		{name: "empty input", raw: ``, where: "malformed JSON"},
		{name: "null", raw: `null`, where: "format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.raw
			if tc.edit != nil {
				s := validDoc()
				tc.edit(s)
				in = encodeDoc(t, s)
			}
			s, err := ReadSessions(strings.NewReader(in))
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("ReadSessions = %+v, %v; want ErrInvalid", s, err)
			}
			if s != nil {
				t.Errorf("document returned with an error")
			}
			if !strings.Contains(err.Error(), tc.where) {
				t.Errorf("error %q does not say %q", err, tc.where)
			}
		})
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadSessionsReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := ReadSessions(failingReader{boom})
	if !errors.Is(err, boom) || errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("ReadSessions = %v, want the read error and not ErrInvalid", err)
	}
}

func TestReadSessionsCompactsEmbeddedJSON(t *testing.T) {
	s := validDoc()
	s.Sessions[0].Threads[0].Items = append(s.Sessions[0].Threads[0].Items, infinity.Item{
		ID: "c", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "k", Name: "f", Args: json.RawMessage(`{ "a" : [1, 2] }`)}})
	s.Sessions[0].Threads[0].State = &infinity.State{Metadata: json.RawMessage(`{"m": null}`)}
	s.Sessions[0].Threads[1].Items = []infinity.Item{{ID: "n", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "k2", Name: "f"}}}
	got, err := ReadSessions(strings.NewReader(encodeDoc(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if a := string(got.Sessions[0].Threads[0].Items[1].Call.Args); a != `{"a":[1,2]}` {
		t.Errorf("args = %s", a)
	}
	if m := string(got.Sessions[0].Threads[0].State.Metadata); m != `{"m":null}` {
		t.Errorf("metadata = %s", m)
	}
	if a := got.Sessions[0].Threads[1].Items[0].Call.Args; a != nil {
		t.Errorf("null args = %q, want nil", a)
	}
}

func FuzzReadSessions(f *testing.F) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	roots, _ := sessionsTree(f, ctx, conv, st)
	var buf bytes.Buffer
	if err := Export(ctx, conv, st, roots, map[string]AgentSource{"a": {YAML: "x"}}, t0, &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(encodeDoc(f, validDoc())))
	f.Add([]byte(`{"format":"infinity-sessions","version":1,"sessions":[]}`))
	f.Add([]byte(`{"format":"infinity-sessions","version":1,"sessions":[{"root":"a","threads":[{"info":{"id":"a","root":"a"}},{"info":{"id":"b","parent":"a","root":"a","spawn_order":0}}]}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSessions(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// Whatever ReadSessions accepts imports into empty stores, and the
		// import exports to a document ReadSessions accepts again.
		conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
		rep, err := Import(ctx, conv, st, s)
		if err != nil {
			t.Fatalf("Import of an accepted document: %v", err)
		}
		if len(rep.Imported) != len(s.Sessions) {
			t.Fatalf("imported %d of %d sessions", len(rep.Imported), len(s.Sessions))
		}
		var out bytes.Buffer
		if err := Export(ctx, conv, st, rep.Imported, s.Agents, t0, &out); err != nil {
			t.Fatalf("Export after import: %v", err)
		}
		if _, err := ReadSessions(&out); err != nil {
			t.Fatalf("re-read of the re-export: %v\n%s", err, out.String())
		}
	})
}

// failAfter fails every commit after the first n (an import killed
// part-way, as far as the stores can tell).
type failAfter struct {
	infinity.ConversationStore
	n int
}

func (f *failAfter) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	if f.n == 0 {
		return 0, errors.New("injected: the import died here")
	}
	f.n--
	return f.ConversationStore.Commit(ctx, c)
}

// An import cut short at any commit is completed by the next import of the
// same document, which leaves the stores as one uninterrupted import does.
func TestImportCutShortIsCompletedByARerun(t *testing.T) {
	ctx := context.Background()
	conv, st := memory.NewConversationStore(), memory.NewStateStore(nil)
	roots, all := sessionsTree(t, ctx, conv, st)
	doc, err := ReadSessions(strings.NewReader(exportString(t, ctx, conv, st, roots, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; ; cut++ {
		conv2, st2 := memory.NewConversationStore(), memory.NewStateStore(nil)
		_, err := Import(ctx, &failAfter{ConversationStore: conv2, n: cut}, st2, doc)
		if err == nil {
			if cut < 2 {
				t.Fatalf("an import with %d commits succeeded: the cut never bit", cut)
			}
			break // every commit fit: all cuts were tried
		}
		rep, err := Import(ctx, conv2, st2, doc)
		if err != nil {
			t.Fatalf("cut after %d commits: rerun: %v", cut, err)
		}
		if len(rep.Imported)+len(rep.Skipped) != len(roots) {
			t.Errorf("cut after %d commits: report %+v", cut, rep)
		}
		compareStores(t, ctx, all, conv, st, conv2, st2)
		if t.Failed() {
			t.Fatalf("cut after %d commits: the rerun left other stores", cut)
		}
	}
}
