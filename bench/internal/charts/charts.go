// Package charts draws the benchmark programs' tables (bench/sleepsignal,
// bench/daemon) as SVG charts with gonum.org/v1/plot: a Table is a few
// categories (the X axis) and one or more series of values over them,
// drawn as grouped bars or as lines.
package charts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Kind is how a Table's series are drawn.
type Kind int

const (
	// Bars draws one group of bars per category, one bar per series, each
	// labelled with its value.
	Bars Kind = iota
	// Lines draws one line (with a marker at each value) per series
	// across the categories.
	Lines
)

// Scale is the value axis' scale.
type Scale int

const (
	// Auto is Log when the positive values span at least two orders of
	// magnitude (largest / smallest ≥ 100), else Linear.
	Auto Scale = iota
	Linear
	// Log is a logarithmic axis. Values ≤ 0 have no bar or point on it.
	// With no positive value at all the axis falls back to Linear.
	Log
)

// Series is one named row of values, one per category of its Table.
type Series struct {
	Name string
	// Values has one entry per category; NaN means no value (no bar, no
	// point; a bar chart marks it "n/a").
	Values []float64
}

// Table is what one chart shows.
type Table struct {
	Title      string
	Unit       string   // the value axis' label, e.g. "wall time, s"
	Categories []string // the X axis' labels; "\n" breaks a label's line
	Series     []Series
	Kind       Kind
	Scale      Scale
}

// Validate reports what makes t impossible to draw.
func (t Table) Validate() error {
	if len(t.Categories) == 0 {
		return errors.New("no categories")
	}
	if len(t.Series) == 0 {
		return errors.New("no series")
	}
	for _, s := range t.Series {
		if len(s.Values) != len(t.Categories) {
			return fmt.Errorf("series %q has %d values for %d categories", s.Name, len(s.Values), len(t.Categories))
		}
		for _, v := range s.Values {
			if math.IsInf(v, 0) {
				return fmt.Errorf("series %q has an infinite value", s.Name)
			}
		}
	}
	return nil
}

// IsLog says whether t is drawn on a logarithmic axis.
func (t Table) IsLog() bool {
	lo, hi, ok := t.positiveRange()
	switch {
	case !ok:
		return false
	case t.Scale == Log:
		return true
	case t.Scale == Linear:
		return false
	}
	return hi/lo >= 100
}

// positiveRange is the smallest and largest positive value of t.
func (t Table) positiveRange() (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range t.Series {
		for _, v := range s.Values {
			if v > 0 && !math.IsInf(v, 0) {
				lo, hi, ok = math.Min(lo, v), math.Max(hi, v), true
			}
		}
	}
	return lo, hi, ok
}

// size is the size of t's plot (without the legend): wider with more
// bars and with longer category labels.
func (t Table) size() (w, h vg.Length) {
	per := 0.9 * vg.Inch
	if t.Kind == Bars {
		per = vg.Length(max(len(t.Series), 2)) * 0.4 * vg.Inch
	}
	tick := plot.New().X.Tick.Label // the style NominalX's labels get
	for _, c := range t.Categories {
		per = max(per, tick.Width(c)+0.2*vg.Inch)
	}
	return max(6*vg.Inch, vg.Length(len(t.Categories))*per+1.5*vg.Inch), 4 * vg.Inch
}

// WriteSVG draws t as an SVG image to w.
func (t Table) WriteSVG(w io.Writer) (err error) {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("chart %q: %w", t.Title, err)
	}
	// gonum/plot panics on some degenerate input; report it as an error.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("chart %q: plot: %v", t.Title, p)
		}
	}()
	p, leg, err := t.plot()
	if err != nil {
		return fmt.Errorf("chart %q: %w", t.Title, err)
	}
	// The legend goes in a strip right of the plot, where it hides no data.
	wd, ht := t.size()
	var legW vg.Length
	if len(t.Series) > 1 { // one series: the title and unit say what it is
		r := leg.Rectangle(draw.Canvas{})
		legW = r.Max.X - r.Min.X
	}
	if legW > 0 {
		legW += vg.Points(12)
	}
	c := vgsvg.New(wd+legW, ht)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
	if legW > 0 {
		top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding + vg.Points(8)
		leg.Draw(draw.Crop(dc, wd+vg.Points(6), -vg.Points(6), 0, -top))
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return fmt.Errorf("chart %q: render svg: %w", t.Title, err)
	}
	// The fonts are not embedded (that would add ~100 KB per chart):
	// name fallbacks for viewers without the Liberation fonts.
	out := bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Serif;"),
		[]byte("font-family:Liberation Serif,Times New Roman,Times,serif;"))
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("chart %q: write svg: %w", t.Title, err)
	}
	return nil
}

