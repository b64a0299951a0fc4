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
	"github.com/infinity-runtime/infinity/models/anthropic"
	"github.com/infinity-runtime/infinity/models/bedrock"
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
		Tools:       Tools{RAP: []string{"http://127.0.0.1:9000"}, MCP: []string{"https://example.com/mcp"}},
		Limits:      Limits{MaxDepth: 4, MaxChildren: 10, MaxTokens: 2048, Slice: Slice{Completions: 12, Wall: "90s"}},
		path:        "agents/researcher.yaml",
	}
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
	if len(f.Tools.RAP) != 1 || f.Tools.RAP[0] != "http://127.0.0.1:9000" {
		t.Errorf("tools.rap: %q", f.Tools.RAP)
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
		isolateAWSEnv(t)
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
	if len(paths) < 2 {
		t.Fatalf("want the example agent files, found %v", paths)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Model.Provider == "scripted" {
				if _, err := f.Provider(context.Background(), testProviders()); err != nil {
					t.Error(err)
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
			return bedrock.FromConfig(context.Background(), models)
		},
	}
}

// isolateAWSEnv points the default AWS chain at no files and no ambient
// credentials or region.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
