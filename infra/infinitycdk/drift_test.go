package infinitycdk

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/infinity-runtime/infinity/cloud"
)

// knownEnv are the variables the bootstrap reads (package cloud).
var knownEnv = map[string]bool{}

func init() {
	for _, name := range []string{
		cloud.EnvRole, cloud.EnvRegion, cloud.EnvInputQueueURL, cloud.EnvInputQueueARN, cloud.EnvRelayQueueURL,
		cloud.EnvOutputQueueURL, cloud.EnvDeadLetterURL, cloud.EnvSchedulerRoleARN, cloud.EnvScheduleGroup,
		cloud.EnvStateTable, cloud.EnvDSQLEndpoint, cloud.EnvDSQLUser, cloud.EnvDatabaseURL, cloud.EnvAgentFile,
		cloud.EnvSliceMargin, cloud.EnvRAPKey, cloud.EnvRAPCallbackURL, cloud.EnvRAPKeySecretARN,
		cloud.EnvMaxReceiveCount, cloud.EnvModel, cloud.EnvTools, cloud.EnvModelKeysSecretARN,
	} {
		knownEnv[name] = true
	}
}

// TestEnvironmentPassesLoadConfig: every function's synthesized
// environment, with plausible values in place of CloudFormation's
// references, passes the bootstrap's own configuration check, so the
// construct and the bootstrap cannot drift apart.
func TestEnvironmentPassesLoadConfig(t *testing.T) {
	for name, c := range map[string]struct {
		env  *awscdk.Environment
		edit func(awscdk.Stack, *InfinityAgentProps)
	}{
		"default, environment-agnostic": {nil, nil},
		"full, us-east-1":               {testEnv, full(t)},
	} {
		s := synth(t, c.env, c.edit)
		configs := map[string]cloud.Config{}
		for _, role := range []string{"agent", "relay", "receiver", "migrate"} {
			env := map[string]string{"AWS_REGION": "us-east-1"} // Lambda sets it
			for k, v := range s.functionEnv(t, role) {
				if !knownEnv[k] {
					t.Errorf("%s: the %s function sets %s, which the bootstrap does not read", name, role, k)
				}
				env[k] = s.resolve(t, v)
			}
			cfg, err := cloud.LoadConfig(func(k string) string { return env[k] })
			if err != nil {
				t.Errorf("%s: the %s function's environment fails cloud.LoadConfig: %v\n%v", name, role, err, env)
			}
			if string(cfg.Role) != role {
				t.Errorf("%s: the %s function has role %q", name, role, cfg.Role)
			}
			configs[role] = cfg
		}
		agent, relay := configs["agent"], configs["relay"]
		if want := s.resolve(t, ref(s.lid(t, s.agent.InputDeadLetterQueue))); agent.DeadLetterURL != want {
			t.Errorf("%s: agent dead-letter URL %q, want the input DLQ's %q", name, agent.DeadLetterURL, want)
		}
		if want := s.resolve(t, ref(s.lid(t, s.agent.RelayDeadLetterQueue))); relay.DeadLetterURL != want {
			t.Errorf("%s: relay dead-letter URL %q, want the relay DLQ's %q", name, relay.DeadLetterURL, want)
		}
		redrive := s.props(s.lid(t, s.agent.InputQueue))["RedrivePolicy"].(map[string]any)["maxReceiveCount"]
		if float64(agent.MaxReceiveCount) != redrive {
			t.Errorf("%s: agent MaxReceiveCount %d, redrive maxReceiveCount %v", name, agent.MaxReceiveCount, redrive)
		}
		if c.edit != nil {
			if len(agent.Tools.RAP) != 2 || len(agent.Tools.MCP) != 1 || agent.Tools.MCP[0].HeadersSecretARN == "" ||
				agent.RAPKeySecretARN == "" || agent.RAPCallbackURL == "" || agent.Model != "bedrock/"+haikuModel {
				t.Errorf("%s: agent configuration %+v, want 2 RAP and 1 MCP servers, the RAP key and callback, the model", name, agent)
			}
		}
	}
}

// resolve replaces CloudFormation's references in a template value by
// plausible values of the kinds the bootstrap checks (queue URLs, ARNs,
// host names).
func (s *synthed) resolve(t *testing.T, v any) string {
	t.Helper()
	const region, account = "us-east-1", "123456789012"
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if j, ok := v["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, s.resolve(t, p))
			}
			return strings.Join(parts, j[0].(string))
		}
		if id, ok := v["Ref"].(string); ok {
			switch id {
			case "AWS::Region":
				return region
			case "AWS::AccountId":
				return account
			case "AWS::Partition":
				return "aws"
			case "AWS::URLSuffix":
				return "amazonaws.com"
			}
			switch typ := s.typeOf(t, id); typ {
			case "AWS::SQS::Queue":
				name := id
				if s.props(id)["FifoQueue"] == true {
					name += ".fifo"
				}
				return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", region, account, name)
			case "AWS::SecretsManager::Secret":
				return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", region, account, id)
			case "AWS::DynamoDB::GlobalTable", "AWS::Lambda::Function":
				return id
			default:
				t.Fatalf("no stand-in for Ref of %s (%s)", id, typ)
			}
		}
		if g, ok := v["Fn::GetAtt"].([]any); ok {
			id, attr := g[0].(string), g[1].(string)
			switch typ := s.typeOf(t, id); {
			case attr == "Endpoint" && typ == "AWS::DSQL::Cluster":
				return strings.ToLower(id) + ".dsql." + region + ".on.aws"
			case attr == "FunctionUrl":
				return "https://" + strings.ToLower(id) + ".lambda-url." + region + ".on.aws/"
			case attr == "Arn" && typ == "AWS::SQS::Queue":
				return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, account, id)
			case attr == "Arn" && typ == "AWS::IAM::Role":
				return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, id)
			default:
				t.Fatalf("no stand-in for %s.%s (%s)", id, attr, typ)
			}
		}
	}
	t.Fatalf("cannot resolve %s", render(v))
	return ""
}

func (s *synthed) typeOf(t *testing.T, id string) string {
	t.Helper()
	r, ok := s.json["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return r["Type"].(string)
}
