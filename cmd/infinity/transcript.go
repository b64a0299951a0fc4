package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
)

// transcript renders history items for people, one line each.
type transcript struct {
	w     io.Writer
	calls map[string]string // call id → tool name
	// stamp renders an item's time; default the local clock time.
	stamp func(infinity.Item) string
}

func newTranscript(w io.Writer) *transcript {
	return &transcript{w: w, calls: map[string]string{}, stamp: func(it infinity.Item) string { return it.At.Local().Format("15:04:05") }}
}

// segment prints a tool result's rendering for people (RAP display_as):
// text as it is, other types (a diff, an image) as their JSON, clipped.
// A pending user choice's segment is the runtime's own and the status
// column already shows it.
func (t *transcript) segment(who string, d infinity.DisplaySegment) {
	switch d.Type {
	case actors.ChoiceSegment:
	case "text":
		var text string
		if json.Unmarshal(d.Content, &text) != nil {
			text = string(d.Content)
		}
		fmt.Fprintf(t.w, "          %sshown: %s\n", who, clip(text, 140))
	default:
		fmt.Fprintf(t.w, "          %sshown %s: %s\n", who, d.Type, clip(string(d.Content), 140))
	}
}

func (t *transcript) line(who string, l daemon.ItemLine) {
	if l.End != "" {
		fmt.Fprintf(t.w, "-- %s\n", l.End)
		return
	}
	if v := l.View; v != nil {
		if who != "" {
			who += "  "
		}
		fmt.Fprintf(t.w, "          %sview %s: %s\n", who, v.Type, clip(string(v.Content), 140))
		return
	}
	if t.live(who, l) {
		return
	}
	it := l.Item
	if it == nil {
		return
	}
	if who != "" {
		who += "  "
	}
	at := t.stamp(*it)
	switch it.Kind {
	case infinity.KindUser:
		fmt.Fprintf(t.w, "%s  %suser> %s\n", at, who, it.Text)
	case infinity.KindAssistant:
		fmt.Fprintf(t.w, "%s  %smodel> %s\n", at, who, strings.ReplaceAll(it.Text, "\n", "\n          "))
	case infinity.KindToolCall:
		t.calls[it.Call.ID] = it.Call.Name
		fmt.Fprintf(t.w, "%s  %scall %s %s\n", at, who, it.Call.Name, clip(string(it.Call.Args), 100))
	case infinity.KindToolResult:
		fmt.Fprintf(t.w, "%s  %sresult %s: %s\n", at, who, t.calls[it.Result.CallID], clip(it.Result.Text(), 140))
		for _, d := range it.Result.Display {
			t.segment(who, d)
		}
	}
	if it.Usage != nil {
		model := ""
		if it.Model != "" {
			model = " (" + it.Model + ")"
		}
		fmt.Fprintf(t.w, "          %susage: %s in / %s out tokens, %s%s\n", who, commas(it.Usage.Input), commas(it.Usage.Output), usd(l.Cost), model)
	}
}

// live renders a slice's usage or a compaction (followed streams only);
// false when l is neither.
func (t *transcript) live(who string, l daemon.ItemLine) bool {
	if who != "" {
		who += "  "
	}
	switch {
	case l.Slice != nil:
		fmt.Fprintf(t.w, "          %sslice: %s in / %s out tokens, %s\n", who, commas(l.Slice.Usage.Input), commas(l.Slice.Usage.Output), usd(l.Slice.Cost))
	case l.Compacted != nil:
		fmt.Fprintf(t.w, "          %scompacted: a summary (%s characters) now stands for the first %d items and everything inherited\n", who, commas(l.Compacted.Chars), l.Compacted.Covers)
	default:
		return false
	}
	return true
}

// inOut writes tokens as "in/out".
func inOut(u infinity.Usage) string { return commas(u.Input) + "/" + commas(u.Output) }

// usd writes a cost in US dollars; "-" when it is unknown.
func usd(c *float64) string {
	switch {
	case c == nil:
		return "-"
	case *c == 0:
		return "$0"
	case *c < 0.0001:
		return "<$0.0001"
	case *c < 1:
		return fmt.Sprintf("$%.4f", *c)
	}
	return fmt.Sprintf("$%.2f", *c)
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func printCompactJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
