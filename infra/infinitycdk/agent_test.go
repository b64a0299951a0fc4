package infinitycdk

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

func TestQueues(t *testing.T) {
	s := synth(t, testEnv, nil)
	input := s.lid(t, s.agent.InputQueue)
	inputDLQ := s.lid(t, s.agent.InputDeadLetterQueue)
	relay := s.lid(t, s.agent.RelayQueue)
	relayDLQ := s.lid(t, s.agent.RelayDeadLetterQueue)
	output := s.lid(t, s.agent.OutputQueue)
	assert(t, "five queues", func() { s.tpl.ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(5)) })
	assert(t, "the input queue", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
			"FifoQueue":                 true,
			"ContentBasedDeduplication": true,
			"DeduplicationScope":        "messageGroup",
			"FifoThroughputLimit":       "perMessageGroupId",
			"RedrivePolicy":             map[string]any{"deadLetterTargetArn": getAtt(inputDLQ, "Arn"), "maxReceiveCount": 5},
		})
	})
	if p := s.props(inputDLQ); p["FifoQueue"] != true {
		t.Errorf("input dead-letter queue %v: want FIFO (a FIFO queue's DLQ must be FIFO)", p)
	}
	if p := s.props(relay); p["FifoQueue"] != nil ||
		!same(p["RedrivePolicy"], map[string]any{"deadLetterTargetArn": getAtt(relayDLQ, "Arn"), "maxReceiveCount": 5}) {
		t.Errorf("relay queue %v: want standard with a redrive policy to its own dead-letter queue", p)
	}
	for _, q := range []string{relayDLQ, output} {
		if p := s.props(q); p["FifoQueue"] != nil || p["RedrivePolicy"] != nil {
			t.Errorf("queue %s %v: want a standard queue without redrive", q, p)
		}
	}
	// The visibility timeouts exceed 6 times their function's timeout.
	for q, role := range map[string]string{input: "agent", relay: "relay"} {
		vis := s.props(q)["VisibilityTimeout"].(float64)
		timeout := s.props(s.functionID(t, role))["Timeout"].(float64)
		if vis < VisibilityFactor*timeout {
			t.Errorf("%s queue visibility %v s < %d × the %s function's timeout %v s", role, vis, VisibilityFactor, role, timeout)
		}
	}
	// Every queue refuses requests without TLS and is encrypted at rest.
	for id, q := range s.resources("AWS::SQS::Queue") {
		if q["Properties"].(map[string]any)["SqsManagedSseEnabled"] != true {
			t.Errorf("queue %s: not encrypted at rest", id)
		}
	}
	assert(t, "TLS-only queue policies", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
			"PolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
			}}},
		}, jsii.Number(5))
	})
}

func TestFunctions(t *testing.T) {
	s := synth(t, testEnv, nil)
	assert(t, "four functions of one asset", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Runtime": "provided.al2023", "Architectures": []any{"arm64"}, "Handler": "bootstrap",
		}, jsii.Number(4))
	})
	keys := map[string]bool{}
	for _, fn := range s.resources("AWS::Lambda::Function") {
		keys[render(fn["Properties"].(map[string]any)["Code"].(map[string]any)["S3Key"])] = true
	}
	if len(keys) != 1 {
		t.Errorf("the functions' code comes from %d assets, want 1: %v", len(keys), keys)
	}
	for _, role := range []string{"agent", "relay", "receiver", "migrate"} {
		s.functionEnv(t, role) // fails the test if it is missing
	}
	if got := s.functionEnv(t, "agent")[envAgentFile]; got != nil {
		t.Errorf("without an agent file, %s = %v, want it unset (the bundled demo)", envAgentFile, got)
	}
	// Event sources: the input queue feeds the agent, the relay queue the
	// relay, both reporting batch item failures.
	for role, queue := range map[string]constructs.IConstruct{"agent": s.agent.InputQueue, "relay": s.agent.RelayQueue} {
		assert(t, role+" event source", func() {
			s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
				"EventSourceArn":        getAtt(s.lid(t, queue), "Arn"),
				"FunctionName":          ref(s.functionID(t, role)),
				"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
				"BatchSize":             10,
				"ScalingConfig":         assertions.Match_Absent(),
			})
		})
	}
	for _, role := range []string{"agent", "relay"} {
		if got := s.props(s.functionID(t, role))["RecursiveLoop"]; got != "Allow" {
			t.Errorf("%s function RecursiveLoop = %v, want Allow (it feeds the queues that trigger it)", role, got)
		}
	}
	assert(t, "the receiver's public Function URL", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), map[string]any{
			"AuthType": "NONE", "TargetFunctionArn": getAtt(s.functionID(t, "receiver"), "Arn"),
		})
	})
	assert(t, "log groups", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"), map[string]any{"RetentionInDays": 30}, jsii.Number(4))
	})
}

