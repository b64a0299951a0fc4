package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/infinitytest"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/models/scripted"
)

func depth(n int) *int { return &n }

// counter is a scripted model whose root spawns one child that counts and
// closes, then answers with what the child reported.
func counter(t *testing.T) *scripted.Provider {
	t.Helper()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Depth: depth(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "spawn_thread", Args: json.RawMessage(`{"instructions":"count to two","child_of":"$STACK"}`)}}}},
		{When: scripted.Match{Depth: depth(1), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "close_thread", Args: json.RawMessage(`{"thread_id":"$THREAD","report_to_parent":"one, two"}`)}}}},
		{When: scripted.Match{Depth: depth(0), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "sleep_until_event_or_input"}}}},
		{When: scripted.Match{Depth: depth(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "The child counted: one, two."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return model
}

var counterAgent = actors.Agent{Name: "counter", System: "You delegate counting."}

// sameItems compares two trees' histories item by item, times left out.
func sameItems(t *testing.T, want, got infinitytest.Result) {
	t.Helper()
	wt, gt := want.Threads(), got.Threads()
	if len(wt) != len(gt) {
		t.Fatalf("%d threads, want %d:\n%s", len(gt), len(wt), got.Transcript())
	}
	for i := range wt {
		w, g := wt[i], gt[i]
		if w.Info.ID != g.Info.ID || w.Info.Closed != g.Info.Closed || len(w.Items) != len(g.Items) {
			t.Fatalf("thread %d: %+v with %d items, want %+v with %d", i, g.Info, len(g.Items), w.Info, len(w.Items))
		}
		for j := range w.Items {
			wi, gi := w.Items[j], g.Items[j]
			wi.At, gi.At = time.Time{}, time.Time{}
			if !reflect.DeepEqual(wi, gi) {
				t.Fatalf("thread %s item %d:\n got %+v\nwant %+v", w.Info.ID, j, gi, wi)
			}
		}
	}
}

// A tree with a child, recorded on the scripted model, replays offline
// with the same histories: under the recorded root id item for item, and
// under a new root id (every thread id differs) transcript for transcript.
func TestTreeReplaysWithTheSameHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	recorded := infinitytest.Record(t, path, counter(t), counterAgent, "Have a child count to two.")
	if recorded.Answer != "The child counted: one, two." || len(recorded.Tree.Children) != 1 || !recorded.Tree.Children[0].Info.Closed {
		t.Fatalf("recorded run: %q\n%s", recorded.Answer, recorded.Transcript())
	}

	replayed := infinitytest.Replay(t, path, counterAgent, "Have a child count to two.")
	if replayed.Root != recorded.Root || replayed.Answer != recorded.Answer {
		t.Fatalf("replayed %s %q, recorded %s %q", replayed.Root, replayed.Answer, recorded.Root, recorded.Answer)
	}
	sameItems(t, recorded, replayed)
	if len(replayed.Unused) != 0 {
		t.Errorf("%d recorded calls unused", len(replayed.Unused))
	}

	fresh := infinitytest.Replay(t, path, counterAgent, "Have a child count to two.", infinitytest.WithID(""))
	if fresh.Root == recorded.Root || fresh.Tree.Children[0].Info.ID == recorded.Tree.Children[0].Info.ID {
		t.Fatalf("the replay under a new id kept the recorded ids")
	}
	if got, want := fresh.Transcript(), recorded.Transcript(); got != want {
		t.Fatalf("under a new root id, the transcript differs:\n%s\nwant:\n%s", got, want)
	}
	if len(fresh.Unused) != 0 {
		t.Errorf("%d recorded calls unused", len(fresh.Unused))
	}
}

// A changed prompt asks for a request the recording does not hold: the
// replay fails with ErrNotRecorded and a diff that names the changed line.
func TestChangedPromptFailsWithADiff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	infinitytest.Record(t, path, counter(t), counterAgent, "Have a child count to two.")

	_, err := infinitytest.TryReplay(t, path, counterAgent, "Have a child count to three.")
	var nr *replay.NotRecordedError
	if !errors.Is(err, replay.ErrNotRecorded) || !errors.As(err, &nr) {
		t.Fatalf("replay = %v, want ErrNotRecorded", err)
	}
	for _, want := range []string{
		"- item 0 user | Have a child count to two.",
		"+ item 0 user | Have a child count to three.",
	} {
		if !hasLine(err.Error(), want) {
			t.Errorf("the error does not show %q:\n%v", want, err)
		}
	}
	if nr.Nearest == nil || nr.Nearest.Seq != 1 || strings.Count(nr.Diff, "\n- ") != 1 || strings.Count(nr.Diff, "\n+ ") != 1 {
		t.Errorf("nearest %+v, diff:\n%s", nr.Nearest, nr.Diff)
	}

	// A changed system prompt is named as well.
	changed := counterAgent
	changed.System = "You delegate counting, politely."
	_, err = infinitytest.TryReplay(t, path, changed, "Have a child count to two.")
	if !errors.Is(err, replay.ErrNotRecorded) || !hasLine(err.Error(), "+ system | You delegate counting, politely.") {
		t.Fatalf("replay with another system prompt = %v", err)
	}
}

