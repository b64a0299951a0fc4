package infinitytest_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/infinitytest"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/models/scripted"
)

func depth(n int) *int { return &n }

// reporter's root spawns a child that reports and closes; the root then
// answers.
func reporter(t *testing.T) *scripted.Provider {
	t.Helper()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Depth: depth(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "spawn_thread", Args: json.RawMessage(`{"instructions":"look around","child_of":"$STACK"}`)}}}},
		{When: scripted.Match{Depth: depth(1), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "close_thread", Args: json.RawMessage(`{"thread_id":"$THREAD","report_to_parent":"all quiet in $THREAD"}`)}}}},
		{When: scripted.Match{Depth: depth(0), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "sleep_until_event_or_input"}}}},
		{When: scripted.Match{Depth: depth(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "All quiet."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return model
}

var watcher = actors.Agent{Name: "watcher", System: "You watch."}

// Run returns the answer and the tree; the transcript names threads by
// their place in the tree, in text too.
func TestRunAndTranscript(t *testing.T) {
	res := infinitytest.Run(t, reporter(t), watcher, "Look around.", infinitytest.WithID("w"))
	if res.Root != "w" || res.Answer != "All quiet." || len(res.Threads()) != 2 {
		t.Fatalf("%+v", res)
	}
	tr := res.Transcript()
	for _, want := range []string{
		"== root (agent \"watcher\")\n",
		"== root/1 (agent \"watcher\", closed)\n",
		"root: user: Look around.\n",
		"root: result: Spawned child thread root/1.",
		"all quiet in root/1",
		"root: assistant: All quiet. [",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("the transcript has no %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr, string(res.Tree.Children[0].Info.ID)) {
		t.Errorf("the transcript names a thread by its id:\n%s", tr)
	}
}

// Record, then Replay: the same tree.
func TestRecordThenReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	recorded := infinitytest.Record(t, path, reporter(t), watcher, "Look around.")
	replayed := infinitytest.Replay(t, path, watcher, "Look around.")
	if replayed.Root != recorded.Root || replayed.Transcript() != recorded.Transcript() || len(replayed.Unused) != 0 {
		t.Fatalf("replayed:\n%s\nrecorded:\n%s", replayed.Transcript(), recorded.Transcript())
	}
}

// A child's request missing from the recording ends the replay at once
// (the root would wait for its report until the timeout), with the diff.
func TestAChildsMissEndsTheReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	infinitytest.Record(t, path, reporter(t), watcher, "Look around.")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The child's request, edited: its task is another one.
	var out []string
	for line := range strings.Lines(string(raw)) {
		if strings.Contains(line, "You are a child thread") {
			line = strings.ReplaceAll(line, "Your task: look around", "Your task: look closer")
		}
		out = append(out, line)
	}
	if err := os.WriteFile(path, []byte(strings.Join(out, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = infinitytest.TryReplay(t, path, watcher, "Look around.", infinitytest.WithTimeout(20*time.Second))
	var nr *replay.NotRecordedError
	if !errors.As(err, &nr) || !strings.Contains(nr.Diff, " | You are now inside thread ⟪stack:1⟫. Your task: look closer\n") ||
		!strings.Contains(nr.Diff, " | You are now inside thread ⟪stack:1⟫. Your task: look around\n") || nr.Nearest.Thread == nr.Nearest.Stack[0] {
		t.Fatalf("replay = %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("the miss took %v to end the replay", el)
	}
}

// A recording that is not there is a plain error.
func TestReplayMissingFile(t *testing.T) {
	_, err := infinitytest.TryReplay(t, filepath.Join(t.TempDir(), "none.jsonl"), watcher, "x")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
