package agentfile

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/internal/awstest"
	"github.com/infinity-runtime/infinity/models/anthropic"
	"github.com/infinity-runtime/infinity/models/bedrock/chain"
	"github.com/infinity-runtime/infinity/models/openai"
)

const full = `name: researcher
description: finds things
model:
  provider: anthropic
  id: claude-sonnet-4-5
  context_window: 100000
  max_output: 4000
system: |
  You are a researcher.
tools:
  rap: [http://127.0.0.1:9000]
  mcp:
    - https://example.com/mcp
limits:
  max_depth: 4
  max_children: 10
  max_tokens: 2048
  slice:
    completions: 12
    wall: 90s
`

func TestParseFull(t *testing.T) {
	f, err := Parse("agents/researcher.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Name:        "researcher",
		Description: "finds things",
		Model:       ModelSpec{Provider: "anthropic", ID: "claude-sonnet-4-5", ContextWindow: 100000, MaxOutput: 4000},
		System:      "You are a researcher.\n",
		Limits:      Limits{MaxDepth: 4, MaxChildren: 10, MaxTokens: 2048, Slice: Slice{Completions: 12, Wall: "90s"}},
		path:        "agents/researcher.yaml",
	}
	tools := f.Tools
	if !reflect.DeepEqual(tools.RAP, []string{"http://127.0.0.1:9000"}) || !reflect.DeepEqual(tools.MCP, []string{"https://example.com/mcp"}) ||
		len(tools.RAPServers) != 1 || tools.RAPServers[0].URL != "http://127.0.0.1:9000" || tools.RAPServers[0].Local() ||
		len(tools.MCPServers) != 1 || tools.MCPServers[0].URL != "https://example.com/mcp" || tools.MCPServers[0].Local() {
		t.Errorf("tools: %+v", tools)
	}
	f.Tools = Tools{} // TestTools checks the rest
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("got  %+v\nwant %+v", f, want)
	}
	if f.Path() != "agents/researcher.yaml" {
		t.Errorf("Path() = %q", f.Path())
	}
	a := f.Agent(nil)
	wantAgent := actors.Agent{
		Name: "researcher", Model: "claude-sonnet-4-5", System: "You are a researcher.\n",
		MaxDepth: 4, MaxChildren: 10, MaxTokens: 2048,
		Budget: actors.Budget{Completions: 12, Wall: 90 * time.Second},
	}
	if !reflect.DeepEqual(a, wantAgent) {
		t.Fatalf("Agent: got %+v\nwant %+v", a, wantAgent)
	}
}

