package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/daemon"
	"github.com/spf13/cobra"
)

// The README's first command: the built-in demo runs to completion offline.
func TestDemoRunsToCompletion(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"+ root thread", "call spawn_thread", "root/1", "root/2", "root/3",
		"call sleep {", "Slept for 3 seconds.", "x root/1 closed", "x root/3 closed",
		"Thread tree:", "├── root/1", "└── root/3", "(closed, ",
		"Tokens (scripted estimate, whole tree): ", "Final answer", "C: 1 + 2 + ... + 10 = 55.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

func TestDemoWithScriptFile(t *testing.T) {
	script := `{"rules":[
	  {"when":{"depth":0,"last":"user"},"reply":{"calls":[{"name":"spawn_thread","args":{"instructions":"x","child_of":"$STACK"}}]}},
	  {"when":{"depth":0,"last_tool":"receive_event__injected"},"reply":{"text":"custom done"}},
	  {"when":{"depth":0},"reply":{"calls":[{"name":"sleep_until_event_or_input"}]}},
	  {"when":{"depth":1},"reply":{"calls":[{"name":"close_thread","args":{"thread_id":"$THREAD","report_to_parent":"ok"}}]}}
	]}`
	path := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"demo", "--script", path, "--prompt", "hi"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Final answer") || !strings.Contains(out.String(), "custom done") {
		t.Fatalf("output:\n%s", out.String())
	}

	// --json: one object per line, events named in the tree, then done.
	out.Reset()
	if err := run(context.Background(), []string{"demo", "--script", path, "--prompt", "hi", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	seen := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		var e demoEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Thread == "" || e.Name == "" {
			t.Fatalf("line %q: %v", l, err)
		}
		seen[e.Event+" "+e.Name] = true
	}
	for _, want := range []string{"spawned root", "spawned root/1", "item root/1", "closed root/1", "item root"} {
		if !seen[want] {
			t.Errorf("no %q event in:\n%s", want, out.String())
		}
	}
	var d demoDone
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &d); err != nil || d.Event != "done" || d.Answer != "custom done" ||
		len(d.Threads) != 2 || d.Threads[1].Name != "root/1" || !d.Threads[1].Closed || d.Tokens.Input == 0 {
		t.Errorf("last line %q: %v", lines[len(lines)-1], err)
	}

	// --record, then replay: the same tree offline from the recording,
	// under the recorded root's id; a recording whose answers changed
	// makes the next request differ, and replay stops with the diff.
	rec := filepath.Join(t.TempDir(), "run.jsonl")
	recorded := cmdOut(t, "demo", "--script", path, "--prompt", "hi", "--record", rec, "--json")
	replayed := cmdOut(t, "replay", rec, "--json")
	rootOf := func(out string) string {
		var e demoEvent
		_ = json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &e)
		return string(e.Thread)
	}
	if !strings.Contains(replayed, `"answer":"custom done"`) || rootOf(recorded) == "" || rootOf(recorded) != rootOf(replayed) {
		t.Errorf("replay:\n%s\nrecorded:\n%s", replayed, recorded)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(t.TempDir(), "changed.jsonl")
	if err := os.WriteFile(changed, []byte(strings.Replace(string(b), `"report_to_parent":"ok"`, `"report_to_parent":"not ok"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut2, code := cmdCode(t, "replay", changed, "--timeout", "20s")
	if code != exitError || !strings.Contains(errOut2, "not ok") {
		t.Errorf("replay of a changed recording: exit %d:\n%s", code, errOut2)
	}
	if _, _, code := cmdCode(t, "replay", filepath.Join(t.TempDir(), "none.jsonl")); code != exitNotFound {
		t.Errorf("replay of a missing file: exit %d", code)
	}
}

func TestCommandErrors(t *testing.T) {
	t.Setenv("INFINITY_HOME", t.TempDir())
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"rules":[{"whenn":{}}]}`), 0o600)
	for _, tc := range []struct {
		args    []string
		is      error
		message string
	}{
		{args: nil, is: errUsage},
		{args: []string{"frobnicate"}, is: errUsage},
		{args: []string{"demo", "extra"}, is: errUsage},
		{args: []string{"demo", "--nope"}, is: errUsage, message: "unknown flag: --nope"},
		{args: []string{"demo", "-json"}, is: errUsage, message: "unknown shorthand flag: 'j' in -json"},
		{args: []string{"logs", "--from", "x", "t1"}, is: errUsage, message: `invalid argument "x" for "--from"`},
		{args: []string{"demo", "--script", bad}, message: `unknown field "whenn"`},
		{args: []string{"demo", "--script", "/does/not/exist.json"}, message: "no such file"},
		{args: []string{"daemon", "--addr", "0.0.0.0:7711"}, message: "not a loopback address"},
		{args: []string{"daemon", "--log-level", "loud", "--addr", "127.0.0.1:0"}, is: errUsage, message: "--log-level"},
		{args: []string{"daemon", "extra"}, is: errUsage},
		{args: []string{"cloud-local", "--time-scale", "2", "hi"}, is: errUsage},
		{args: []string{"cloud-local", "--thread", "no spaces", "hi"}, is: errUsage},
		{args: []string{"cloud-local", "one", "two"}, is: errUsage},
		{args: []string{"cloud-local", "--agent", "/does/not/exist.yaml", "hi"}, message: "no such file"},
		{args: []string{"ls"}, message: "no daemon is running"},
		{args: []string{"daemon", "status"}, message: "infinity daemon start"},
		{args: []string{"run", "no-such-agent", "hi"}, message: "neither an agent file nor a bundled example"},
		{args: []string{"run"}, is: errUsage},
		{args: []string{"send", "t1"}, is: errUsage, message: "send: missing MESSAGE"},
		{args: []string{"logs"}, is: errUsage},
		{args: []string{"close", "a", "b"}, is: errUsage, message: `close: unexpected argument "b"`},
		{args: []string{"compact"}, is: errUsage},
		{args: []string{"answer", "t1"}, is: errUsage},
		{args: []string{"import"}, is: errUsage},
	} {
		if !cloudBuilt && namesCloud(tc.args) {
			continue // TestCloudNotBuilt
		}
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if tc.message != "" && !strings.Contains(err.Error()+errOut.String(), tc.message) {
				t.Fatalf("error %q lacks %q", err, tc.message)
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &out); err != nil || !strings.Contains(out.String(), "demo") {
		t.Fatalf("help: %v\n%s", err, out.String())
	}
}

// Every command has --help, through "help" too, with its usage line and
// a description that names flags GNU-style.
func TestEveryCommandHasHelp(t *testing.T) {
	singleDash := regexp.MustCompile(`(^|[\s("'])-[a-z]{2,}`)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden {
				continue
			}
			path := strings.Fields(sub.CommandPath())[1:]
			if !cloudBuilt && namesCloud(path) {
				continue // TestCloudNotBuilt
			}
			n++
			for _, args := range [][]string{append(slices.Clone(path), "--help"), append([]string{"help"}, path...)} {
				out, errOut, code := cmdCode(t, args...)
				if code != 0 || errOut != "" {
					t.Errorf("%v: exit %d\n%s", args, code, errOut)
				}
				if !strings.Contains(out, "Usage:") || !strings.Contains(out, sub.Short) && !strings.Contains(out, strings.TrimSpace(sub.Long)[:20]) {
					t.Errorf("%v printed no usage:\n%s", args, out)
				}
			}
			if sub.Long == "" || strings.Contains(sub.Long, "Flags:") || singleDash.MatchString(sub.Long) {
				t.Errorf("%s: a Long description without a flags tail and with --flags wanted:\n%s", sub.CommandPath(), sub.Long)
			}
			if sub.Args == nil {
				t.Errorf("%s checks no arguments", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk((&app{}).newRoot(io.Discard, io.Discard))
	if want := 30; n < want && cloudBuilt || n < want-10 {
		t.Errorf("walked %d commands", n)
	}
}

// A daemon started with --record writes every tree's model calls; replay
// --agent runs a recorded tree of a registered agent file again offline.
func TestDaemonRecordReplay(t *testing.T) {
	dir := t.TempDir()
	script := `{"rules":[
	  {"when":{"depth":0,"last":"user"},"reply":{"calls":[{"name":"spawn_thread","args":{"instructions":"x","child_of":"$STACK"}}]}},
	  {"when":{"depth":0,"last_tool":"receive_event__injected"},"reply":{"text":"recorded done"}},
	  {"when":{"depth":0},"reply":{"calls":[{"name":"sleep_until_event_or_input"}]}},
	  {"when":{"depth":1},"reply":{"calls":[{"name":"close_thread","args":{"thread_id":"$THREAD","report_to_parent":"ok"}}]}}
	]}`
	agent := filepath.Join(dir, "quick.yaml")
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, []byte("name: quick\nmodel:\n  provider: scripted\n  script: s.json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home, rec := t.TempDir(), filepath.Join(dir, "daemon.jsonl")
	t.Setenv("INFINITY_HOME", home)
	d, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0", Record: rec,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Idle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go d.Serve(context.Background())
	if out := cmdOut(t, "run", "--follow", agent, "go"); !strings.Contains(out, "recorded done") {
		t.Fatalf("run --follow:\n%s", out)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	out := cmdOut(t, "replay", rec, "--agent", agent, "--json")
	if !strings.Contains(out, `"answer":"recorded done"`) {
		t.Errorf("replay --agent:\n%s", out)
	}
	if _, errOut, code := cmdCode(t, "replay", rec, "--root", "nope"); code != exitNotFound || !strings.Contains(errOut, "holds no root nope") {
		t.Errorf("replay --root nope: exit %d:\n%s", code, errOut)
	}
	tools := filepath.Join(dir, "tools.yaml")
	if err := os.WriteFile(tools, []byte("name: tools\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [http://127.0.0.1:9]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cmdCode(t, "replay", rec, "--agent", tools); code != exitError || !strings.Contains(errOut, "lists tool servers") {
		t.Errorf("replay --agent with tool servers: exit %d:\n%s", code, errOut)
	}
}
