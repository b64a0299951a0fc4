package main

import (
	"cmp"
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
	w  io.Writer
	st style
	// calls names every call seen (printed or not yet): call id → tool.
	calls map[string]string
	// lookup names a call none of the items seen holds: one before where
	// the transcript starts, or one the thread inherited from its
	// ancestors (a child's first item answers its parent's spawn_thread);
	// nil, or not found: "(earlier call)".
	lookup func(callID string) (string, bool)
	// stamp renders an item's time; default the local clock time.
	stamp func(infinity.Item) string
}

func newTranscript(w io.Writer) *transcript {
	return &transcript{w: w, calls: map[string]string{}, stamp: func(it infinity.Item) string { return it.At.Local().Format("15:04:05") }}
}

// note remembers the tool of a call item, before (or without) printing it.
func (t *transcript) note(it *infinity.Item) {
	if it != nil && it.Kind == infinity.KindToolCall && it.Call != nil {
		t.calls[it.Call.ID] = it.Call.Name
	}
}

// tool names the tool a result answers.
func (t *transcript) tool(callID string) string {
	if n, ok := t.calls[callID]; ok {
		return n
	}
	if t.lookup != nil {
		if n, ok := t.lookup(callID); ok {
			t.calls[callID] = n
			return n
		}
	}
	return "(earlier call)"
}

// Bounds of a display segment's rendering.
const (
	maxShownLines = 40
	shownWidth    = 140
)

// segment prints a tool result's rendering for people (RAP display_as):
// text as its lines, a diff as its lines (+ green, - red on a colour
// terminal), an image as "[image …]" (its type, size and what else it
// says), other types as their JSON, clipped. A pending user choice's
// segment is the runtime's own and the status already shows it.
func (t *transcript) segment(who string, d infinity.DisplaySegment) {
	pad := "          " + who
	switch d.Type {
	case actors.ChoiceSegment:
	case "text":
		var text string
		if json.Unmarshal(d.Content, &text) != nil {
			text = string(d.Content)
		}
		for i, l := range limitLines(splitLines(text)) {
			lead := "shown: "
			if i > 0 {
				lead = "       "
			}
			fmt.Fprintf(t.w, "%s%s%s\n", pad, lead, clip(l, shownWidth))
		}
	case "diff":
		title, lines := diffLines(d.Content)
		if title != "" {
			title = " " + title
		}
		fmt.Fprintf(t.w, "%sshown diff%s:\n", pad, title)
		for _, l := range limitLines(lines) {
			color := ""
			switch {
			case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
				color = sgrBold
			case strings.HasPrefix(l, "+"):
				color = sgrGreen
			case strings.HasPrefix(l, "-"):
				color = sgrRed
			case strings.HasPrefix(l, "@@"):
				color = sgrMagenta
			}
			fmt.Fprintf(t.w, "%s  %s\n", pad, t.st.paint(color, clip(l, shownWidth)))
		}
	case "image":
		fmt.Fprintf(t.w, "%sshown: %s\n", pad, imageText(d.Content))
	default:
		fmt.Fprintf(t.w, "%sshown %s: %s\n", pad, d.Type, clip(string(d.Content), shownWidth))
	}
}

// splitLines splits text into lines, without a last empty one.
func splitLines(text string) []string {
	return strings.Split(strings.TrimSuffix(strings.ReplaceAll(text, "\r\n", "\n"), "\n"), "\n")
}

// limitLines keeps the first maxShownLines lines and says how many more
// there are.
func limitLines(lines []string) []string {
	if len(lines) <= maxShownLines {
		return lines
	}
	return append(lines[:maxShownLines:maxShownLines], fmt.Sprintf("… %d more lines", len(lines)-maxShownLines))
}

