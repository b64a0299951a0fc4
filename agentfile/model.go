package agentfile

import (
	"context"
	"fmt"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// Network builds a network model provider from the environment (API keys
// are read there, never from the file) for the file's model.
type Network func(models []infinity.ModelInfo) (infinity.ModelProvider, error)

// Providers are the network providers a program is built with, by the
// name an agent file gives in model.provider. The scripted provider is
// always there. Keeping this a parameter lets a binary leave out the SDKs
// it does not need (the Lambda bootstrap's size is budgeted);
// models/network.All has every one.
type Providers map[string]Network

// hints say how to configure a network provider when it fails to start.
var hints = map[string]string{
	"openai":    "set OPENAI_BASE_URL for Ollama, vLLM or llama.cpp, or OPENAI_API_KEY for OpenAI",
	"anthropic": "set ANTHROPIC_API_KEY to your API key",
	"bedrock":   "credentials and region come from the default AWS chain: set AWS_REGION (or a profile's region) and AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
}

// Agent returns the engine's agent configuration with the given tools.
// Limits left out of the file are zero, which the engine reads as its
// defaults.
func (f *File) Agent(tools []infinity.Tool) actors.Agent {
	return actors.Agent{
		Name:        f.Name,
		Model:       f.Model.ID,
		System:      f.System,
		Tools:       tools,
		MaxDepth:    f.Limits.MaxDepth,
		MaxChildren: f.Limits.MaxChildren,
		MaxTokens:   f.Limits.MaxTokens,
		Budget: actors.Budget{
			Completions: f.Limits.Slice.Completions,
			Wall:        f.Limits.Slice.WallDuration(),
		},
	}
}

// Provider builds the file's model provider: scripted (its script, or the
// built-in demo), or the network provider of that name in ps (anthropic,
// openai, bedrock). A known provider this program was built without yields
// an error wrapping infinity.ErrNotImplemented.
func (f *File) Provider(ctx context.Context, ps Providers) (infinity.ModelProvider, error) {
	m := f.Model
	switch m.Provider {
	case "scripted":
		var s scripted.Script
		if m.Demo {
			s = scripted.Demo()
		} else {
			var err error
			if s, err = scripted.Load(f.ScriptPath()); err != nil {
				return nil, fmt.Errorf("%s: model.script: %w", f.path, err)
			}
		}
		if m.ID != "" {
			s.Model = m.ID
		}
		if m.ContextWindow > 0 {
			s.ContextWindow = m.ContextWindow
		}
		p, err := scripted.New(s)
		if err != nil {
			return nil, fmt.Errorf("%s: model: %w", f.path, err)
		}
		return p, nil
	case "anthropic", "openai", "bedrock":
		build := ps[m.Provider]
		if build == nil {
			return nil, fmt.Errorf("%s: model provider %s is not built into this program: %w", f.path, m.Provider, infinity.ErrNotImplemented)
		}
		p, err := build([]infinity.ModelInfo{modelInfo(m)})
		if err != nil {
			return nil, fmt.Errorf("%s: model provider %s: %w (%s)", f.path, m.Provider, err, hints[m.Provider])
		}
		return p, nil
	}
	return nil, fmt.Errorf("%s: model.provider %q is unknown: %w", f.path, m.Provider, infinity.ErrInvalid)
}

// modelInfo fills in the defaults of a network model's limits.
func modelInfo(m ModelSpec) infinity.ModelInfo {
	info := infinity.ModelInfo{ID: m.ID, ContextWindow: m.ContextWindow, MaxOutput: m.MaxOutput, Images: m.Images}
	if info.ContextWindow <= 0 {
		info.ContextWindow = DefaultContextWindow
	}
	if info.MaxOutput <= 0 {
		info.MaxOutput = min(DefaultMaxOutput, info.ContextWindow)
	}
	return info
}
