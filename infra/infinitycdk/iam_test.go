package infinitycdk

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Actions the event source mappings need on their queue.
var consume = []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}

var logs = []string{"logs:CreateLogStream", "logs:PutLogEvents"}

// TestLeastPrivilege: each role has exactly the actions its function
// calls (the full configuration, so that every optional grant is there).
func TestLeastPrivilege(t *testing.T) {
	s := synth(t, testEnv, full(t))
	want := map[string][]string{
		"agent": concat(logs, consume, []string{
			"sqs:SendMessage",
			"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
			"scheduler:CreateSchedule", "iam:PassRole", "dsql:DbConnectAdmin",
			"bedrock:InvokeModelWithResponseStream", "secretsmanager:GetSecretValue",
			"lambda:InvokeFunction", "lambda:InvokeFunctionUrl",
		}),
		"relay":    concat(logs, consume, []string{"sqs:SendMessage"}),
		"receiver": concat(logs, []string{"sqs:SendMessage", "secretsmanager:GetSecretValue"}),
		"migrate":  concat(logs, []string{"dsql:DbConnectAdmin"}),
	}
	for role, actions := range want {
		sort.Strings(actions)
		if got := s.actionsOf(s.roleOf(s.functionID(t, role))); !same(got, actions) {
			t.Errorf("%s role's actions:\n got %v\nwant %v", role, got, actions)
		}
	}
	if got := s.actionsOf(s.lid(t, s.agent.SchedulerRole)); !same(got, []string{"sqs:SendMessage"}) {
		t.Errorf("scheduler role's actions = %v", got)
	}

	// The resources of the agent's grants.
	agentRole := s.roleOf(s.functionID(t, "agent"))
	cluster := s.lid(t, s.agent.Cluster)
	table := s.lid(t, s.agent.Table)
	wantResources := map[string]string{
		"dsql:DbConnectAdmin":      "<" + cluster + ".ResourceArn>",
		"dynamodb:GetItem":         "<" + table + ".Arn>",
		"scheduler:CreateSchedule": "arn:<AWS::Partition>:scheduler:us-east-1:123456789012:schedule/" + *s.agent.ScheduleGroup.ScheduleGroupName() + "/*",
		"iam:PassRole":             "<" + s.lid(t, s.agent.SchedulerRole) + ".Arn>",
		"sqs:SendMessage": strings.Join([]string{"<" + s.lid(t, s.agent.InputQueue) + ".Arn>", "<" + s.lid(t, s.agent.RelayQueue) + ".Arn>",
			"<" + s.lid(t, s.agent.OutputQueue) + ".Arn>", "<" + s.lid(t, s.agent.InputDeadLetterQueue) + ".Arn>"}, " "),
		"bedrock:InvokeModelWithResponseStream": strings.Join([]string{
			"arn:<AWS::Partition>:bedrock:us-east-1:123456789012:inference-profile/" + sonnetProfile,
			"arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
			"arn:<AWS::Partition>:bedrock:us-east-1::foundation-model/" + haikuModel,
			"arn:<AWS::Partition>:bedrock:us-east-1:123456789012:inference-profile/" + opusGlobal,
			"arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.claude-opus-4-5-20251101-v1:0",
		}, " "),
	}
	for _, st := range s.statements() {
		if st.roles[0] != agentRole {
			continue
		}
		if want, ok := wantResources[st.actions[0]]; ok {
			var got []string
			for _, r := range st.resources {
				got = append(got, render(r))
			}
			if strings.Join(got, " ") != want {
				t.Errorf("%v on\n got %s\nwant %s", st.actions, strings.Join(got, " "), want)
			}
			if st.actions[0] == "iam:PassRole" && render(st.raw["Condition"]) != `{"StringEquals":{"iam:PassedToService":"scheduler.amazonaws.com"}}` {
				t.Errorf("iam:PassRole condition = %s", render(st.raw["Condition"]))
			}
		}
	}
}

// TestNoWildcards: no action is a wildcard, and the only resources with one
// are the two that the services require (schedule names, and the region
// of a cross-region inference profile's foundation model).
func TestNoWildcards(t *testing.T) {
	s := synth(t, nil, full(t))
	allowed := []*regexp.Regexp{
		regexp.MustCompile(`^arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/[^*/]+/\*$`),
		regexp.MustCompile(`^arn:<AWS::Partition>:bedrock:\*::foundation-model/[^*]+$`),
	}
	for _, st := range s.statements() {
		for _, a := range st.actions {
			if strings.Contains(a, "*") {
				t.Errorf("policy %s allows %q", st.policy, a)
			}
		}
		for _, r := range st.resources {
			res := render(r)
			if !strings.Contains(res, "*") {
				continue
			}
			ok := false
			for _, re := range allowed {
				ok = ok || re.MatchString(res)
			}
			if !ok {
				t.Errorf("policy %s: %v on %s", st.policy, st.actions, res)
			}
		}
	}
}

func TestCrossRegion(t *testing.T) {
	for id, want := range map[string]string{
		sonnetProfile:               "anthropic.claude-sonnet-4-5-20250929-v1:0",
		opusGlobal:                  "anthropic.claude-opus-4-5-20251101-v1:0",
		"apac.amazon.nova-pro-v1:0": "amazon.nova-pro-v1:0",
		haikuModel:                  "",
		"us.nodot":                  "",
		"meta.llama3":               "",
	} {
		got, ok := crossRegion(id)
		if got != want || ok != (want != "") {
			t.Errorf("crossRegion(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestBedrockARNsOfARNs: a model given as an ARN is granted as it is, with
// the foundation model of a cross-region profile.
func TestBedrockARNsOfARNs(t *testing.T) {
	stack := awscdk.NewStack(awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())}), jsii.String("S"), &awscdk.StackProps{Env: testEnv})
	profile := "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0"
	app := "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
	got := bedrockARNs(stack, []string{profile, app, profile})
	if len(got) != 3 || *got[0] != profile || !strings.HasSuffix(*got[1], ":bedrock:*::foundation-model/amazon.nova-pro-v1:0") || *got[2] != app {
		for _, a := range got {
			t.Errorf("bedrockARNs gave %s", *a)
		}
	}
}
