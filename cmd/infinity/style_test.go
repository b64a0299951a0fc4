package main

import (
	"encoding/json"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
)

// The width and the colour: a terminal's width, else COLUMNS, else 80 on
// a terminal and no limit elsewhere; colour on a terminal only, unless
// NO_COLOR (any value, even empty) or TERM=dumb, and as --color says.
func TestPickStyle(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	for _, tc := range []struct {
		name      string
		isTerm    bool
		termWidth int
		mode      colorMode
		env       func(string) (string, bool)
		want      style
	}{
		{"terminal", true, 120, colorAuto, env("TERM", "xterm"), style{120, true}},
		{"terminal without a size", true, 0, colorAuto, env(), style{80, true}},
		{"terminal without a size, COLUMNS", true, 0, colorAuto, env("COLUMNS", "100"), style{100, true}},
		{"terminal size beats COLUMNS", true, 90, colorAuto, env("COLUMNS", "100"), style{90, true}},
		{"NO_COLOR", true, 90, colorAuto, env("NO_COLOR", "1"), style{90, false}},
		{"NO_COLOR empty", true, 90, colorAuto, env("NO_COLOR", ""), style{90, false}},
		{"TERM=dumb", true, 90, colorAuto, env("TERM", "dumb"), style{90, false}},
		{"--color=never", true, 90, colorNever, env(), style{90, false}},
		{"pipe", false, 0, colorAuto, env(), style{0, false}},
		{"pipe, COLUMNS", false, 0, colorAuto, env("COLUMNS", "60"), style{60, false}},
		{"pipe, COLUMNS empty", false, 0, colorAuto, env("COLUMNS", ""), style{0, false}},
		{"pipe, --color=always", false, 0, colorAlways, env("NO_COLOR", "1"), style{0, true}},
	} {
		if got := pickStyle(tc.isTerm, tc.termWidth, tc.mode, tc.env); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// --color, --no-color: colour escapes where asked, none by default in a
// test (no terminal), and a usage error for a bad value.
func TestColorFlags(t *testing.T) {
	serveDaemon(t, t.TempDir())
	agent := failingAgent(t)
	cmdCode(t, "run", "--follow", agent, "hi")
	if out := cmdOut(t, "ls"); strings.Contains(out, "\x1b[") {
		t.Errorf("colour without a terminal:\n%q", out)
	}
	if out := cmdOut(t, "ls", "--color=always"); !strings.Contains(out, "\x1b[31mfailed: ") || !strings.Contains(out, "\x1b[1mTHREAD\x1b[0m") {
		t.Errorf("ls --color=always:\n%q", out)
	}
	if out := cmdOut(t, "--color", "tree"); !strings.Contains(out, "\x1b[31mfailed: ") {
		t.Errorf("--color tree:\n%q", out)
	}
	if out := cmdOut(t, "ls", "--color=always", "--no-color"); strings.Contains(out, "\x1b[") {
		t.Errorf("--no-color:\n%q", out)
	}
	var threads []daemon.ThreadView
	if err := json.Unmarshal([]byte(cmdOut(t, "ls", "--json", "--color=always")), &threads); err != nil || len(threads) != 1 {
		t.Fatalf("ls --json --color=always: %v", err)
	}
	_, errOut, code := cmdCode(t, "logs", "-f", "--color=always", string(threads[0].ID))
	if code != exitFailed {
		t.Errorf("logs -f: exit %d %s", code, errOut)
	}
	if _, errOut, code := cmdCode(t, "ls", "--color=sometimes"); code != exitUsage || !strings.Contains(errOut, "want auto, always or never") {
		t.Errorf("--color=sometimes: exit %d\n%s", code, errOut)
	}
}

// Tables fit: long cells are cut with "…", then columns go in their
// order, a narrow one coming back when a wide one made room; ids are
// never cut.
func TestFitColumns(t *testing.T) {
	cols := []column{{title: "ID"}, {title: "STATUS", soft: 12, min: 8}, {title: "BIG", drop: 1}, {title: "N", drop: 2}}
	rows := [][]cell{{{text: "t123456789"}, {text: "failed: a long reason"}, {text: "0123456789012345"}, {text: "7"}}}
	for _, tc := range []struct {
		width int
		want  string
	}{
		{0, "ID          STATUS                 BIG               N\nt123456789  failed: a long reason  0123456789012345  7\n"},
		{60, "ID          STATUS                 BIG               N\nt123456789  failed: a long reason  0123456789012345  7\n"},
		{50, "ID          STATUS        BIG               N\nt123456789  failed: a l…  0123456789012345  7\n"},
		{30, "ID          STATUS        N\nt123456789  failed: a l…  7\n"},
		{22, "ID          STATUS\nt123456789  failed: a…\n"},
		{5, "ID          STATUS\nt123456789  failed:…\n"},
	} {
		var b strings.Builder
		if err := printTable(&b, style{width: tc.width}, cols, rows); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("width %d:\n%s\nwant\n%s", tc.width, b.String(), tc.want)
		}
	}
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"héllo", 2, "h…"}, {"ab", 1, "…"}, {"ab", 0, ""}} {
		if got := ellipsis(tc.s, tc.n); got != tc.want {
			t.Errorf("ellipsis(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// display_as segments in a transcript: text and diffs as their lines, an
// image as "[image …]", a user choice hidden, anything else as its JSON.
func TestTranscriptSegments(t *testing.T) {
	seg := func(typ, content string) infinity.DisplaySegment {
		return infinity.DisplaySegment{Type: typ, Content: json.RawMessage(content)}
	}
	var b strings.Builder
	tr := newTranscript(&b)
	tr.stamp = func(infinity.Item) string { return "00:00:00" }
	tr.line("", callLine("c1", "edit", `{"path":"a.go"}`))
	tr.line("", daemon.ItemLine{Item: &infinity.Item{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
		CallID: "c1", Parts: []infinity.Part{{Type: "text", Text: "edited"}}, Display: []infinity.DisplaySegment{
			seg("text", `"build: 5 of 5 steps done\nall green"`),
			seg("diff", `"--- a/a.go\n+++ b/a.go\n@@ -1 +1 @@\n-old\n+new\n"`),
			seg("diff", `{"path":"b.go","before":"x = 1","after":"x = 2"}`),
			seg("diff", `{"path":"c.go","hunks":[{"header":"@@ -3 +3 @@","lines":["-a","+b"]},"@@ -9 +9 @@\n-c\n+d"]}`),
			seg("image", `{"mediaType":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==","alt":"a dot"}`),
			seg("image", `"https://example.com/chart.png"`),
			seg(actors.ChoiceSegment, `{"id":"q1","question":"Deploy?"}`),
			seg("table", `{"rows":[[1,2]]}`),
		}}}})
	checkGolden(t, "segments", b.String())
	// On a colour terminal, a diff's lines are coloured.
	b.Reset()
	tr.st.color = true
	tr.segment("", seg("diff", `"-old\n+new"`))
	if want := "          shown diff:\n            \x1b[31m-old\x1b[0m\n            \x1b[32m+new\x1b[0m\n"; b.String() != want {
		t.Errorf("coloured diff %q, want %q", b.String(), want)
	}
}
