package pricing_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/pricing"
)

func TestParse(t *testing.T) {
	tab, err := pricing.Parse("prices.yaml", []byte(`# USD per million tokens
models:
  anthropic/claude-sonnet-4-5: {input: 3, output: 15}
  openai/meta/llama:
    input: 0.25
    output: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Models(); len(got) != 2 || got[0] != "anthropic/claude-sonnet-4-5" || got[1] != "openai/meta/llama" {
		t.Fatalf("Models() = %q", got)
	}
	usd, ok := tab.Cost("anthropic/claude-sonnet-4-5", infinity.Usage{Input: 1000, Output: 100})
	if !ok || math.Abs(usd-0.0045) > 1e-12 {
		t.Errorf("Cost = %v, %v; want 0.0045", usd, ok)
	}
	if p, ok := tab.Price("openai/meta/llama"); !ok || p != (pricing.Price{Input: 0.25}) {
		t.Errorf("Price = %+v, %v", p, ok)
	}
	if _, ok := tab.Cost("anthropic/claude-haiku-4-5", infinity.Usage{Input: 1}); ok {
		t.Error("a model without a price has a cost")
	}
	if usd, ok := tab.Cost("anthropic/unpriced", infinity.Usage{}); !ok || usd != 0 {
		t.Errorf("no usage costs %v, %v; want 0, true", usd, ok)
	}
}

func TestEmptyAndNil(t *testing.T) {
	for _, in := range []string{"", "models:\n", "# nothing\n"} {
		tab, err := pricing.Parse("p.yaml", []byte(in))
		if err != nil || tab.Len() != 0 {
			t.Errorf("Parse(%q) = %v, %v", in, tab.Models(), err)
		}
	}
	var nilTab *pricing.Table
	if _, ok := nilTab.Cost("a/b", infinity.Usage{Input: 1}); ok || nilTab.Len() != 0 {
		t.Error("a nil table has prices")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"negative", "models:\n  a/b: {input: -1, output: 2}\n", "p.yaml:2:3: models.a/b.input: -1 is out of range: want a non-negative number"},
		{"missing output", "models:\n  a/b:\n    input: 1\n", "p.yaml:2:3: models.a/b.output: required"},
		{"bad model", "models:\n  claude: {input: 1, output: 2}\n", `p.yaml:2:3: models.claude: "claude" is not provider/model`},
		{"not a mapping", "models:\n  a/b: 3\n", "p.yaml:2"},
		{"null model", "models:\n  a/b:\n", "p.yaml:2:3: models.a/b: want a mapping"},
		{"not a number", "models:\n  a/b: {input: cheap, output: 2}\n", "p.yaml:2:"},
		{"unknown field", "models:\n  a/b: {input: 1, output: 2, cached: 1}\n", "p.yaml:2:"},
		{"unknown top field", "prices:\n  a/b: {input: 1, output: 2}\n", "p.yaml:1:"},
		{"duplicate", "models:\n  a/b: {input: 1, output: 2}\n  a/b: {input: 1, output: 2}\n", "p.yaml:3:"},
		{"infinite", "models:\n  a/b: {input: .inf, output: 2}\n", "models.a/b.input: +Inf is out of range"},
		{"syntax", "models: [\n", "p.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := pricing.Parse("p.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, got %v", tab.Models())
			}
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var pe *pricing.Error
			if !errors.As(err, &pe) {
				t.Errorf("not an *Error: %T", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestMergeLaterWins(t *testing.T) {
	a, err := pricing.New(map[string]pricing.Price{"a/x": {Input: 1, Output: 1}, "a/y": {Input: 2, Output: 2}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pricing.New(map[string]pricing.Price{"a/y": {Input: 5, Output: 5}})
	if err != nil {
		t.Fatal(err)
	}
	m := pricing.Merge(a, nil, b)
	if p, _ := m.Price("a/x"); p.Input != 1 {
		t.Errorf("a/x = %+v", p)
	}
	if p, _ := m.Price("a/y"); p.Input != 5 {
		t.Errorf("a/y = %+v, want the later price", p)
	}
	if _, err := pricing.New(map[string]pricing.Price{"a/x": {Input: -1}}); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("New with a negative price: %v", err)
	}
	if _, err := pricing.New(map[string]pricing.Price{"bare": {}}); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("New with a bare model: %v", err)
	}
}

func TestExampleFile(t *testing.T) {
	tab, err := pricing.Load(filepath.Join("..", "examples", "prices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() == 0 {
		t.Error("examples/prices.yaml has no prices")
	}
	if _, err := pricing.Load(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("models:\n  anthropic/claude-sonnet-4-5: {input: 3, output: 15}\n"))
	f.Add([]byte("models:\n  a/b:\n    input: 1e3\n    output: -0\n"))
	f.Add([]byte("models: &x {a/b: *x}\n"))
	f.Add([]byte("- 1\n---\n{"))
	if b, err := os.ReadFile(filepath.Join("..", "examples", "prices.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := pricing.Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if tab != nil {
				t.Fatal("a table with an error")
			}
			return
		}
		for _, m := range tab.Models() {
			p, ok := tab.Price(m)
			if !ok || !p.Valid() {
				t.Fatalf("%s: invalid price %+v", m, p)
			}
			if usd, ok := tab.Cost(m, infinity.Usage{Input: 1, Output: 1}); !ok || usd < 0 || math.IsNaN(usd) {
				t.Fatalf("%s: cost %v", m, usd)
			}
		}
	})
}