func TestStores(t *testing.T) {
	s := synth(t, testEnv, nil)
	assert(t, "the DSQL cluster", func() {
		s.tpl.HasResource(jsii.String("AWS::DSQL::Cluster"), map[string]any{
			"Properties": map[string]any{"DeletionProtectionEnabled": true}, "DeletionPolicy": "Retain",
		})
	})
	assert(t, "the state table", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::GlobalTable"), map[string]any{
			"BillingMode": "PAY_PER_REQUEST",
			"KeySchema": []any{
				map[string]any{"AttributeName": "pk", "KeyType": "HASH"},
				map[string]any{"AttributeName": "sk", "KeyType": "RANGE"},
			},
			"AttributeDefinitions": []any{
				map[string]any{"AttributeName": "pk", "AttributeType": "S"},
				map[string]any{"AttributeName": "sk", "AttributeType": "S"},
			},
			"TimeToLiveSpecification": map[string]any{"AttributeName": "ttl", "Enabled": true},
			"Replicas": []any{map[string]any{
				"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
				"DeletionProtectionEnabled":        true,
			}},
		})
	})
	assert(t, "the schedule group", func() { s.tpl.ResourceCountIs(jsii.String("AWS::Scheduler::ScheduleGroup"), jsii.Number(1)) })
	assert(t, "the RAP key", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::SecretsManager::Secret"), map[string]any{
			"GenerateSecretString": map[string]any{
				"PasswordLength": 64, "ExcludeUppercase": true, "ExcludePunctuation": true,
				"IncludeSpace": false, "ExcludeCharacters": "ghijklmnopqrstuvwxyz",
			},
		})
	})
}

func TestSchedulerRole(t *testing.T) {
	s := synth(t, nil, nil)
	role := s.lid(t, s.agent.SchedulerRole)
	trust := s.props(role)["AssumeRolePolicyDocument"].(map[string]any)["Statement"]
	want := []any{map[string]any{
		"Action":    "sts:AssumeRole",
		"Effect":    "Allow",
		"Principal": map[string]any{"Service": "scheduler.amazonaws.com"},
		"Condition": map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": ref("AWS::AccountId")},
			"ArnLike": map[string]any{"aws:SourceArn": []any{
				map[string]any{"Fn::Join": []any{"", []any{
					"arn:", ref("AWS::Partition"), ":scheduler:", ref("AWS::Region"), ":", ref("AWS::AccountId"),
					":schedule-group/" + *s.agent.ScheduleGroup.ScheduleGroupName()}}},
				map[string]any{"Fn::Join": []any{"", []any{
					"arn:", ref("AWS::Partition"), ":scheduler:", ref("AWS::Region"), ":", ref("AWS::AccountId"),
					":schedule/" + *s.agent.ScheduleGroup.ScheduleGroupName() + "/*"}}},
			}},
		},
	}}
	if !same(trust, want) {
		t.Errorf("scheduler role trust = %s, want %s", render(trust), render(want))
	}
	var perms []statement
	for _, st := range s.statements() {
		if len(st.roles) == 1 && st.roles[0] == role {
			perms = append(perms, st)
		}
	}
	input := s.lid(t, s.agent.InputQueue)
	if len(perms) != 1 || !same(perms[0].actions, []string{"sqs:SendMessage"}) || !same(perms[0].resources, []any{getAtt(input, "Arn")}) {
		t.Errorf("scheduler role's permissions = %+v, want only sqs:SendMessage on the input queue", perms)
	}
}