// hasLine reports whether text has line as one of its lines.
func hasLine(text, line string) bool {
	for l := range strings.Lines(text) {
		if strings.TrimSuffix(l, "\n") == line {
			return true
		}
	}
	return false
}

// A transient failure the recorded run retried is served again in
// recorded order: the failure, then the answer.
func TestRetriesAreServedInRecordedOrder(t *testing.T) {
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{Times: 1, Reply: scripted.Reply{Error: "overloaded", Retryable: true}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Hello."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fast := infinitytest.WithConfig(func(c *actors.Config) { c.ModelBackoff = time.Millisecond })
	path := filepath.Join(t.TempDir(), "run.jsonl")
	infinitytest.Record(t, path, model, actors.Agent{Name: "greeter"}, "hi", fast)

	rec, err := replay.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Calls) != 2 || rec.Calls[0].Error == nil || !rec.Calls[0].Error.Retryable || rec.Calls[1].Response == nil || rec.Calls[0].Key != rec.Calls[1].Key {
		t.Fatalf("recorded calls: %+v", rec.Calls)
	}
	res := infinitytest.Replay(t, path, actors.Agent{Name: "greeter"}, "hi", fast)
	if res.Answer != "Hello." || len(res.Unused) != 0 {
		t.Fatalf("replay: %q, %d unused", res.Answer, len(res.Unused))
	}

	// Straight from the player: the failure, the answer, then nothing.
	pl, err := replay.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p := pl.Provider(replay.DefaultName)
	c := rec.Calls[0]
	req := infinity.CompletionRequest{Model: c.Request.Model, MaxTokens: c.Request.MaxTokens, System: c.Request.System,
		Thread: c.Thread, Stack: c.Stack}
	for _, it := range c.Request.Items {
		req.Items = append(req.Items, infinity.Item{Kind: it.Kind, Text: it.Text})
	}
	for _, tl := range c.Request.Tools {
		req.Tools = append(req.Tools, infinity.ToolSpec{Name: tl.Name, Description: tl.Description, Schema: tl.Schema})
	}
	if r := collect(p, req); !errors.Is(r.err, infinity.ErrRetryable) || !strings.Contains(r.err.Error(), "overloaded") {
		t.Fatalf("first: %+v", r)
	}
	if r := collect(p, req); r.err != nil || r.text != "Hello." || r.done == nil || r.done.Stop != infinity.StopEnd || r.done.Usage != c2usage(rec) {
		t.Fatalf("second: %+v", r)
	}
	r := collect(p, req)
	if !errors.Is(r.err, replay.ErrNotRecorded) || !strings.Contains(r.err.Error(), "holds this request 2 times and each was served") {
		t.Fatalf("third: %+v", r)
	}
	select {
	case <-pl.Missed():
	default:
		t.Fatal("Missed is not closed after a miss")
	}
	if !errors.Is(pl.Err(), replay.ErrNotRecorded) {
		t.Fatalf("Err = %v", pl.Err())
	}
}