// diffLines reads a diff segment's content: a unified diff as a string, or
// an object holding one (diff, patch, unified or text), or before and
// after texts, or hunks (strings, or objects with a header and lines); its
// title is the object's path or file. Anything else is its JSON.
func diffLines(raw json.RawMessage) (title string, lines []string) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return "", splitLines(text)
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(raw, &o) != nil {
		return "", []string{string(raw)}
	}
	str := func(k string) (string, bool) {
		var s string
		return s, o[k] != nil && json.Unmarshal(o[k], &s) == nil
	}
	for _, k := range []string{"path", "file", "title"} {
		if s, ok := str(k); ok && s != "" {
			title = s
			break
		}
	}
	for _, k := range []string{"diff", "patch", "unified", "text"} {
		if s, ok := str(k); ok {
			return title, splitLines(s)
		}
	}
	before, okb := str("before")
	after, oka := str("after")
	if okb || oka {
		for _, l := range splitLines(before) {
			lines = append(lines, "-"+l)
		}
		for _, l := range splitLines(after) {
			lines = append(lines, "+"+l)
		}
		return title, lines
	}
	var hunks []json.RawMessage
	if o["hunks"] != nil && json.Unmarshal(o["hunks"], &hunks) == nil {
		for _, h := range hunks {
			var hs string
			var ho struct {
				Header string   `json:"header"`
				Lines  []string `json:"lines"`
			}
			switch {
			case json.Unmarshal(h, &hs) == nil:
				lines = append(lines, splitLines(hs)...)
			case json.Unmarshal(h, &ho) == nil:
				if ho.Header != "" {
					lines = append(lines, ho.Header)
				}
				lines = append(lines, ho.Lines...)
			default:
				lines = append(lines, string(h))
			}
		}
		if len(lines) == 0 {
			lines = []string{"(no changes)"}
		}
		return title, lines
	}
	return title, []string{string(raw)}
}

// imageText is an image segment for a transcript: "[image" and what the
// content says of it (its media type, size, dimensions, alt text or
// title, URL), "]".
func imageText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			return "[image " + clip(s, 100) + "]"
		}
		return "[image]"
	}
	var o struct {
		MediaType  string `json:"mediaType"`
		MediaType2 string `json:"media_type"`
		MIMEType   string `json:"mime_type"`
		Data       string `json:"data"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		Alt        string `json:"alt"`
		Title      string `json:"title"`
		URL        string `json:"url"`
	}
	_ = json.Unmarshal(raw, &o)
	var parts []string
	if mt := cmp.Or(o.MediaType, o.MediaType2, o.MIMEType); mt != "" {
		parts = append(parts, mt)
	}
	if o.Data != "" {
		parts = append(parts, byteSize(len(o.Data)*3/4))
	}
	if o.Width > 0 && o.Height > 0 {
		parts = append(parts, fmt.Sprintf("%d×%d", o.Width, o.Height))
	}
	if alt := cmp.Or(o.Alt, o.Title); alt != "" {
		parts = append(parts, strconv.Quote(clip(alt, 80)))
	}
	if o.URL != "" {
		parts = append(parts, clip(o.URL, 100))
	}
	if len(parts) == 0 {
		return "[image]"
	}
	return "[image " + strings.Join(parts, ", ") + "]"
}

// byteSize writes a size in bytes, KB or MB.
func byteSize(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.0f KB", float64(n)/1000)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func (t *transcript) line(who string, l daemon.ItemLine) {
	if l.End != "" {
		fmt.Fprintln(t.w, t.st.paint(statusColor(l.End), "-- "+l.End))
		return
	}
	if v := l.View; v != nil {
		if who != "" {
			who += "  "
		}
		fmt.Fprintf(t.w, "          %sview %s: %s\n", who, v.Type, clip(string(v.Content), shownWidth))
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
		label := "user"
		if it.Notice != "" {
			label = "runtime" // a note the runtime added (the budget)
		}
		fmt.Fprintf(t.w, "%s  %s%s> %s\n", at, who, label, it.Text)
	case infinity.KindAssistant:
		fmt.Fprintf(t.w, "%s  %smodel> %s\n", at, who, strings.ReplaceAll(it.Text, "\n", "\n          "))
	case infinity.KindToolCall:
		t.note(it)
		fmt.Fprintf(t.w, "%s  %scall %s %s\n", at, who, it.Call.Name, clip(string(it.Call.Args), 100))
	case infinity.KindToolResult:
		fmt.Fprintf(t.w, "%s  %sresult %s: %s\n", at, who, t.tool(it.Result.CallID), clip(it.Result.Text(), shownWidth))
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
