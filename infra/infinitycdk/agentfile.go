package infinitycdk

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/examples"
)

// agentSpec is what the construct needs of the agent file at synth time.
type agentSpec struct {
	// file is the parsed agent file; nil for the bundled demo agent.
	file *agentfile.File
	// models are the agent's models as "provider/id", as the bootstrap
	// lists them (the default first).
	models []string
	// bedrock are the ids of its Bedrock models.
	bedrock []string
	// rap and mcp say whether the file lists RAP and MCP servers.
	rap, mcp bool
	// keys lists the providers whose keys the function needs (anthropic,
	// openai): ModelKeys is required then.
	keys []string
}

// readAgent parses the agent file at path (the bundled demo agent when
// path is empty) the way the bootstrap will, and checks that model, when
// set, is one of its models.
func readAgent(path, model string) (agentSpec, error) {
	var f *agentfile.File
	var err error
	if path == "" {
		demo, _ := examples.Get("demo")
		f, err = agentfile.ParseDetached("demo.yaml", demo)
	} else {
		f, err = agentfile.Load(path)
	}
	if err != nil {
		return agentSpec{}, fmt.Errorf("AgentFile: %w", err)
	}
	if err := f.RefuseDaemonOnly(); err != nil {
		return agentSpec{}, fmt.Errorf("AgentFile: %w", err) // the functions start no programs and show no one an authorization URL
	}
	spec := agentSpec{rap: len(f.Tools.RAP) > 0, mcp: len(f.Tools.MCP) > 0}
	if path != "" {
		spec.file = f
	}
	for _, m := range append([]agentfile.ModelSpec{f.Model}, f.Models...) {
		switch m.Provider {
		case "scripted":
		case "bedrock":
			spec.bedrock = append(spec.bedrock, m.ID)
		case "anthropic", "openai":
			if !slices.Contains(spec.keys, m.Provider) {
				spec.keys = append(spec.keys, m.Provider)
			}
		default:
			return agentSpec{}, fmt.Errorf("AgentFile %s: model provider %s: the Lambda bootstrap serves scripted, bedrock, anthropic and openai models only", path, m.Provider)
		}
	}
	// The registry lists the models as the bootstrap does (a scripted
	// default without an id takes its script's); the network providers
	// are stubbed, as nothing is called at synth time.
	reg, err := f.Registry(context.Background(), agentfile.Providers{"bedrock": stubProvider, "anthropic": stubProvider, "openai": stubProvider})
	if err != nil {
		return agentSpec{}, fmt.Errorf("AgentFile: %w", err)
	}
	spec.models = reg.Models
	if model != "" && !reg.Allows(model) {
		which := "the agent file's"
		if path == "" {
			which = "the bundled demo agent's (set AgentFile)"
		}
		return agentSpec{}, fmt.Errorf("Model: %q is not one of %s models (%s)", model, which, strings.Join(reg.Models, ", "))
	}
	return spec, nil
}

// stubProvider stands for a network provider at synth time.
func stubProvider(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
	return stub(slices.Clone(models)), nil
}

type stub []infinity.ModelInfo

func (s stub) Models(context.Context) ([]infinity.ModelInfo, error) { return s, nil }

func (s stub) Stream(context.Context, infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		yield(infinity.StreamEvent{}, fmt.Errorf("infinitycdk: no model is called at synth time: %w", infinity.ErrNotImplemented))
	}
}