func TestParseMinimal(t *testing.T) {
	f, err := Parse("a.yaml", []byte("name: a\nmodel: {provider: scripted, demo: true}\nlimits:\ntools: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tools.RAP)+len(f.Tools.MCP) != 0 {
		t.Errorf("tools: %+v", f.Tools)
	}
	a := f.Agent(nil)
	if a.MaxDepth != 0 || a.Budget.Wall != 0 || a.Model != "" {
		t.Errorf("absent limits should stay zero (engine defaults): %+v", a)
	}
}

func TestScriptRelative(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := `{"model": "m1", "rules": [{"when": {}, "reply": {"text": "hi"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "scripts", "s.json"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte("name: s\nmodel:\n  provider: scripted\n  script: scripts/s.json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.ScriptPath(), filepath.Join(dir, "scripts", "s.json"); got != want {
		t.Errorf("ScriptPath = %q, want %q", got, want)
	}
	p, err := f.Provider(context.Background(), testProviders())
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Models(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != "m1" {
		t.Fatalf("Models = %v, %v", ms, err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	const ok = "name: a\nmodel:\n  provider: scripted\n  demo: true\n"
	tests := []struct {
		name string
		in   string
		want []string // each must appear, with the file path before it
	}{
		{"unknown field", ok + "limits:\n  max_deph: 4\n",
			[]string{`:6:3: limits.max_deph: unknown field "max_deph" (did you mean "max_depth"?)`}},
		{"unknown top field", "nme: a\n" + ok[8:],
			[]string{`:1:1: nme: unknown field "nme" (did you mean "name"?)`}},
		{"wrong type quoted", ok + "limits:\n  max_depth: \"four\"\n",
			[]string{`:6:14: limits.max_depth: want an integer, got "four"`}},
		{"wrong type float", ok + "limits:\n  max_depth: 4.5\n",
			[]string{`:6:14: limits.max_depth: want an integer, got the number 4.5`}},
		{"wrong type name", "name: 12\n" + ok[8:],
			[]string{`:1:7: name: want a string, got the integer 12`}},
		{"wrong type bool", "name: a\nmodel:\n  provider: scripted\n  demo: yes\n",
			[]string{`:4:9: model.demo: want a boolean (true or false), got "yes"`}},
		{"wrong type mapping", ok + "limits: [1]\n",
			[]string{`:5:9: limits: want a mapping, got a list`}},
		{"missing name", "description: x\nmodel:\n  provider: scripted\n  demo: true\n",
			[]string{`:1:1: name: required`}},
		{"bad name", "name: Re_searcher\n" + ok[8:],
			[]string{`:1:7: name: "Re_searcher" is not a valid name`}},
		{"missing provider", "name: a\nmodel:\n  id: x\n",
			[]string{`:2:1: model.provider: required: one of scripted, anthropic, openai, bedrock`}},
		{"bad provider", "name: a\nmodel:\n  provider: gpt\n  id: x\n",
			[]string{`:3:13: model.provider: unknown provider "gpt"`}},
		{"missing id", "name: a\nmodel:\n  provider: anthropic\n",
			[]string{`:2:1: model.id: required for provider anthropic`}},
		{"scripted without script", "name: a\nmodel:\n  provider: scripted\n",
			[]string{`:2:1: model.script: required for provider scripted`}},
		{"script and demo", "name: a\nmodel:\n  provider: scripted\n  demo: true\n  script: x.json\n",
			[]string{`:5:11: model.script: set either script or demo: true, not both`}},
		{"script on anthropic", "name: a\nmodel:\n  provider: anthropic\n  id: x\n  script: x.json\n",
			[]string{`:5:11: model.script: only provider scripted takes a script`}},
		{"missing script file", "name: a\nmodel:\n  provider: scripted\n  script: ./nope.json\n",
			[]string{`:4:11: model.script: script file ` + filepath.Join(dir, "nope.json") + ` does not exist`}},
		{"bad URL scheme", ok + "tools:\n  rap: [ftp://x]\n",
			[]string{`:6:9: tools.rap[0]: "ftp://x": want an http or https URL`}},
		{"URL without host", ok + "tools:\n  mcp:\n    - http://ok\n    - 'http://'\n",
			[]string{`:8:7: tools.mcp[1]: "http://" has no host`}},
		{"URL unparsable", ok + "tools:\n  rap: ['http://a b:x']\n",
			[]string{`:6:9: tools.rap[0]: "http://a b:x" is not a URL`}},
		{"max_depth range", ok + "limits:\n  max_depth: 33\n",
			[]string{`:6:14: limits.max_depth: 33 is out of range: want 1 to 32`}},
		{"max_children range", ok + "limits:\n  max_children: 0\n",
			[]string{`:6:17: limits.max_children: 0 is out of range: want 1 to 1000`}},
		{"max_tokens range", ok + "limits:\n  max_tokens: -1\n",
			[]string{`:6:15: limits.max_tokens: -1 is out of range: want a positive number`}},
		{"completions range", ok + "limits:\n  slice:\n    completions: 1001\n",
			[]string{`:7:18: limits.slice.completions: 1001 is out of range: want 1 to 1000`}},
		{"bad duration", ok + "limits:\n  slice:\n    wall: five minutes\n",
			[]string{`:7:11: limits.slice.wall: "five minutes" is not a Go duration`}},
		{"duration range", ok + "limits:\n  slice:\n    wall: 2h\n",
			[]string{`:7:11: limits.slice.wall: 2h0m0s is out of range: want 1s to 1h`}},
		{"syntax", "name: a\n  bad: [\n", []string{`:1:7: `}},
		{"two documents", ok + "---\nname: b\n", []string{`:6:5: only one YAML document is allowed`}},
		{"not a mapping", "- a\n", []string{`:1:1: want a mapping, got a list`}},
		{"empty", "", []string{`:1:1: name: required`, `:1:1: model.provider: required`}},
		{"several semantic", "name: A\nmodel:\n  provider: scripted\nlimits:\n  max_depth: 0\n  slice:\n    wall: 1ms\ntools:\n  rap: [x]\n",
			[]string{
				`:1:7: name: "A" is not a valid name`,
				`:2:1: model.script: required for provider scripted`,
				`:5:14: limits.max_depth: 0 is out of range`,
				`:7:11: limits.slice.wall: 1ms is out of range`,
				`:9:9: tools.rap[0]: "x": want an http or https URL`,
			}},
		{"price negative", ok + "  price: {input: -1, output: 2}\n",
			[]string{`:5:18: model.price.input: -1 is out of range: want a non-negative number`}},
		{"price missing output", ok + "  price:\n    input: 3\n",
			[]string{`:5:3: model.price.output: required: the output price in USD per million tokens`}},
		{"price not a number", ok + "  price: {input: cheap, output: 1}\n",
			[]string{`:5:18: model.price.input: want a number, got "cheap"`}},
		{"price unknown field", ok + "  price: {input: 1, output: 1, cache: 1}\n",
			[]string{`:5:32: model.price.cache: unknown field "cache" (known fields: input, output)`}},
		{"rate limit empty", ok + "  rate_limit: {}\n",
			[]string{`:5:3: model.rate_limit: set at least one of concurrent, rpm and tpm`}},
		{"rate limit zero", ok + "  rate_limit: {rpm: 0, tpm: 10}\n",
			[]string{`:5:21: model.rate_limit.rpm: 0 is out of range: want a positive number`}},
		{"rate limit typo", ok + "  rate_limit: {rps: 3}\n",
			[]string{`:5:16: model.rate_limit.rps: unknown field "rps" (did you mean "rpm"?)`}},
		{"models not a list", ok + "models: {provider: openai}\n",
			[]string{`:5:9: models: want a list of mappings, got a mapping`}},
		{"models entry script", ok + "models:\n  - provider: scripted\n    id: b\n    script: x.json\n",
			[]string{`:8:5: models[0].script: unknown field "script"`}},
		{"models entry typo", ok + "models:\n  - provider: scripted\n    id: b\n    contxt_window: 5\n",
			[]string{`:8:5: models[0].contxt_window: unknown field "contxt_window" (did you mean "context_window"?)`}},
		{"models entry invalid", "name: a\nmodel:\n  provider: anthropic\n  id: x\nmodels:\n  - provider: gpt\n  - provider: openai\n    max_output: 0\n  - provider: anthropic\n    id: x\n  - provider: scripted\n    id: s\n    price: {input: 1, output: -0.5}\n",
			[]string{
				`:6:5: models[0].id: required`,
				`:6:15: models[0].provider: unknown provider "gpt"`,
				`:7:5: models[1].id: required`,
				`:8:17: models[1].max_output: 0 is out of range`,
				`:10:9: models[2].id: anthropic/x is listed twice (also in model)`,
				`:11:15: models[3].provider: a scripted entry shares the file's script, and model is not scripted`,
				`:13:31: models[3].price.output: -0.5 is out of range`,
			}},
		{"models entry duplicate", ok + "models:\n  - {provider: openai, id: m}\n  - {provider: openai, id: m}\n",
			[]string{`:7:28: models[1].id: openai/m is listed twice (also in models[0])`}},
		{"several structural", "name: 1\nmodel:\n  provider: scripted\n  demo: true\n  model: x\nlimits:\n  max_depth: x\n",
			[]string{
				`:1:7: name: want a string, got the integer 1`,
				`:5:3: model.model: unknown field "model"`,
				`:7:14: limits.max_depth: want an integer, got "x"`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(path, []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; got %+v", f)
			}
			if f != nil {
				t.Errorf("got a File with the error")
			}
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			msg := err.Error()
			lines := strings.Split(msg, "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tt.want), msg)
			}
			for i, w := range tt.want {
				if !strings.Contains(msg, path+w) {
					t.Errorf("error %d: want %q in\n%s", i, path+w, msg)
				}
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, path+":") {
					t.Errorf("error line without position: %q", l)
				}
			}
		})
	}
}

