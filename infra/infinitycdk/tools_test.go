package infinitycdk

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
)

func TestToolSets(t *testing.T) {
	var tools awslambda.Function
	s := synth(t, testEnv, func(stack awscdk.Stack, p *InfinityAgentProps) {
		tools = toolServer(t, stack)
		p.Tools = []ToolSet{RapToolSetFromURL("https://tools.example.com/rap/"), RapToolSetFromFunction(tools)}
	})
	// INFINITY_TOOLS lists the servers, the function's by its Function URL.
	var got struct {
		RAP []string `json:"rap"`
		MCP []any    `json:"mcp"`
	}
	if err := json.Unmarshal([]byte(s.resolve(t, s.functionEnv(t, "agent")[envTools])), &got); err != nil {
		t.Fatal(err)
	}
	toolsURL := s.lid(t, tools.Node().FindChild(jsii.String("FunctionUrl")))
	if len(got.RAP) != 2 || got.RAP[0] != "https://tools.example.com/rap/" ||
		got.RAP[1] != "https://"+strings.ToLower(toolsURL)+".lambda-url.us-east-1.on.aws/" || got.MCP != nil {
		t.Errorf("INFINITY_TOOLS = %+v", got)
	}
	assert(t, "the tool server's IAM Function URL", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), map[string]any{
			"AuthType": "AWS_IAM", "TargetFunctionArn": getAtt(s.lid(t, tools), "Arn"),
		})
	})
	// The agent may invoke the tool server through its URL, and nothing else.
	agentRole := s.roleOf(s.functionID(t, "agent"))
	for _, st := range s.statements() {
		if st.roles[0] == agentRole && len(st.actions) == 1 && (st.actions[0] == "lambda:InvokeFunctionUrl" || st.actions[0] == "lambda:InvokeFunction") {
			if !same(st.resources, []any{getAtt(s.lid(t, tools), "Arn")}) {
				t.Errorf("%s on %s, want the tool server only", st.actions[0], render(st.resources))
			}
		}
	}
}

func TestMcpToolSet(t *testing.T) {
	var headers awssecretsmanager.Secret
	s := synth(t, testEnv, func(stack awscdk.Stack, p *InfinityAgentProps) {
		headers = awssecretsmanager.NewSecret(stack, jsii.String("Headers"), nil)
		p.Tools = []ToolSet{NewMcpToolSet("https://mcp.example.com/mcp", headers), NewMcpToolSet("https://open.example.com/mcp", nil)}
	})
	secretARN := s.resolve(t, ref(s.lid(t, headers)))
	var got map[string][]map[string]string
	if err := json.Unmarshal([]byte(s.resolve(t, s.functionEnv(t, "agent")[envTools])), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string][]map[string]string{"mcp": {
		{"url": "https://mcp.example.com/mcp", "headers_secret_arn": secretARN},
		{"url": "https://open.example.com/mcp"},
	}}
	if !same(got, want) {
		t.Errorf("INFINITY_TOOLS = %v, want %v", got, want)
	}
	agentRole := s.roleOf(s.functionID(t, "agent"))
	found := false
	for _, st := range s.statements() {
		if st.roles[0] == agentRole && same(st.actions, []string{"secretsmanager:GetSecretValue"}) {
			found = found || same(st.resources, []any{ref(s.lid(t, headers))})
		}
	}
	if !found {
		t.Errorf("the agent may not read the MCP headers secret")
	}
	// MCP servers need no RAP key.
	if _, ok := s.functionEnv(t, "agent")[envRAPKeySecret]; ok {
		t.Errorf("an agent with MCP servers only has %s", envRAPKeySecret)
	}
}