func c2usage(rec *replay.Recording) infinity.Usage { return rec.Calls[1].Response.Usage }

type streamed struct {
	text  string
	calls []infinity.ToolCall
	done  *infinity.StreamEvent
	err   error
}

func collect(p infinity.ModelProvider, req infinity.CompletionRequest) streamed {
	var r streamed
	for ev, err := range p.Stream(context.Background(), req) {
		if err != nil {
			r.err = err
			break
		}
		switch ev.Kind {
		case infinity.StreamText:
			r.text += ev.Text
		case infinity.StreamToolCall:
			r.calls = append(r.calls, *ev.Call)
		case infinity.StreamDone:
			r.done = &ev
		}
	}
	return r
}

// The file: a header first, then JSON lines; a line cut short at the end
// is left out, and a bad line elsewhere is an error naming it.
func TestFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	infinitytest.Record(t, path, counter(t), counterAgent, "Have a child count to two.")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var h replay.Header
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h.Format != replay.Format || h.Version != replay.Version || h.Created.IsZero() || h.Meta["input"] == "" {
		t.Fatalf("header %s: %+v, %v", lines[0], h, err)
	}
	types := map[string]int{}
	for _, l := range lines[1:] {
		var v struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		types[v.Type]++
	}
	if types["models"] != 1 || types["call"] != 4 || len(types) != 2 {
		t.Fatalf("line types %v", types)
	}
	rec, err := replay.Load(path)
	if err != nil || len(rec.Calls) != 4 || rec.Torn {
		t.Fatalf("Load: %v, %+v", err, rec)
	}
	roots := rec.Roots()
	if len(roots) != 1 || roots[0].Input != "Have a child count to two." || roots[0].Provider != replay.DefaultName {
		t.Fatalf("roots %+v", roots)
	}

	// Re-encoded, it reads the same.
	var buf bytes.Buffer
	if err := rec.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := replay.Decode(&buf)
	if err != nil || !reflect.DeepEqual(again, rec) {
		t.Fatalf("re-encoded: %v\n%+v\n%+v", err, again, rec)
	}

	// A crash in the middle of a line: that call is lost, no more.
	torn := string(raw) + lines[len(lines)-1][:40]
	rec, err = replay.Decode(strings.NewReader(torn))
	if err != nil || !rec.Torn || len(rec.Calls) != 4 {
		t.Fatalf("torn: %v, %+v", err, rec)
	}

	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "line 1: no header"},
		{"other format", `{"format":"other","version":1}` + "\n", `format "other"`},
		{"newer", `{"format":"infinity-replay","version":2}` + "\n", "version 2 is newer"},
		{"bad line", lines[0] + "\n{\"type\":\"call\",\"seq\":1}\n" + lines[1] + "\n", "line 2: call 1: want exactly one of response and error"},
		{"unknown type", lines[0] + "\n{\"type\":\"other\"}\n", `line 2: type "other"`},
		{"not JSON", lines[0] + "\nnot json\n" + lines[1] + "\n", "line 2:"},
	} {
		_, err := replay.Decode(strings.NewReader(tc.text))
		if !errors.Is(err, replay.ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrFormat and %q", tc.name, err, tc.want)
		}
	}
}

// countingFile counts the lines written and synced.
type countingFile struct {
	bytes.Buffer
	syncs int
}

func (f *countingFile) Sync() error { f.syncs++; return nil }

