package replay

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of a diff in an error message.
const (
	diffContext  = 2       // unchanged lines around a change
	diffMaxLines = 60      // lines of hunks shown; the rest are counted
	diffMaxCells = 1 << 20 // the largest changed middle compared line by line
	lineWidth    = 240     // runes of a line shown
)

// edit is one line of an edit script: ' ' both have it, '-' only a, '+'
// only b; ai and bi index a and b (-1 when the side has no line).
type edit struct {
	op     byte
	ai, bi int
}

// editScript turns a into b: the common start and end are kept, and the
// middle between is compared by longest common subsequence when it is
// small enough, else replaced whole.
func editScript(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	out := make([]edit, 0, len(a)+len(b)-pre-suf)
	for i := range pre {
		out = append(out, edit{' ', i, i})
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(am), len(bm)
	if n == 0 || m == 0 || (n+1)*(m+1) > diffMaxCells {
		for i := range n {
			out = append(out, edit{'-', pre + i, -1})
		}
		for j := range m {
			out = append(out, edit{'+', -1, pre + j})
		}
	} else {
		// lcs[i*(m+1)+j] is the longest common subsequence of am[i:] and bm[j:].
		lcs := make([]int32, (n+1)*(m+1))
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				switch {
				case am[i] == bm[j]:
					lcs[i*(m+1)+j] = lcs[(i+1)*(m+1)+j+1] + 1
				default:
					lcs[i*(m+1)+j] = max(lcs[(i+1)*(m+1)+j], lcs[i*(m+1)+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && am[i] == bm[j]:
				out = append(out, edit{' ', pre + i, pre + j})
				i, j = i+1, j+1
			case j == m || i < n && lcs[(i+1)*(m+1)+j] >= lcs[i*(m+1)+j+1]:
				out = append(out, edit{'-', pre + i, -1})
				i++
			default:
				out = append(out, edit{'+', -1, pre + j})
				j++
			}
		}
	}
	for k := range suf {
		out = append(out, edit{' ', len(a) - suf + k, len(b) - suf + k})
	}
	return out
}

// lineDiff writes the lines that differ between a and b as unified-diff
// hunks ("- " a's line, "+ " b's, "  " both), with a little context; ""
// when they are the same.
func lineDiff(a, b []string) string {
	es := editScript(a, b)
	var changed []int
	for k, e := range es {
		if e.op != ' ' {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	// A changed line is shown from its first difference with the line it
	// replaced, so that a long line's change is in view.
	from := make([]int, len(es))
	for k := 0; k < len(es); {
		if es[k].op == ' ' {
			k++
			continue
		}
		var dels, adds []int
		for ; k < len(es) && es[k].op != ' '; k++ {
			if es[k].op == '-' {
				dels = append(dels, k)
			} else {
				adds = append(adds, k)
			}
		}
		for x := 0; x < len(dels) && x < len(adds); x++ {
			at := firstDiff(a[es[dels[x]].ai], b[es[adds[x]].bi])
			from[dels[x]], from[adds[x]] = at, at
		}
	}
	var out strings.Builder
	shown := 0
	for g := 0; g < len(changed); {
		// A hunk: changes no more than 2*diffContext unchanged lines apart.
		end := g
		for end+1 < len(changed) && changed[end+1]-changed[end] <= 2*diffContext+1 {
			end++
		}
		lo, hi := max(changed[g]-diffContext, 0), min(changed[end]+diffContext, len(es)-1)
		aStart, bStart := -1, -1
		for k := lo; k <= hi && (aStart < 0 || bStart < 0); k++ {
			if aStart < 0 && es[k].ai >= 0 {
				aStart = es[k].ai
			}
			if bStart < 0 && es[k].bi >= 0 {
				bStart = es[k].bi
			}
		}
		fmt.Fprintf(&out, "@@ recorded line %d, asked line %d @@\n", aStart+1, bStart+1)
		for k := lo; k <= hi; k++ {
			if shown == diffMaxLines {
				rest := 0
				for _, c := range changed {
					if c >= k {
						rest++
					}
				}
				fmt.Fprintf(&out, "… %d more changed lines not shown\n", rest)
				return out.String()
			}
			e := es[k]
			switch e.op {
			case ' ':
				out.WriteString("  " + clip(a[e.ai], 0) + "\n")
			case '-':
				out.WriteString("- " + clip(a[e.ai], from[k]) + "\n")
			case '+':
				out.WriteString("+ " + clip(b[e.bi], from[k]) + "\n")
			}
			shown++
		}
		g = end + 1
	}
	return out.String()
}

// firstDiff returns the byte offset where a and b first differ.
func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// clip cuts a long line to lineWidth runes, keeping the byte offset at in
// view (a little after the cut's start), with "…" where it was cut.
func clip(s string, at int) string {
	if utf8.RuneCountInString(s) <= lineWidth {
		return s
	}
	start := 0
	if at > lineWidth/2 {
		start = at - lineWidth/4
		for start > 0 && !utf8.RuneStart(s[start]) {
			start--
		}
	}
	end, n := start, 0
	for end < len(s) && n < lineWidth {
		_, size := utf8.DecodeRuneInString(s[end:])
		end += size
		n++
	}
	out := s[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(s) {
		out += "…"
	}
	return out
}