const multi = `name: multi
model:
  provider: anthropic
  id: claude-sonnet-4-5
  price: {input: 3, output: 15}
models:
  - provider: anthropic
    id: claude-haiku-4-5
    context_window: 100000
    price: {input: 1, output: 5}
    rate_limit: {concurrent: 10, rpm: 600}
  - provider: openai
    id: llama3.1:8b
    max_output: 2048
    price:
      input: 0
      output: 0.5
`

func TestModels(t *testing.T) {
	f, err := Parse("m.yaml", []byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Models) != 2 || f.Models[1].MaxOutput != 2048 || f.Models[1].Price == nil || f.Models[1].Price.Output != 0.5 || f.Model.Price.Input != 3 {
		t.Fatalf("models: %+v, default %+v", f.Models, f.Model)
	}
	t.Setenv("ANTHROPIC_API_KEY", "test-key")
	t.Setenv("ANTHROPIC_BASE_URL", "")
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
	t.Setenv("OPENAI_API_KEY", "")
	r, err := f.Registry(context.Background(), testProviders())
	if err != nil {
		t.Fatal(err)
	}
	if r.Default.String() != "anthropic/claude-sonnet-4-5" {
		t.Errorf("Default = %s", r.Default)
	}
	wantModels := []string{"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5", "openai/llama3.1:8b"}
	if !reflect.DeepEqual(r.Models, wantModels) {
		t.Errorf("Models = %q", r.Models)
	}
	if want := map[string]actors.ModelLimit{"anthropic/claude-haiku-4-5": {Concurrent: 10, RPM: 600}}; !reflect.DeepEqual(r.Limits, want) {
		t.Errorf("Limits = %v", r.Limits)
	}
	if !r.Allows("openai/llama3.1:8b") || r.Allows("openai/gpt-4.1") {
		t.Error("Allows")
	}
	ms, err := r.Providers["anthropic"].Models(context.Background())
	wantInfos := []infinity.ModelInfo{
		{ID: "claude-sonnet-4-5", ContextWindow: DefaultContextWindow, MaxOutput: DefaultMaxOutput},
		{ID: "claude-haiku-4-5", ContextWindow: 100000, MaxOutput: DefaultMaxOutput},
	}
	if err != nil || !reflect.DeepEqual(ms, wantInfos) {
		t.Errorf("anthropic models = %+v, %v", ms, err)
	}
	if ms, err := r.Providers["openai"].Models(context.Background()); err != nil || len(ms) != 1 || ms[0].MaxOutput != 2048 {
		t.Errorf("openai models = %+v, %v", ms, err)
	}
	if p, ok := r.Prices.Price("anthropic/claude-haiku-4-5"); !ok || p.Output != 5 {
		t.Errorf("haiku price = %+v, %v", p, ok)
	}
	if r.Prices.Len() != 3 {
		t.Errorf("prices: %v", r.Prices.Models())
	}
	var a actors.Agent
	r.Configure(&a)
	if a.ProviderName != "anthropic" || a.Model != "claude-sonnet-4-5" || a.Provider != r.Providers["anthropic"] || len(a.Providers) != 2 {
		t.Errorf("Configure: %+v", a)
	}
	providers, err := f.Providers(context.Background(), testProviders())
	if err != nil || len(providers) != 2 {
		t.Errorf("Providers = %v, %v", providers, err)
	}
	// A program built without openai serves the file's other models; the
	// openai one is unavailable, and says why when a thread asks for it.
	without := testProviders()
	delete(without, "openai")
	r, err = f.Registry(context.Background(), without)
	if err != nil || !errors.Is(r.Unavailable["openai"], infinity.ErrNotImplemented) {
		t.Errorf("without openai: %v, %v", err, r.Unavailable)
	}
	for _, err := range r.Providers["openai"].Stream(context.Background(), infinity.CompletionRequest{}) {
		if !errors.Is(err, infinity.ErrNotImplemented) {
			t.Errorf("a completion on a provider not built in: %v", err)
		}
	}
	// Without the default model's provider, the file cannot run at all.
	delete(without, "anthropic")
	if _, err := f.Registry(context.Background(), without); !errors.Is(err, infinity.ErrNotImplemented) {
		t.Errorf("without anthropic: %v", err)
	}
}

