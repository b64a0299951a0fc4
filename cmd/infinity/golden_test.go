package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity/daemon"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the commands print now")

// checkGolden compares got with testdata/NAME.golden; with -update it
// writes the file instead.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/infinity -run '%s' -update writes it)", err, t.Name())
	}
	if got == string(want) {
		return
	}
	w, g := strings.Split(string(want), "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	line := func(ls []string) string {
		if i < len(ls) {
			return ls[i]
		}
		return "(the end)"
	}
	t.Errorf("%s: line %d differs (-update rewrites the file if the change is right):\nwant: %s\ngot:  %s\n\nall of it:\n%s",
		path, i+1, line(w), line(g), got)
}

// normaliser makes command output comparable between runs: each thread
// id becomes T1, T2… in the order of first appearance (padded to the id's
// width where a table or tree column follows it), each call id call_1,
// call_2…, clock times hh:mm:ss and dates yyyy-mm-dd.
type normaliser struct {
	ids   []string          // the thread ids to replace
	seen  map[string]string // id → its label
	calls map[string]string
}

func newNormaliser() *normaliser {
	return &normaliser{seen: map[string]string{}, calls: map[string]string{}}
}

var (
	callIDs = regexp.MustCompile(`call_[0-9a-f]{4,}`)
	clock   = regexp.MustCompile(`\b\d\d:\d\d:\d\d\b`)
	dates   = regexp.MustCompile(`\b\d{4}-\d\d-\d\d\b`)
)

func (n *normaliser) norm(s string) string {
	if len(n.ids) > 0 {
		quoted := make([]string, len(n.ids))
		for i, id := range n.ids {
			quoted[i] = regexp.QuoteMeta(id)
		}
		re := regexp.MustCompile(`(` + strings.Join(quoted, "|") + `)(  )?`)
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			id := strings.TrimRight(m, " ")
			label, ok := n.seen[id]
			if !ok {
				label = fmt.Sprintf("T%d", len(n.seen)+1)
				n.seen[id] = label
			}
			if strings.HasSuffix(m, "  ") {
				return label + strings.Repeat(" ", len(id)-len(label)+2)
			}
			return label
		})
	}
	s = callIDs.ReplaceAllStringFunc(s, func(id string) string {
		label, ok := n.calls[id]
		if !ok {
			label = fmt.Sprintf("call_%d", len(n.calls)+1)
			n.calls[id] = label
		}
		return label
	})
	s = clock.ReplaceAllString(s, "hh:mm:ss")
	return dates.ReplaceAllString(s, "yyyy-mm-dd")
}

// The output of ls, tree, logs and run --follow for people, against
// goldens (testdata/*.golden; -update rewrites them): the bundled demo
// (three children, numbered in the order they were spawned, each child's
// last lines before its parent hears of it) and an agent whose model
// always fails.
func TestGoldenOutput(t *testing.T) {
	t.Setenv("COLUMNS", "") // a test's output is no terminal: no width unless COLUMNS says
	serveDaemon(t, t.TempDir())
	var runs, lss, trees, logs strings.Builder
	show := func(b *strings.Builder, args ...string) string {
		t.Helper()
		out, errOut, code := cmdCode(t, args...)
		fmt.Fprintf(b, "$ infinity %s\n%s", strings.Join(args, " "), out)
		if errOut != "" {
			fmt.Fprintf(b, "[stderr]\n%s", errOut)
		}
		if code != exitOK {
			fmt.Fprintf(b, "[exit %d]\n", code)
		}
		b.WriteString("\n")
		return out
	}

	show(&runs, "run", "--follow", "demo")
	agent := failingAgent(t)
	out, errOut, code := cmdCode(t, "run", "--follow", agent, "hello")
	if code != exitFailed {
		t.Fatalf("run --follow of a failing agent: exit %d\n%s%s", code, out, errOut)
	}
	fmt.Fprintf(&runs, "$ infinity run --follow failing/agent.yaml hello\n%s[stderr]\n%s[exit %d]\n", out, strings.ReplaceAll(errOut, agent, "failing/agent.yaml"), code)

	var all []daemon.ThreadView
	if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--all", "--json")), &all); err != nil || len(all) != 5 {
		t.Fatalf("ls --all --json: %v, %d threads", err, len(all))
	}
	root, child, failed := string(all[0].ID), string(all[1].ID), string(all[4].ID)

	show(&lss, "ls")
	show(&lss, "ls", "--all")
	t.Setenv("COLUMNS", "80")
	show(&lss, "ls", "--all")
	t.Setenv("COLUMNS", "60")
	show(&lss, "ls", "--all")
	show(&lss, "ls", "--all", "--wide")
	t.Setenv("COLUMNS", "")
	show(&lss, "ls", "--all", "--status", "closed,failed")
	show(&lss, "ls", "--all", "--status", "waiting", "--status", "failed")
	show(&lss, "ls", "--agent", "failing")
	show(&lss, "ls", "--root", root, "-q")
	show(&lss, "ls", "--status", "sleeping")
	show(&lss, "ls", "--status", "asleep")

	show(&trees, "tree")
	show(&trees, "tree", failed)

	show(&logs, "logs", root)
	show(&logs, "logs", child)
	show(&logs, "logs", "--from", "6", root)
	show(&logs, "logs", "-f", child)
	show(&logs, "logs", "-f", failed)

	n := newNormaliser()
	for _, v := range all {
		n.ids = append(n.ids, string(v.ID))
	}
	// The run's output first: it names the threads T1 (the root), T2-T4
	// (its children, in spawn order) and T5 (the failed root).
	for _, g := range []struct {
		name string
		b    *strings.Builder
	}{{"run-follow", &runs}, {"ls", &lss}, {"tree", &trees}, {"logs", &logs}} {
		checkGolden(t, g.name, n.norm(g.b.String()))
	}
	if got := []string{n.seen[root], n.seen[child], n.seen[failed]}; !slices.Equal(got, []string{"T1", "T2", "T5"}) {
		t.Errorf("labels of the root, its first child and the failed root: %v", got)
	}
}
