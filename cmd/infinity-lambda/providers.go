package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/models/bedrock"
)

// providers are the network model providers the bootstrap links: Amazon
// Bedrock, called with the function role's credentials. (The Anthropic SDK
// would add tens of MB, and even the OpenAI provider, plain net/http, would
// take the bootstrap past its 15 MB budget; an agent file that names them
// fails at start-up with an error saying so.)
func providers(cfg aws.Config) agentfile.Providers {
	return agentfile.Providers{
		"bedrock": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return bedrock.New(bedrock.Config{Client: bedrockruntime.NewFromConfig(cfg), Models: models})
		},
	}
}