func TestRAPKeyIsNeverPlain(t *testing.T) {
	s := synth(t, testEnv, func(_ awscdk.Stack, p *InfinityAgentProps) {
		p.Tools = []ToolSet{RapToolSetFromURL("https://tools.example.com/rap")}
	})
	secret := s.lid(t, s.agent.RAPKey)
	hexKey := regexp.MustCompile(`^[0-9a-f]{32,}$`)
	for _, role := range []string{"agent", "relay", "receiver", "migrate"} {
		env := s.functionEnv(t, role)
		if _, ok := env["INFINITY_RAP_KEY"]; ok {
			t.Errorf("%s function has INFINITY_RAP_KEY in its environment", role)
		}
		for k, v := range env {
			if str, ok := v.(string); ok && hexKey.MatchString(str) {
				t.Errorf("%s function's %s looks like a key: %q", role, k, str)
			}
		}
	}
	for _, role := range []string{"agent", "receiver"} {
		if got := s.functionEnv(t, role)[envRAPKeySecret]; !same(got, ref(secret)) {
			t.Errorf("%s function's %s = %s, want the secret's ARN", role, envRAPKeySecret, render(got))
		}
	}
	if got := s.functionEnv(t, "agent")[envRAPCallbackURL]; !same(got, getAtt(s.lid(t, s.agent.ReceiverURL), "FunctionUrl")) {
		t.Errorf("agent's %s = %s, want the receiver's Function URL", envRAPCallbackURL, render(got))
	}
}

func TestNoRAPNoKeyForTheAgent(t *testing.T) {
	s := synth(t, testEnv, nil)
	env := s.functionEnv(t, "agent")
	for _, k := range []string{envRAPKeySecret, envRAPCallbackURL, envTools} {
		if v, ok := env[k]; ok {
			t.Errorf("an agent without RAP servers has %s = %s", k, render(v))
		}
	}
}

func TestSchemaCustomResource(t *testing.T) {
	s := synth(t, testEnv, nil)
	migrate := s.functionID(t, "migrate")
	assert(t, "the schema custom resource", func() {
		s.tpl.HasResourceProperties(jsii.String("Custom::InfinitySchema"), map[string]any{
			"ServiceToken":    getAtt(migrate, "Arn"),
			"BootstrapSha256": assertions.Match_StringLikeRegexp(jsii.String("^[0-9a-f]{64}$")),
			// A replaced cluster gets its schema too.
			"Cluster": getAtt(s.lid(t, s.agent.Cluster), "ResourceArn"),
		})
	})
	schema := s.lid(t, s.agent.Schema)
	deps := list(s.json["Resources"].(map[string]any)[s.functionID(t, "agent")].(map[string]any)["DependsOn"])
	if !strings.Contains(render(deps), schema) {
		t.Errorf("agent function DependsOn %v, want the schema %s (a fresh deployment is usable at once)", deps, schema)
	}
	if env := s.functionEnv(t, "migrate"); !same(env[envDSQLEndpoint], getAtt(s.lid(t, s.agent.Cluster), "Endpoint")) {
		t.Errorf("migrate's %s = %s, want the cluster's endpoint", envDSQLEndpoint, render(env[envDSQLEndpoint]))
	}
}

func TestOutputs(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Test"), nil)
	NewInfinityAgent(stack, "my-agent_1", &InfinityAgentProps{BootstrapPath: fakeBootstrap(t)})
	outputs := assertions.Template_FromStack(stack, nil).ToJSON()
	var got []string
	for k := range (*outputs)["Outputs"].(map[string]any) {
		got = append(got, k)
	}
	want := []string{"myagent1ClusterEndpoint", "myagent1DeadLetterQueueUrl", "myagent1InputQueueUrl",
		"myagent1OutputQueueUrl", "myagent1ReceiverUrl", "myagent1RelayDeadLetterQueueUrl",
		"myagent1StackName", "myagent1StateTableName"}
	if !sameSet(got, want) {
		t.Errorf("outputs %v, want %v", got, want)
	}
	stackName := (*outputs)["Outputs"].(map[string]any)["myagent1StackName"].(map[string]any)["Value"]
	if !same(stackName, ref("AWS::StackName")) {
		t.Errorf("StackName output = %s", render(stackName))
	}
}

