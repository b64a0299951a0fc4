package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/internal/syncbuf"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// syncBuffer collects output written from many goroutines.
type syncBuffer = syncbuf.Buffer

// Tokens and cost in ls, tree and logs; run --model, accepted and refused.
func TestUsageCommands(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "prices.yaml"), []byte("models:\n  scripted/scripted: {input: 3, output: 15}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serveDaemon(t, home)

	dir := t.TempDir()
	agent := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(`{"rules":[{"when":{},"reply":{"text":"hi there"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, []byte("name: two\nmodel: {provider: scripted, script: s.json}\nmodels:\n  - {provider: scripted, id: small, price: {input: 100, output: 200}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A model the agent does not list: the error names the choices.
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"run", "--model", "openai/gpt-4.1", agent, "hello"}, &out, &errOut)
	var ae *daemon.APIError
	if !errors.As(err, &ae) || ae.Code != daemon.CodeUnknownModel || !strings.Contains(explain(err), "scripted/scripted, scripted/small") {
		t.Fatalf("run --model openai/gpt-4.1: %v", err)
	}
	if err := run(t.Context(), []string{"run", "--model", "gpt", agent, "hello"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "provider/model") {
		t.Fatalf("run --model gpt: %v", err)
	}

	if out := cmdOut(t, "run", "--model", "scripted/small", agent, "hello"); !strings.Contains(out, "model scripted/small") {
		t.Errorf("run --model: %s", out)
	}
	cmdOut(t, "run", "--follow", "demo")
	var threads []daemon.ThreadView
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--json")), &threads); err != nil {
			t.Fatal(err)
		}
		if len(threads) == 2 && threads[0].Detail == daemon.WaitingForInput && threads[1].Detail == daemon.WaitingForInput {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads never settled: %+v", threads)
		}
		time.Sleep(20 * time.Millisecond)
	}
	small, demo := threads[0], threads[1]
	if small.Model != "scripted/small" || small.Cost == nil || demo.Model != "scripted/scripted" || demo.Subtree.Threads != 4 || demo.Subtree.Cost == nil {
		t.Fatalf("ls --json: %+v\n%+v", small, demo)
	}
	ls := cmdOut(t, "ls")
	for _, want := range []string{"MODEL", "TOKENS IN/OUT", "COST", "SUBTREE COST", "scripted/small", "scripted/scripted", usd(demo.Subtree.Cost), inOut(demo.Subtree.Tokens)} {
		if !strings.Contains(ls, want) {
			t.Errorf("ls lacks %q:\n%s", want, ls)
		}
	}
	tree := cmdOut(t, "tree", string(demo.ID))
	if !strings.Contains(tree, "subtree "+inOut(demo.Subtree.Tokens)+" tokens, "+usd(demo.Subtree.Cost)) || strings.Count(tree, " tokens, ") != 5 {
		t.Errorf("tree:\n%s", tree)
	}
	var tr daemon.Tree
	if err := json.Unmarshal([]byte(cmdOut(t, "tree", "--json", string(demo.ID))), &tr); err != nil || tr.Subtree.Cost == nil || tr.Cost == nil {
		t.Errorf("tree --json: %v, %+v", err, tr.ThreadView)
	}
	if logs := cmdOut(t, "logs", string(small.ID)); !strings.Contains(logs, "usage: ") || !strings.Contains(logs, " out tokens, $") {
		t.Errorf("logs:\n%s", logs)
	}

	// logs -f: a line per slice.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var follow syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"logs", "-f", string(small.ID)}, &follow, io.Discard) }()
	time.Sleep(200 * time.Millisecond)
	cmdOut(t, "send", string(small.ID), "again")
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(follow.String(), "slice: ") {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f shows no slice:\n%s", follow.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if !strings.Contains(follow.String(), " out tokens, $") {
		t.Errorf("logs -f slice line without cost:\n%s", follow.String())
	}
}

// Without a price, the cost is "-", never a figure.
func TestUnknownCostShown(t *testing.T) {
	if got := usd(nil); got != "-" {
		t.Errorf("usd(nil) = %q", got)
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "$0"}, {0.00008, "<$0.0001"}, {0.0042, "$0.0042"}, {0.16803, "$0.1680"}, {1.5, "$1.50"}, {1234.567, "$1234.57"}} {
		if got := usd(&c.v); got != c.want {
			t.Errorf("usd(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1234: "1,234", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestUsageHelp(t *testing.T) {
	for cmd, want := range map[string][]string{
		"run":    {"--model", "provider/model"},
		"ls":     {"cost", "subtree", `"-"`},
		"tree":   {"subtree"},
		"logs":   {"slice", "compacted"},
		"daemon": {"--prices", "INFINITY_PRICES", "prices.yaml"},
	} {
		var b bytes.Buffer
		if err := run(t.Context(), []string{cmd, "--help"}, &b, &b); err != nil {
			t.Errorf("%s --help: %v", cmd, err)
		}
		out := b.String()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("infinity %s --help lacks %q:\n%s", cmd, w, out)
			}
		}
	}
}

// The live lines of a followed stream: a slice's usage and a compaction.
func TestLiveLines(t *testing.T) {
	var b bytes.Buffer
	tr := newTranscript(&b)
	cost := 0.0042
	tr.line("", daemon.ItemLine{Index: 3, Slice: &daemon.SliceLine{Usage: infinity.Usage{Input: 1234, Output: 56}, Items: 2, Cost: &cost}})
	tr.line("root/1", daemon.ItemLine{Index: 3, Slice: &daemon.SliceLine{Usage: infinity.Usage{Input: 10, Output: 5}}})
	tr.line("", daemon.ItemLine{Index: 9, Compacted: &daemon.CompactedLine{Covers: 40, Position: 42, Chars: 1800}})
	want := "          slice: 1,234 in / 56 out tokens, $0.0042\n" +
		"          root/1  slice: 10 in / 5 out tokens, -\n" +
		"          compacted: a summary (1,800 characters) now stands for the first 40 items and everything inherited\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
