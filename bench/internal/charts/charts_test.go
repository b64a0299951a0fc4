package charts

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkSVG fails unless b is well-formed XML whose root is <svg> and
// every want string appears in it.
func checkSVG(t *testing.T, b []byte, want ...string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	for _, w := range want {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("SVG lacks %q", w)
		}
	}
}

func TestWriteFileBars(t *testing.T) {
	tab := Table{
		Title:      "Wall time",
		Unit:       "wall time, s",
		Categories: []string{"infinity-durable", "infinity-memory", "temporal"},
		Series: []Series{
			{Name: "N = 1,000", Values: []float64{2.103, 2.052, 46.962}},
			{Name: "N = 10,000", Values: []float64{2.587, math.NaN(), 493.108}},
		},
	}
	path := filepath.Join(t.TempDir(), "sub", "wall.svg")
	if err := WriteFile(path, tab); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b, "Wall time", "wall time, s", "infinity-durable", "temporal", "N = 10,000", "2.10", "493", "n/a")
	if !tab.IsLog() {
		t.Error("values from 2 to 493: want a log axis")
	}
	if len(b) > 100_000 {
		t.Errorf("SVG of %d bytes", len(b))
	}
}

func TestLinesLinear(t *testing.T) {
	tab := Table{
		Title:      "Lateness",
		Unit:       "ms",
		Categories: []string{"p50", "p90", "p99", "max"},
		Series: []Series{
			{Name: "durable", Values: []float64{1, 2, 5, 9}},
			{Name: "memory", Values: []float64{0, math.NaN(), 4, 8}},
		},
		Kind: Lines,
	}
	if tab.IsLog() {
		t.Error("values 1–9: want a linear axis")
	}
	var a, b bytes.Buffer
	if err := tab.WriteSVG(&a); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, a.Bytes(), "Lateness", "p90", "max", "durable", "memory")
	if err := tab.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings of one table differ")
	}
}

func TestScales(t *testing.T) {
	for _, tc := range []struct {
		scale Scale
		vals  []float64
		log   bool
	}{
		{Auto, []float64{1, 99}, false},
		{Auto, []float64{1, 100}, true},
		{Auto, []float64{0, 0}, false},
		{Log, []float64{0, 0}, false}, // nothing positive: linear
		{Log, []float64{1, 2}, true},
		{Linear, []float64{0.001, 1000}, false},
	} {
		tab := Table{Title: "t", Categories: []string{"a", "b"}, Series: []Series{{Name: "s", Values: tc.vals}}, Scale: tc.scale}
		if got := tab.IsLog(); got != tc.log {
			t.Errorf("scale %d values %v: log %v, want %v", tc.scale, tc.vals, got, tc.log)
		}
		// Every such table draws, on bars and on lines.
		for _, k := range []Kind{Bars, Lines} {
			tab.Kind = k
			var b bytes.Buffer
			if err := tab.WriteSVG(&b); err != nil {
				t.Errorf("scale %d kind %d values %v: %v", tc.scale, k, tc.vals, err)
			}
		}
	}
	// Log bars with values ≤ 0 and missing ones.
	tab := Table{Title: "mixed", Categories: []string{"a", "b", "c", "d"}, Scale: Log,
		Series: []Series{{Name: "s", Values: []float64{0, -1, math.NaN(), 1e4}}}}
	var b bytes.Buffer
	if err := tab.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b.Bytes(), "10000", "n/a")
}

func TestInvalid(t *testing.T) {
	for name, tab := range map[string]Table{
		"no categories": {Title: "x", Series: []Series{{Name: "s"}}},
		"no series":     {Title: "x", Categories: []string{"a"}},
		"short series":  {Title: "x", Categories: []string{"a", "b"}, Series: []Series{{Name: "s", Values: []float64{1}}}},
		"infinite":      {Title: "x", Categories: []string{"a"}, Series: []Series{{Name: "s", Values: []float64{math.Inf(1)}}}},
	} {
		err := tab.WriteSVG(io.Discard)
		if err == nil || !strings.Contains(err.Error(), `chart "x"`) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	// An unwritable directory is an error, not a panic.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tab := Table{Title: "x", Categories: []string{"a"}, Series: []Series{{Name: "s", Values: []float64{1}}}}
	if _, err := WriteAll(filepath.Join(file, "dir"), []File{{Name: "x.svg", Table: tab}}); err == nil {
		t.Error("WriteAll under a file: no error")
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.004: "0.004", 0.26: "0.26", 2.587: "2.59", 22.39: "22.4", 493.108: "493", 19657: "19657"} {
		if got := Format(v); got != want {
			t.Errorf("Format(%g) = %q, want %q", v, got, want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -10000: "-10,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
