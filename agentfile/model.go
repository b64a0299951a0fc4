package agentfile

import (
	"context"
	"fmt"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/anthropic"
	"github.com/infinity-runtime/infinity/models/openai"
	"github.com/infinity-runtime/infinity/models/scripted"
)

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
// built-in demo), anthropic (the key from ANTHROPIC_API_KEY), openai (OPENAI_BASE_URL,
// OPENAI_API_KEY); bedrock yields an error wrapping infinity.ErrNotImplemented.
func (f *File) Provider(ctx context.Context) (infinity.ModelProvider, error) {
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
	case "anthropic", "openai":
		models := []infinity.ModelInfo{modelInfo(m)}
		if m.Provider == "openai" {
			p, err := openai.FromEnv(models)
			if err != nil {
				return nil, fmt.Errorf("%s: model provider openai: %w (set OPENAI_BASE_URL for Ollama, vLLM or llama.cpp, or OPENAI_API_KEY for OpenAI)", f.path, err)
			}
			return p, nil
		}
		p, err := anthropic.FromEnv(models)
		if err != nil {
			return nil, fmt.Errorf("%s: model provider anthropic: %w (set ANTHROPIC_API_KEY to your API key)", f.path, err)
		}
		return p, nil
	case "bedrock":
		return nil, fmt.Errorf("%s: model provider bedrock is not available yet; use scripted, anthropic or openai: %w", f.path, infinity.ErrNotImplemented)
	}
	return nil, fmt.Errorf("%s: model.provider %q is unknown: %w", f.path, m.Provider, infinity.ErrInvalid)
}

// RequireNoTools reports, as an error wrapping infinity.ErrNotImplemented,
// the first RAP or MCP tool server the file configures: tool servers are
// not wired up yet.
func (f *File) RequireNoTools() error {
	if len(f.Tools.RAP) > 0 {
		return fmt.Errorf("%s: tools.rap: RAP tool server %s is not supported yet (RAP tools arrive with the tools issue): %w", f.path, f.Tools.RAP[0], infinity.ErrNotImplemented)
	}
	if len(f.Tools.MCP) > 0 {
		return fmt.Errorf("%s: tools.mcp: MCP tool server %s is not supported yet (MCP tools arrive with the tools issue): %w", f.path, f.Tools.MCP[0], infinity.ErrNotImplemented)
	}
	return nil
}

// modelInfo fills in the defaults of a network model's limits.
func modelInfo(m ModelSpec) infinity.ModelInfo {
	info := infinity.ModelInfo{ID: m.ID, ContextWindow: m.ContextWindow, MaxOutput: m.MaxOutput}
	if info.ContextWindow <= 0 {
		info.ContextWindow = DefaultContextWindow
	}
	if info.MaxOutput <= 0 {
		info.MaxOutput = min(DefaultMaxOutput, info.ContextWindow)
	}
	return info
}
