// Package network lists the network model providers an agent file can
// name, for programs that want all of them (the CLI and the daemon).
package network

import (
	"context"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/models/anthropic"
	"github.com/infinity-runtime/infinity/models/bedrock/chain"
	"github.com/infinity-runtime/infinity/models/openai"
)

// All returns every network provider, each configured from the
// environment (bedrock from the default AWS configuration chain).
func All() agentfile.Providers {
	return agentfile.Providers{
		"anthropic": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) { return anthropic.FromEnv(models) },
		"openai":    func(models []infinity.ModelInfo) (infinity.ModelProvider, error) { return openai.FromEnv(models) },
		"bedrock": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return chain.FromConfig(context.Background(), models)
		},
	}
}
