package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/models/bedrock"
)

// providers are the network model providers the bootstrap links: Amazon
// Bedrock, called with the function role's credentials (through the
// provider's own small event-stream client: the SDK's bedrockruntime
// client would cost about 1 MB of the budget). The Anthropic and OpenAI
// providers are not linked: an agent file that names them fails at
// start-up with an error saying so.
func providers(cfg aws.Config) agentfile.Providers {
	return agentfile.Providers{
		"bedrock": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return bedrock.New(bedrock.Config{AWS: cfg, Models: models})
		},
	}
}
