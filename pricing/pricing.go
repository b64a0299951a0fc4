// Package pricing turns token usage into US dollars with a price table
// the user configures: there are no built-in prices, and a model without a
// price has an unknown cost, never a guessed one.
//
// # File format
//
// A prices file is YAML: under models, each model, written
// "provider/model" (infinity.ParseModelRef), has its input and output
// price in USD per million tokens (non-negative numbers; both required):
//
//	models:
//	  anthropic/claude-sonnet-4-5: {input: 3, output: 15}
//	  openai/gpt-4.1:
//	    input: 2
//	    output: 8
//
// The daemon reads $INFINITY_HOME/prices.yaml (or the file of --prices /
// INFINITY_PRICES); an agent file's per-model price overrides it.
package pricing

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/yamlnode"
)

// MaxSize is the largest prices file Parse accepts.
const MaxSize = 1 << 20

// Price is what a model costs, in USD per million tokens.
type Price struct {
	Input  float64 `yaml:"input" json:"input"`
	Output float64 `yaml:"output" json:"output"`
}

// Valid reports whether both prices are finite and non-negative.
func (p Price) Valid() bool {
	return p.Input >= 0 && p.Output >= 0 && !math.IsInf(p.Input, 0) && !math.IsInf(p.Output, 0)
}

// Cost returns what u costs at p, in USD.
func (p Price) Cost(u infinity.Usage) float64 {
	return (float64(u.Input)*p.Input + float64(u.Output)*p.Output) / 1e6
}

// Table maps models ("provider/model") to prices. The zero value and nil
// are empty tables. A Table is not changed after it is built, so it may be
// shared.
type Table struct {
	prices map[string]Price
}

// New returns a table of the given prices (copied); their models must be
// "provider/model" and the prices valid (ErrInvalid).
func New(prices map[string]Price) (*Table, error) {
	t := &Table{prices: make(map[string]Price, len(prices))}
	for _, m := range slices.Sorted(maps.Keys(prices)) {
		if _, err := infinity.ParseModelRef(m); err != nil {
			return nil, fmt.Errorf("pricing: %w", err)
		}
		p := prices[m]
		if !p.Valid() {
			return nil, fmt.Errorf("pricing: %s: prices must be non-negative numbers, got input %v, output %v: %w", m, p.Input, p.Output, infinity.ErrInvalid)
		}
		t.prices[m] = p
	}
	return t, nil
}

// Len returns how many models have a price.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.prices)
}

// Models returns the priced models, sorted.
func (t *Table) Models() []string {
	if t == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(t.prices))
}

// Price returns the price of model ("provider/model").
func (t *Table) Price(model string) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	p, ok := t.prices[model]
	return p, ok
}

// Cost returns what u costs on model, in USD; ok is false when the model
// has no price (and u is not zero: no usage costs nothing).
func (t *Table) Cost(model string, u infinity.Usage) (usd float64, ok bool) {
	if u == (infinity.Usage{}) {
		return 0, true
	}
	p, ok := t.Price(model)
	if !ok {
		return 0, false
	}
	return p.Cost(u), true
}

// Merge returns a table with t's prices overridden by later tables'.
func Merge(tables ...*Table) *Table {
	out := &Table{prices: map[string]Price{}}
	for _, t := range tables {
		if t != nil {
			maps.Copy(out.prices, t.prices)
		}
	}
	return out
}

// file is the prices file's shape.
type file struct {
	Models map[string]*Price `yaml:"models"`
}

// Error is one problem in a prices file; it wraps infinity.ErrInvalid.
type Error struct {
	Path      string
	Line, Col int // 0 when unknown
	// Field is the problem's place, e.g. models.openai/gpt-4.1.input.
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	return b.String() + ": " + e.Msg
}

// Unwrap returns infinity.ErrInvalid.
func (e *Error) Unwrap() error { return infinity.ErrInvalid }

// Parse reads a prices file; path names it in errors. Every error wraps
// infinity.ErrInvalid (an *Error): unknown fields, a model that is not
// "provider/model", a missing, negative or non-numeric price.
func Parse(path string, data []byte) (t *Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, &Error{Path: path, Msg: fmt.Sprintf("internal error parsing YAML: %v", r)}
		}
	}()
	if len(data) > MaxSize {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("the file is %d bytes; at most %d are allowed", len(data), MaxSize)}
	}
	var f file
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
		return nil, yamlError(path, err)
	}
	// Where each model is written and which fields it has.
	pos := scan(data)
	var errs []error
	prices := map[string]Price{}
	for _, m := range slices.Sorted(maps.Keys(f.Models)) {
		p := f.Models[m]
		at := func(field, format string, args ...any) {
			e := &Error{Path: path, Field: "models." + m, Msg: fmt.Sprintf(format, args...)}
			if field != "" {
				e.Field += "." + field
			}
			if w, ok := pos[m]; ok {
				e.Line, e.Col = w.line, w.col
			}
			errs = append(errs, e)
		}
		if _, err := infinity.ParseModelRef(m); err != nil {
			at("", "%q is not provider/model (such as anthropic/claude-sonnet-4-5)", m)
			continue
		}
		if p == nil {
			at("", "want a mapping with input and output (USD per million tokens)")
			continue
		}
		for _, name := range []string{"input", "output"} {
			v := p.Input
			if name == "output" {
				v = p.Output
			}
			switch {
			case !pos[m].fields[name]:
				at(name, "required: the %s price in USD per million tokens", name)
			case v < 0 || math.IsNaN(v) || math.IsInf(v, 0):
				at(name, "%v is out of range: want a non-negative number", v)
			}
		}
		prices[m] = *p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return New(prices)
}

// Load reads and parses the prices file at path.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pricing: %w", err)
	}
	return Parse(path, b)
}

func yamlError(path string, err error) error {
	e := &Error{Path: path, Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Col = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

// written is where a model is written and which of its fields are.
type written struct {
	line, col int
	fields    map[string]bool
}

// scan finds the models of a prices file that decoded.
func scan(data []byte) map[string]written {
	out := map[string]written{}
	f, err := parser.ParseBytes(data, 0)
	if err != nil || len(f.Docs) == 0 || f.Docs[0] == nil {
		return out
	}
	models := mappingValue(f.Docs[0].Body, "models")
	for _, mv := range pairs(models) {
		w := written{fields: map[string]bool{}}
		if tk := mv.Key.GetToken(); tk != nil && tk.Position != nil {
			w.line, w.col = tk.Position.Line, tk.Position.Column
		}
		for _, f := range pairs(mv.Value) {
			w.fields[yamlnode.KeyName(f.Key)] = true
		}
		out[yamlnode.KeyName(mv.Key)] = w
	}
	return out
}

// pairs returns a mapping's key-value pairs (none for other nodes).
func pairs(n ast.Node) []*ast.MappingValueNode {
	switch v := yamlnode.Unwrap(n).(type) {
	case *ast.MappingNode:
		return v.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}
	}
	return nil
}

func mappingValue(n ast.Node, key string) ast.Node {
	for _, mv := range pairs(n) {
		if yamlnode.KeyName(mv.Key) == key {
			return mv.Value
		}
	}
	return nil
}
