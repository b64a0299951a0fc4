package infinitycdk

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
)

// Bedrock model ids of the full fixture: a cross-region (us) and a
// global inference profile, and a foundation model.
const (
	sonnetProfile = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	opusGlobal    = "global.anthropic.claude-opus-4-5-20251101-v1:0"
	haikuModel    = "anthropic.claude-3-haiku-20240307-v1:0"
)

// bedrockAgentFile is an agent file on Bedrock with a RAP server.
const bedrockAgentFile = `name: researcher
model:
  provider: bedrock
  id: ` + sonnetProfile + `
models:
  - provider: bedrock
    id: ` + haikuModel + `
  - provider: bedrock
    id: ` + opusGlobal + `
tools:
  rap: [https://rap.example.com/]
`

// full configures an agent with everything: a Bedrock agent file and a
// model override, RAP tool sets from a URL and from a function, and an
// MCP tool set with a headers secret.
func full(t *testing.T) func(stack awscdk.Stack, p *InfinityAgentProps) {
	return func(stack awscdk.Stack, p *InfinityAgentProps) {
		p.AgentFile = writeFile(t, t.TempDir(), "researcher.yaml", bedrockAgentFile)
		p.Model = "bedrock/" + haikuModel
		headers := awssecretsmanager.NewSecret(stack, jsii.String("McpHeaders"), nil)
		suppress(headers, "AwsSolutions-SMG4", "A test fixture: the application's MCP headers secret, "+
			"whose rotation is the application's business, not the construct's.")
		p.Tools = []ToolSet{
			RapToolSetFromURL("https://tools.example.com/rap/"),
			RapToolSetFromFunction(toolServer(t, stack)),
			NewMcpToolSet("https://mcp.example.com/mcp", headers),
		}
	}
}

// toolServer is a RAP tool server function of the application's, with a
// role of its own (no managed policy).
func toolServer(t *testing.T, stack awscdk.Stack) awslambda.Function {
	dir := t.TempDir()
	writeFile(t, dir, "bootstrap", "#!/bin/sh\n")
	role := awsiam.NewRole(stack, jsii.String("ToolsRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	return awslambda.NewFunction(stack, jsii.String("Tools"), &awslambda.FunctionProps{
		Runtime: awslambda.Runtime_PROVIDED_AL2023(),
		Handler: jsii.String("bootstrap"),
		Code:    awslambda.Code_FromAsset(jsii.String(dir), nil),
		Role:    role,
	})
}
