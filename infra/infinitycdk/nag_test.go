package infinitycdk

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
)

// TestAwsSolutionsChecks: cdk-nag's AwsSolutions pack (applied by synth)
// finds no error or warning that is not suppressed, in the default and in
// the full configuration.
func TestAwsSolutionsChecks(t *testing.T) {
	for name, edit := range map[string]func(awscdk.Stack, *InfinityAgentProps){
		"default": nil,
		"full":    full(t),
		"iam receiver": func(_ awscdk.Stack, p *InfinityAgentProps) {
			p.ReceiverAuth = awslambda.FunctionUrlAuthType_AWS_IAM
		},
		"mcp headers secret imported by name": func(stack awscdk.Stack, p *InfinityAgentProps) {
			p.Tools = []ToolSet{NewMcpToolSet("https://mcp.example.com/mcp",
				awssecretsmanager.Secret_FromSecretNameV2(stack, jsii.String("Imported"), jsii.String("mcp-headers")))}
		},
		"model keys imported by name": func(stack awscdk.Stack, p *InfinityAgentProps) {
			p.AgentFile = writeFile(t, t.TempDir(), "claude.yaml", "name: c\nmodel:\n  provider: anthropic\n  id: claude-sonnet-4-5\n")
			p.ModelKeys = awssecretsmanager.Secret_FromSecretNameV2(stack, jsii.String("ModelKeys"), jsii.String("infinity/model-keys"))
		},
	} {
		s := synth(t, nil, edit)
		a := assertions.Annotations_FromStack(s.stack)
		nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		for _, m := range append(*a.FindError(jsii.String("*"), nag), *a.FindWarning(jsii.String("*"), nag)...) {
			t.Errorf("%s: %s: %v", name, *m.Id, m.Entry.Data)
		}
	}
}

// TestSuppressionsAreJustified: the construct suppresses only the findings
// it means to, each with a reason.
func TestSuppressionsAreJustified(t *testing.T) {
	s := synth(t, nil, full(t))
	want := map[string]bool{"AwsSolutions-SMG4": true, "AwsSolutions-SQS3": true, "AwsSolutions-IAM5": true}
	seen := map[string]bool{}
	for id, r := range s.json["Resources"].(map[string]any) {
		md, _ := r.(map[string]any)["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		for _, sup := range list(nag["rules_to_suppress"]) {
			sup := sup.(map[string]any)
			rule, _ := sup["id"].(string)
			reason, _ := sup["reason"].(string)
			seen[rule] = true
			if !want[rule] {
				t.Errorf("%s suppresses %s, which the construct does not mean to", id, rule)
			}
			if len(strings.Fields(reason)) < 15 {
				t.Errorf("%s suppresses %s with the short reason %q", id, rule, reason)
			}
			if rule == "AwsSolutions-IAM5" && sup["applies_to"] == nil {
				t.Errorf("%s suppresses every wildcard, not the two it means to", id)
			}
		}
	}
	for rule := range want {
		if !seen[rule] {
			t.Errorf("no suppression of %s (is it still needed?)", rule)
		}
	}
}
