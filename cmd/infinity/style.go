package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/infinity-runtime/infinity/daemon"
)

// colorMode is the value of the global --color flag.
type colorMode string

const (
	colorAuto   colorMode = "auto"
	colorAlways colorMode = "always"
	colorNever  colorMode = "never"
)

func (m *colorMode) String() string { return string(*m) }
func (m *colorMode) Type() string   { return "when" }

func (m *colorMode) Set(s string) error {
	switch colorMode(s) {
	case colorAuto, colorAlways, colorNever:
		*m = colorMode(s)
		return nil
	}
	return fmt.Errorf("want auto, always or never")
}

// style is how a command writes for people on its standard output: the
// width its tables fit in (0: no limit) and whether statuses are coloured.
type style struct {
	width int
	color bool
}

// styleOf decides the style of output written to w (see pickStyle).
func (a *app) styleOf(w io.Writer) style {
	var (
		fd     uintptr
		isTerm bool
		width  int
	)
	if f, ok := w.(*os.File); ok && f != nil {
		fd = f.Fd()
		width, isTerm = termSize(fd)
	}
	mode := a.color
	if a.noColor {
		mode = colorNever
	}
	st := pickStyle(isTerm, width, mode, os.LookupEnv)
	if st.color && isTerm && !enableColor(fd) {
		st.color = false
	}
	return st
}

// pickStyle decides an output's style. A terminal gives its width (else
// $COLUMNS, else 80); any other output is not cut to a width unless
// $COLUMNS is set. Colour goes to a terminal unless NO_COLOR is set (to
// any value) or TERM is dumb; --color=always|never (mode) decides instead.
func pickStyle(isTerm bool, termWidth int, mode colorMode, env func(string) (string, bool)) style {
	var st style
	columns, _ := env("COLUMNS")
	cols, _ := strconv.Atoi(strings.TrimSpace(columns))
	switch {
	case isTerm && termWidth > 0:
		st.width = termWidth
	case cols > 0:
		st.width = cols
	case isTerm:
		st.width = 80
	}
	switch mode {
	case colorAlways:
		st.color = true
	case colorNever:
	default:
		_, noColor := env("NO_COLOR")
		term, _ := env("TERM")
		st.color = isTerm && !noColor && term != "dumb"
	}
	return st
}

// SGR codes.
const (
	sgrBold    = "1"
	sgrDim     = "2"
	sgrRed     = "31"
	sgrGreen   = "32"
	sgrYellow  = "33"
	sgrMagenta = "35"
)

// paint wraps text in the SGR code when the style has colour.
func (s style) paint(code, text string) string {
	if !s.color || code == "" || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// statusColor is the colour of a status (the daemon's or the cloud's
// words): running green, sleeping magenta, waiting yellow, failed red,
// closed dim.
func statusColor(status string) string {
	switch status {
	case daemon.StatusRunning:
		return sgrGreen
	case daemon.StatusSleeping:
		return sgrMagenta
	case daemon.StatusWaiting:
		return sgrYellow
	case daemon.StatusFailed, daemon.StatusOverBudget:
		return sgrRed
	case daemon.StatusClosed:
		return sgrDim
	}
	return ""
}

// column is one column of a table.
type column struct {
	title string
	// drop is the column's turn to go when the table is too wide (1
	// first); 0 keeps it.
	drop int
	// soft is the width a long column is cut to ("…") before any column
	// goes, min the narrowest it may be cut to after; 0: never cut.
	soft, min int
}

// cell is a table cell: its text and its colour (an SGR code or "").
type cell struct{ text, color string }

// fitColumns decides which columns show and their widths: when the table
// is wider than width (> 0), long columns are cut to their soft widths,
// then columns go in their drop order, then the cut columns narrow to
// their min widths, widest first. What is left may still be wider.
func fitColumns(cols []column, rows [][]cell, width int) (shown []bool, widths []int) {
	shown, widths = make([]bool, len(cols)), make([]int, len(cols))
	for i, c := range cols {
		shown[i], widths[i] = true, runeLen(c.title)
		for _, r := range rows {
			widths[i] = max(widths[i], runeLen(r[i].text))
		}
	}
	total := func() int {
		n, k := 0, 0
		for i, ok := range shown {
			if ok {
				n, k = n+widths[i], k+1
			}
		}
		return n + 2*max(k-1, 0)
	}
	if width <= 0 || total() <= width {
		return shown, widths
	}
	for i, c := range cols {
		if c.soft > 0 && widths[i] > c.soft {
			widths[i] = max(c.soft, runeLen(c.title))
		}
	}
	for turn := 1; total() > width; turn++ {
		found := false
		for i, c := range cols {
			if c.drop == turn {
				shown[i], found = false, true
			}
		}
		if !found {
			break
		}
	}
	// A narrow column dropped before a wide one may fit again.
	for turn := len(cols); turn > 0; turn-- {
		for i, c := range cols {
			if c.drop == turn && !shown[i] && total()+widths[i]+2 <= width {
				shown[i] = true
			}
		}
	}
	for over := total() - width; over > 0; over = total() - width {
		widest := -1
		for i, c := range cols {
			if shown[i] && c.min > 0 && widths[i] > max(c.min, runeLen(c.title)) && (widest < 0 || widths[i] > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		widths[widest] = max(cols[widest].min, runeLen(cols[widest].title), widths[widest]-over)
	}
	return shown, widths
}

// printTable writes a table fitted to the style's width, two spaces
// between columns, the titles in bold and each cell in its colour.
func printTable(w io.Writer, st style, cols []column, rows [][]cell) error {
	shown, widths := fitColumns(cols, rows, st.width)
	titles := make([]cell, len(cols))
	for i, c := range cols {
		titles[i] = cell{c.title, sgrBold}
	}
	var b strings.Builder
	for _, r := range append([][]cell{titles}, rows...) {
		last := -1
		for i := range r {
			if shown[i] {
				last = i
			}
		}
		for i, c := range r {
			if !shown[i] {
				continue
			}
			text := ellipsis(c.text, widths[i])
			b.WriteString(st.paint(c.color, text))
			if i != last {
				b.WriteString(strings.Repeat(" ", widths[i]-runeLen(text)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// runeLen is the width of s on a terminal, one column a rune.
func runeLen(s string) int { return utf8.RuneCountInString(s) }

// ellipsis cuts s to n runes, its last one "…" when cut.
func ellipsis(s string, n int) string {
	if runeLen(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}