// WriteFile draws t as an SVG image into the file path, creating its
// directory.
func WriteFile(path string, t Table) error {
	var buf bytes.Buffer
	if err := t.WriteSVG(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("chart %q: %w", t.Title, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("chart %q: %w", t.Title, err)
	}
	return nil
}

// File is one chart of a set: the file name (in the set's directory) and
// its table.
type File struct {
	Name  string // "wall.svg"
	Table Table
}

// WriteAll writes every file into dir and returns their paths; it stops
// at the first error.
func WriteAll(dir string, files []File) ([]string, error) {
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := WriteFile(p, f.Table); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// ---- drawing ----

func (t Table) plot() (*plot.Plot, *plot.Legend, error) {
	p := plot.New()
	p.Title.Text = t.Title
	p.Y.Label.Text = t.Unit
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = vg.Points(10)
	leg.Padding = vg.Points(4)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)

	logY := t.IsLog()
	lo, hi, ok := t.positiveRange()
	if !ok {
		lo, hi = 0, 1
	}
	base := 0.0 // where bars start and missing values are marked
	if logY {
		base = math.Pow(10, math.Floor(math.Log10(lo)))
		if base >= lo && t.Kind == Bars {
			base /= 10 // the smallest bar must show
		}
		p.Y.Scale = clampLog{}
		p.Y.Tick.Marker = logTicks{}
	}

	var err error
	if t.Kind == Lines {
		err = t.addLines(p, &leg, logY)
	} else {
		err = t.addBars(p, &leg, logY, base)
	}
	if err != nil {
		return nil, nil, err
	}
	p.NominalX(t.Categories...)
	p.X.Min, p.X.Max = -0.5, float64(len(t.Categories))-0.5
	if logY {
		p.Y.Min, p.Y.Max = base, hi*2
	} else {
		p.Y.Min = min(p.Y.Min, 0)
		p.Y.Max = math.Max(hi, p.Y.Max) * 1.1
	}
	return p, &leg, nil
}

func (t Table) addBars(p *plot.Plot, leg *plot.Legend, logY bool, base float64) error {
	n := len(t.Series)
	w, _ := t.size()
	// The plotting area is about w less 1 inch of axis and margins; each
	// category gets 80 % of its share for its bars.
	bw := min(vg.Length(0.8)*(w-vg.Inch)/vg.Length(len(t.Categories)*n), 36)
	for i, s := range t.Series {
		vals := make(plotter.Values, len(s.Values))
		var labels plotter.XYLabels
		for j, v := range s.Values {
			switch {
			case math.IsNaN(v):
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: base})
				labels.Labels = append(labels.Labels, "n/a")
			case logY && v <= 0:
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: base})
				labels.Labels = append(labels.Labels, Format(v))
			default:
				vals[j] = v
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: v})
				labels.Labels = append(labels.Labels, Format(v))
			}
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = vg.Points(0.5)
		bars.Offset = (vg.Length(i) - vg.Length(n-1)/2) * bw
		p.Add(bars)
		if s.Name != "" {
			leg.Add(s.Name, bars)
		}
		lab, err := plotter.NewLabels(labels)
		if err != nil {
			return fmt.Errorf("series %q labels: %w", s.Name, err)
		}
		lab.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
		for k := range lab.TextStyle {
			st := &lab.TextStyle[k]
			st.Font.Size = vg.Points(8)
			st.XAlign, st.YAlign = draw.XCenter, draw.YBottom
			if st.Width(labels.Labels[k]) > bw*1.1 {
				// Too wide for its bar: write it upwards.
				st.Rotation = math.Pi / 2
				st.XAlign, st.YAlign = draw.XLeft, draw.YCenter
			}
		}
		p.Add(lab)
	}
	return nil
}

func (t Table) addLines(p *plot.Plot, leg *plot.Legend, logY bool) error {
	for i, s := range t.Series {
		var xys plotter.XYs
		for j, v := range s.Values {
			if math.IsNaN(v) || (logY && v <= 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(j), Y: v})
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		line.Dashes = plotutil.Dashes(i)
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		points.Radius = vg.Points(3)
		p.Add(line, points)
		if s.Name != "" {
			leg.Add(s.Name, line, points)
		}
		if len(t.Series) == 1 { // one line: its values fit beside it
			labels := plotter.XYLabels{XYs: xys}
			for _, xy := range xys {
				labels.Labels = append(labels.Labels, Format(xy.Y))
			}
			lab, err := plotter.NewLabels(labels)
			if err != nil {
				return fmt.Errorf("series %q labels: %w", s.Name, err)
			}
			lab.Offset = vg.Point{X: vg.Points(-5), Y: vg.Points(5)}
			for k := range lab.TextStyle {
				lab.TextStyle[k].Font.Size = vg.Points(8)
				lab.TextStyle[k].XAlign, lab.TextStyle[k].YAlign = draw.XRight, draw.YBottom
			}
			p.Add(lab)
		}
	}
	return nil
}

// Format is how a bar's value label reads: three significant digits, at
// most two decimals, no exponent.
func Format(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// Thousands writes n with thousands separators, for labels: 10,000.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// clampLog is a log scale that puts values below the axis' minimum (a
// bar's foot at 0) on the minimum instead of panicking.
type clampLog struct{}

func (clampLog) Normalize(lo, hi, x float64) float64 {
	if x < lo {
		x = lo
	}
	return plot.LogScale{}.Normalize(lo, hi, x)
}

// logTicks marks every power of ten of a log axis with a label (no
// exponents) and the steps between them (2×–9×) without.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if lo <= 0 || hi <= lo {
		return nil
	}
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		d := math.Pow(10, float64(e))
		label := strconv.FormatFloat(d, 'f', -1, 64)
		if e < 0 {
			label = strconv.FormatFloat(d, 'f', -e, 64)
		}
		ticks = append(ticks, plot.Tick{Value: d, Label: label})
		for k := 2; k < 10; k++ {
			ticks = append(ticks, plot.Tick{Value: float64(k) * d})
		}
	}
	return ticks
}

// ReadRows reads a file of JSON lines (a bench program's -json output),
// one T per non-blank line; a file with none is an error.
func ReadRows[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	var rows []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var r T
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("read rows: %s:%d: %w", path, line, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read rows: %s holds no rows", path)
	}
	return rows, nil
}