func TestProps(t *testing.T) {
	s := synth(t, testEnv, func(_ awscdk.Stack, p *InfinityAgentProps) {
		p.Timeout = awscdk.Duration_Minutes(jsii.Number(10))
		p.MemorySize = 2048
		p.Input = EventSource{BatchSize: 4, MaxConcurrency: 20}
		p.Relay = EventSource{BatchSize: 7, MaxConcurrency: 3}
		p.MaxReceiveCount = 3
		p.LogRetention = awslogs.RetentionDays_ONE_WEEK
		p.ReceiverAuth = awslambda.FunctionUrlAuthType_AWS_IAM
		p.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
	})
	agent := s.functionID(t, "agent")
	if p := s.props(agent); p["Timeout"] != 600.0 || p["MemorySize"] != 2048.0 {
		t.Errorf("agent function timeout %v, memory %v; want 600, 2048", p["Timeout"], p["MemorySize"])
	}
	input := s.props(s.lid(t, s.agent.InputQueue))
	if input["VisibilityTimeout"] != 3600.0 || input["RedrivePolicy"].(map[string]any)["maxReceiveCount"] != 3.0 {
		t.Errorf("input queue visibility %v, redrive %v; want 3600 and maxReceiveCount 3", input["VisibilityTimeout"], input["RedrivePolicy"])
	}
	if got := s.functionEnv(t, "agent")[envMaxReceiveCount]; got != "3" {
		t.Errorf("%s = %v, want 3 (the redrive policy's)", envMaxReceiveCount, got)
	}
	for role, want := range map[string][2]float64{"agent": {4, 20}, "relay": {7, 3}} {
		assert(t, role+" event source", func() {
			s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
				"FunctionName":          ref(s.functionID(t, role)),
				"BatchSize":             want[0],
				"ScalingConfig":         map[string]any{"MaximumConcurrency": want[1]},
				"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
			})
		})
	}
	assert(t, "IAM-auth receiver URL", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), map[string]any{"AuthType": "AWS_IAM"})
	})
	for id, perm := range s.resources("AWS::Lambda::Permission") {
		if perm["Properties"].(map[string]any)["Principal"] == "*" {
			t.Errorf("an IAM-auth receiver still has the public permission %s", id)
		}
	}
	assert(t, "log retention", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"), map[string]any{"RetentionInDays": 7}, jsii.Number(4))
	})
	assert(t, "destroyed cluster", func() {
		s.tpl.HasResource(jsii.String("AWS::DSQL::Cluster"), map[string]any{
			"Properties": map[string]any{"DeletionProtectionEnabled": false}, "DeletionPolicy": "Delete",
		})
	})
}

func TestInvalidProps(t *testing.T) {
	msg := synthError(t, &InfinityAgentProps{
		Timeout:         awscdk.Duration_Minutes(jsii.Number(20)),
		MemorySize:      64,
		Input:           EventSource{BatchSize: 11, MaxConcurrency: 1},
		MaxReceiveCount: -1,
		Model:           "bedrock/nope",
		Tools:           []ToolSet{RapToolSetFromURL("ftp://x"), NewMcpToolSet("not a url", nil)},
	})
	for _, want := range []string{"BootstrapPath: required", "MemorySize: 64", "Timeout: 1200", "Input.BatchSize: 11",
		"Input.MaxConcurrency: 1", "MaxReceiveCount: -1", `Model: "bedrock/nope" is not one of the bundled demo agent's`,
		`RapToolSet: "ftp://x"`, `McpToolSet: "not a url"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("synth error %q does not mention %q", msg, want)
		}
	}
}

// synthError synthesizes an agent with props and returns the error that
// the construct's validation stops the synthesis with.
func synthError(t *testing.T, props *InfinityAgentProps) (msg string) {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Test"), nil)
	NewInfinityAgent(stack, "Agent", props)
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("synth succeeded, want a validation error")
		}
		if err, ok := r.(error); ok {
			msg = err.Error()
		} else {
			msg = fmt.Sprint(r)
		}
	}()
	app.Synth(nil)
	return ""
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	set := map[string]bool{}
	for _, v := range a {
		set[v] = true
	}
	for _, v := range b {
		if !set[v] {
			return false
		}
	}
	return true
}
