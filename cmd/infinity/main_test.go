package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{args: []string{"demo", "--help"}, is: flag.ErrHelp},
		{args: []string{"demo", "extra"}, is: errUsage},
		{args: []string{"demo", "--nope"}, message: "flag provided but not defined"},
		{args: []string{"demo", "--script", bad}, message: `unknown field "whenn"`},
		{args: []string{"demo", "--script", "/does/not/exist.json"}, message: "no such file"},
		{args: []string{"daemon", "--addr", "0.0.0.0:7711"}, message: "not a loopback address"},
		{args: []string{"daemon", "--log-level", "loud", "--addr", "127.0.0.1:0"}, message: "--log-level"},
		{args: []string{"daemon", "extra"}, is: errUsage},
		{args: []string{"cloud-local", "--time-scale", "2", "hi"}, is: errUsage},
		{args: []string{"cloud-local", "--thread", "no spaces", "hi"}, is: errUsage},
		{args: []string{"cloud-local", "one", "two"}, is: errUsage},
		{args: []string{"cloud-local", "--agent", "/does/not/exist.yaml", "hi"}, message: "no such file"},
		{args: []string{"ls"}, message: "no daemon is running"},
		{args: []string{"daemon", "status"}, message: "infinity daemon start"},
		{args: []string{"run", "no-such-agent", "hi"}, message: "neither an agent file nor a bundled example"},
		{args: []string{"run"}, is: errUsage},
		{args: []string{"send", "t1"}, is: errUsage},
		{args: []string{"logs"}, is: errUsage},
		{args: []string{"close", "a", "b"}, is: errUsage},
		{args: []string{"compact"}, is: errUsage},
		{args: []string{"answer", "t1"}, is: errUsage},
		{args: []string{"import"}, is: errUsage},
	} {
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

// Every command has --help.
func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands {
		for _, args := range [][]string{{name, "--help"}, {"help", name}} {
			var out, errOut bytes.Buffer
			err := run(context.Background(), args, &out, &errOut)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%v: %v", args, err)
			}
			if !strings.Contains(out.String()+errOut.String(), "Usage") {
				t.Errorf("%v printed no usage:\n%s%s", args, out.String(), errOut.String())
			}
		}
	}
	for _, sub := range []string{"start", "stop", "status"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"daemon", sub, "--help"}, &out, &out); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("daemon %s --help: %v", sub, err)
		}
	}
}