// Every line is synced as it is written: a crash loses at most the calls
// in flight.
func TestEveryLineIsSynced(t *testing.T) {
	var f countingFile
	rec, err := replay.NewRecorder(&f, replay.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	model := rec.Wrap("scripted", rec.Wrap("scripted", counter(t))) // wrapped twice, written once
	infinitytest.Run(t, model, counterAgent, "Have a child count to two.")
	sc := bufio.NewScanner(bytes.NewReader(f.Bytes()))
	n := 0
	for sc.Scan() {
		n++
	}
	if n != 6 || f.syncs != n || rec.Calls() != 4 {
		t.Fatalf("%d lines, %d syncs, %d calls", n, f.syncs, rec.Calls())
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}

// A Tee records only the trees a recorder is attached to, each to its
// own recording, model lists included.
func TestTeeRecordsOneTree(t *testing.T) {
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Hello."}}}})
	if err != nil {
		t.Fatal(err)
	}
	tee := replay.NewTee()
	agent := actors.Agent{Name: "greeter", Provider: model, ProviderName: "scripted"}
	tee.WrapAgent(&agent)
	path := filepath.Join(t.TempDir(), "a.jsonl")
	rec, err := replay.Create(path, replay.RecordOptions{Models: []string{"scripted/scripted"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tee.Attach(t.Context(), "root-a", rec); err != nil {
		t.Fatal(err)
	}
	a := infinitytest.Run(t, nil, agent, "hi from a", infinitytest.WithID("root-a"))
	b := infinitytest.Run(t, nil, agent, "hi from b", infinitytest.WithID("root-b"))
	tee.Detach("root-a")
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	everything, err := replay.NewRecorder(&all, replay.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tee.AttachAll(t.Context(), everything); err != nil {
		t.Fatal(err)
	}
	infinitytest.Run(t, nil, agent, "hi from c", infinitytest.WithID("root-c"))
	tee.AttachAll(t.Context(), nil)
	infinitytest.Run(t, nil, agent, "hi from d", infinitytest.WithID("root-d"))
	if got, err := replay.Decode(&all); err != nil || len(got.Calls) != 1 || got.Calls[0].Thread != "root-c" || len(got.Models["scripted"]) != 1 {
		t.Fatalf("AttachAll's recording: %v, %+v", err, got)
	}
	if a.Answer != "Hello." || b.Answer != "Hello." {
		t.Fatalf("answers %q, %q", a.Answer, b.Answer)
	}
	got, err := replay.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Calls) != 1 || got.Calls[0].Thread != "root-a" || got.Calls[0].Provider != "scripted" || len(got.Models["scripted"]) != 1 || got.Header.Models[0] != "scripted/scripted" {
		t.Fatalf("recording: %+v", got)
	}
	res := infinitytest.Replay(t, path, actors.Agent{Name: "greeter", ProviderName: "scripted"}, "hi from a")
	if res.Root != "root-a" || res.Answer != "Hello." {
		t.Fatalf("replay: %+v", res)
	}
}

// failingWriter takes ok writes, then fails.
type failingWriter struct{ ok int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.ok == 0 {
		return 0, errors.New("disk full")
	}
	w.ok--
	return len(p), nil
}

// A call whose line cannot be written fails, and so does every call
// after it: the recording has no silent gap.
func TestAFailedWriteFailsTheCalls(t *testing.T) {
	rec, err := replay.NewRecorder(&failingWriter{ok: 1}, replay.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{Reply: scripted.Reply{Text: "Hello."}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := rec.Wrap(replay.DefaultName, model)
	req := infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}}, Thread: "a", Stack: []infinity.ThreadID{"a"}}
	if r := collect(p, req); r.err == nil || !strings.Contains(r.err.Error(), "disk full") || r.done != nil {
		t.Fatalf("first call: %+v", r)
	}
	if r := collect(p, req); r.err == nil || !strings.Contains(r.err.Error(), "failed earlier") {
		t.Fatalf("second call: %+v", r)
	}
	rec.Close()
	if r := collect(p, req); !errors.Is(r.err, os.ErrClosed) {
		t.Fatalf("after Close: %+v", r)
	}
}