func TestScriptedModels(t *testing.T) {
	f, err := Parse("s.yaml", []byte("name: s\nmodel: {provider: scripted, demo: true}\nmodels:\n  - {provider: scripted, id: small, context_window: 1000, price: {input: 1, output: 2}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Registry(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	def := r.Default.String()
	if r.Default.Provider != "scripted" || r.Default.Model == "" || !reflect.DeepEqual(r.Models, []string{def, "scripted/small"}) {
		t.Fatalf("registry: %+v", r)
	}
	ms, err := r.Providers["scripted"].Models(context.Background())
	if err != nil || len(ms) != 2 || ms[1].ID != "small" || ms[1].ContextWindow != 1000 {
		t.Fatalf("Models = %+v, %v", ms, err)
	}
	// Both models answer from the demo script; an unknown one is refused.
	for _, id := range []string{"", r.Default.Model, "small"} {
		req := infinity.CompletionRequest{Model: id, Items: []infinity.Item{{Kind: infinity.KindUser, Text: "hi"}}, Thread: "t1", Stack: []infinity.ThreadID{"t1"}}
		for _, err := range r.Providers["scripted"].Stream(context.Background(), req) {
			if err != nil {
				t.Errorf("model %q: %v", id, err)
			}
		}
	}
	for _, err := range r.Providers["scripted"].Stream(context.Background(), infinity.CompletionRequest{Model: "big"}) {
		if !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("model big: %v", err)
		}
	}
	// A listed model named like the script's own is a duplicate.
	f, err = Parse("s.yaml", []byte("name: s\nmodel: {provider: scripted, demo: true}\nmodels:\n  - {provider: scripted, id: "+r.Default.Model+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Registry(context.Background(), nil); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("duplicate scripted model: %v", err)
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("x.yaml", []byte("name: a\nmodel:\n  provider: gpt\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %v", err)
	}
	if e.Path != "x.yaml" || e.Line != 3 || e.Col != 13 || e.Field != "model.provider" {
		t.Errorf("got %+v", e)
	}
}

func TestModel(t *testing.T) {
	t.Run("scripted demo", func(t *testing.T) {
		f, err := Parse("demo.yaml", []byte("name: demo\nmodel:\n  provider: scripted\n  demo: true\n"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.Provider(context.Background(), testProviders())
		if err != nil {
			t.Fatal(err)
		}
		ms, err := p.Models(context.Background())
		if err != nil || len(ms) != 1 || ms[0].ID == "" {
			t.Fatalf("Models = %v, %v", ms, err)
		}
	})
	t.Run("anthropic without key", func(t *testing.T) {
		t.Setenv("ANTHROPIC_API_KEY", "")
		f, err := Parse("r.yaml", []byte("name: r\nmodel:\n  provider: anthropic\n  id: claude-sonnet-4-5\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Provider(context.Background(), testProviders())
		if err == nil || !strings.Contains(err.Error(), "set ANTHROPIC_API_KEY") {
			t.Fatalf("want an error telling to set ANTHROPIC_API_KEY, got %v", err)
		}
	})
	t.Run("anthropic with key", func(t *testing.T) {
		t.Setenv("ANTHROPIC_API_KEY", "test-key")
		t.Setenv("ANTHROPIC_BASE_URL", "")
		f, err := Parse("r.yaml", []byte("name: r\nmodel:\n  provider: anthropic\n  id: claude-sonnet-4-5\n"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.Provider(context.Background(), testProviders())
		if err != nil {
			t.Fatal(err)
		}
		ms, err := p.Models(context.Background())
		want := []infinity.ModelInfo{{ID: "claude-sonnet-4-5", ContextWindow: DefaultContextWindow, MaxOutput: DefaultMaxOutput}}
		if err != nil || !reflect.DeepEqual(ms, want) {
			t.Fatalf("Models = %v, %v", ms, err)
		}
	})
	t.Run("openai", func(t *testing.T) {
		f, err := Parse("o.yaml", []byte("name: o\nmodel:\n  provider: openai\n  id: llama3\n"))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("OPENAI_API_KEY", "")
		t.Setenv("OPENAI_BASE_URL", "")
		if _, err = f.Provider(context.Background(), testProviders()); !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "OPENAI_BASE_URL") {
			t.Fatalf("want a configuration error naming OPENAI_BASE_URL, got %v", err)
		}
		t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1") // an Ollama server needs no key
		p, err := f.Provider(context.Background(), testProviders())
		if err != nil {
			t.Fatal(err)
		}
		if ms, err := p.Models(context.Background()); err != nil || ms[0].ID != "llama3" {
			t.Fatalf("Models = %v, %v", ms, err)
		}
	})
	t.Run("bedrock", func(t *testing.T) {
		f, err := Parse("b.yaml", []byte("name: b\nmodel:\n  provider: bedrock\n  id: anthropic.claude-x\n"))
		if err != nil {
			t.Fatal(err)
		}
		// A program built without bedrock says so.
		without := testProviders()
		delete(without, "bedrock")
		if _, err = f.Provider(context.Background(), without); !errors.Is(err, infinity.ErrNotImplemented) || !strings.Contains(err.Error(), "bedrock") {
			t.Fatalf("want ErrNotImplemented naming bedrock, got %v", err)
		}
		awstest.Isolate(t)
		if _, err = f.Provider(context.Background(), testProviders()); !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Fatalf("no region: want a configuration error naming AWS_REGION, got %v", err)
		}
		t.Setenv("AWS_REGION", "us-east-1")
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		p, err := f.Provider(context.Background(), testProviders())
		if err != nil {
			t.Fatal(err)
		}
		if ms, err := p.Models(context.Background()); err != nil || ms[0].ID != "anthropic.claude-x" {
			t.Fatalf("Models = %v, %v", ms, err)
		}
	})
}

func TestExamples(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	folders, err := filepath.Glob(filepath.Join("..", "examples", "*", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, folders...)
	if len(paths) < 6 {
		t.Fatalf("want the example agent files, found %v", paths)
	}
	for _, p := range paths {
		if filepath.Base(p) == "prices.yaml" { // a prices file, not an agent
			continue
		}
		t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), func(t *testing.T) {
			f, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Model.Provider == "scripted" {
				if _, err := f.Provider(context.Background(), testProviders()); err != nil {
					t.Error(err)
				}
				// Its other models need keys only when a thread uses them.
				noKey := func([]infinity.ModelInfo) (infinity.ModelProvider, error) { return nil, errors.New("no API key") }
				r, err := f.Registry(context.Background(), Providers{"anthropic": noKey, "openai": noKey, "bedrock": noKey})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range f.Models {
					if r.Unavailable[m.Provider] == nil {
						t.Errorf("%s: not marked unavailable", m.Provider)
					}
					if _, err := r.Providers[m.Provider].Models(context.Background()); err != nil {
						t.Errorf("%s: %v", m.Provider, err)
					}
					for _, err := range r.Providers[m.Provider].Stream(context.Background(), infinity.CompletionRequest{}) {
						if err == nil || !strings.Contains(err.Error(), "no API key") {
							t.Errorf("%s: a completion on a provider without its key: %v", m.Provider, err)
						}
					}
				}
			}
		})
	}
	f, err := Load(filepath.Join("..", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Model.Demo || f.Model.Provider != "scripted" || f.Agent(nil).Name != "demo" {
		t.Errorf("demo.yaml: %+v", f)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestSchema(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	// The schema's fields are the parser's.
	props := s["properties"].(map[string]any)
	check := func(path string, props map[string]any) {
		for name := range fields[path] {
			if _, ok := props[name]; !ok {
				t.Errorf("schema lacks %s", join(path, name))
			}
		}
		if len(props) != len(fields[path]) {
			t.Errorf("schema %q has %d fields, the parser %d", path, len(props), len(fields[path]))
		}
	}
	sub := func(m map[string]any, name string) map[string]any {
		return m[name].(map[string]any)["properties"].(map[string]any)
	}
	check("", props)
	check("model", sub(props, "model"))
	check("models[]", props["models"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any))
	price := s["$defs"].(map[string]any)["price"].(map[string]any)["properties"].(map[string]any)
	check("model.price", price)
	check("models[].price", price)
	check("tools", sub(props, "tools"))
	check("limits", sub(props, "limits"))
	check("limits.slice", sub(sub(props, "limits"), "slice"))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("name: a\nmodel: {provider: scripted, demo: true}\n"))
	f.Add([]byte("name: a\nlimits:\n  max_depth: \"four\"\n  slice: {wall: 5m}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n<<: *x\n"))
	f.Add([]byte("- a\n---\n{"))
	f.Add([]byte(withTools))
	f.Add([]byte("name: a\ntools:\n  mcp:\n    - {url: 'http://x', headers: {A: {env: B}, a: {file: ~/c}}}\n    - command: x\n      env: {\"1\": {}, Y: z}\n  rap: [{url: 'http://y', timeout: {call: 1s}}, 3]\n"))
	if b, err := os.ReadFile(filepath.Join("..", "examples", "researcher.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if file != nil {
				t.Fatal("a File with an error")
			}
			return
		}
		_ = file.Agent(nil)
		_ = file.RefuseDaemonOnly()
		for _, s := range file.Tools.MCPServers {
			_, _, _ = s.Label(), s.IdleDuration(), s.Timeout.CallDuration()
		}
	})
}

func TestParseDetachedSkipsScriptLookup(t *testing.T) {
	y := []byte("name: x\nmodel:\n  provider: scripted\n  script: elsewhere.json\n")
	if _, err := Parse("/nonexistent/agent.yaml", y); err == nil {
		t.Fatal("Parse accepted a script that does not exist")
	}
	f, err := ParseDetached("/nonexistent/agent.yaml", y)
	if err != nil {
		t.Fatalf("ParseDetached: %v", err)
	}
	if f.Model.Script != "elsewhere.json" {
		t.Fatalf("script = %q", f.Model.Script)
	}
}

// testProviders is models/network.All, which this package cannot import.
func testProviders() Providers {
	return Providers{
		"anthropic": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) { return anthropic.FromEnv(models) },
		"openai":    func(models []infinity.ModelInfo) (infinity.ModelProvider, error) { return openai.FromEnv(models) },
		"bedrock": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return chain.FromConfig(context.Background(), models)
		},
	}
}

// The budget block becomes the agent's tree budget; bad values are
// refused with their place.
func TestBudgetBlock(t *testing.T) {
	f, err := Parse("a.yaml", []byte("name: a\nmodel: {provider: scripted, demo: true}\nbudget:\n  usd: 2.5\n  tokens: 1000\n  model_calls: 9\n  wall: 90m\n  max_threads: 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := infinity.Budget{USD: 2.5, Tokens: 1000, ModelCalls: 9, Wall: 90 * time.Minute, MaxThreads: 4}
	if b := f.TreeBudget(); b == nil || *b != want {
		t.Fatalf("TreeBudget = %+v, want %+v", b, want)
	}
	if f, err := Parse("a.yaml", []byte("name: a\nmodel: {provider: scripted, demo: true}\n")); err != nil || f.TreeBudget() != nil {
		t.Fatalf("no budget block: %+v, %v", f.TreeBudget(), err)
	}
	_, err = Parse("a.yaml", []byte("name: a\nmodel: {provider: scripted, demo: true}\nbudget:\n  tokens: -1\n  wall: soon\n"))
	_, err2 := Parse("a.yaml", []byte("name: a\nmodel: {provider: scripted, demo: true}\nbudget:\n  coins: 3\n"))
	err = errors.Join(err, err2)
	for _, want := range []string{"budget.tokens: -1 is negative", `budget.wall: "soon" is not a positive Go duration`, `budget.coins: unknown field "coins"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
