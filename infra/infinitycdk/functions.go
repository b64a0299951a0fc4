package infinitycdk

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// The environment variables the bootstrap reads (package cloud of the
// root module; the drift test checks the synthesized environment with
// cloud.LoadConfig).
const (
	envRole            = "INFINITY_ROLE"
	envInputQueueURL   = "INFINITY_INPUT_QUEUE_URL"
	envInputQueueARN   = "INFINITY_INPUT_QUEUE_ARN"
	envRelayQueueURL   = "INFINITY_RELAY_QUEUE_URL"
	envOutputQueueURL  = "INFINITY_OUTPUT_QUEUE_URL"
	envDeadLetterURL   = "INFINITY_DEAD_LETTER_QUEUE_URL"
	envSchedulerRole   = "INFINITY_SCHEDULER_ROLE_ARN"
	envScheduleGroup   = "INFINITY_SCHEDULE_GROUP"
	envStateTable      = "INFINITY_STATE_TABLE"
	envDSQLEndpoint    = "INFINITY_DSQL_ENDPOINT"
	envAgentFile       = "INFINITY_AGENT_FILE"
	envRAPKeySecret    = "INFINITY_RAP_KEY_SECRET_ARN"
	envRAPCallbackURL  = "INFINITY_RAP_CALLBACK_URL"
	envMaxReceiveCount = "INFINITY_MAX_RECEIVE_COUNT"
	envModel           = "INFINITY_MODEL"
	envTools           = "INFINITY_TOOLS"
	envModelKeys       = "INFINITY_MODEL_KEYS_SECRET_ARN"
)

// smallMemory is the memory of the relay, receiver and migrate functions,
// which forward messages or run one migration.
const smallMemory = 256

// migrateTimeoutSeconds bounds the schema migration.
const migrateTimeoutSeconds = 300

// functions makes the four functions of the one bootstrap asset, the
// agent's and relay's event sources and the receiver's Function URL.
func (a *InfinityAgent) functions() {
	code := awslambda.Code_FromAsset(jsii.String(a.asset.dir), nil)
	input := map[string]*string{envInputQueueURL: a.InputQueue.QueueUrl()}

	agentEnv := map[string]*string{
		envInputQueueURL:   a.InputQueue.QueueUrl(),
		envInputQueueARN:   a.InputQueue.QueueArn(),
		envRelayQueueURL:   a.RelayQueue.QueueUrl(),
		envOutputQueueURL:  a.OutputQueue.QueueUrl(),
		envDeadLetterURL:   a.InputDeadLetterQueue.QueueUrl(),
		envSchedulerRole:   a.SchedulerRole.RoleArn(),
		envScheduleGroup:   a.ScheduleGroup.ScheduleGroupName(),
		envStateTable:      a.Table.TableName(),
		envDSQLEndpoint:    a.Cluster.AttrEndpoint(),
		envMaxReceiveCount: jsii.String(strconv.Itoa(a.s.MaxReceiveCount)),
	}
	if a.asset.agentFile != "" {
		agentEnv[envAgentFile] = jsii.String(a.asset.agentFile)
	}
	if a.s.Model != "" {
		agentEnv[envModel] = jsii.String(a.s.Model)
	}
	if a.s.ModelKeys != nil {
		agentEnv[envModelKeys] = a.s.ModelKeys.SecretArn()
	}
	// The agent and relay functions send to the queues that trigger them
	// (a thread's own messages, delays that come back): Lambda's recursive
	// loop detection would stop a long-lived agent's chain of invocations.
	a.AgentFunction = a.function(code, fnSpec{id: "Agent", role: "agent", memory: a.s.MemorySize,
		timeout: a.s.timeoutSeconds, env: agentEnv, loops: true})
	a.RelayFunction = a.function(code, fnSpec{id: "Relay", role: "relay", memory: smallMemory,
		timeout: relayTimeoutSeconds, loops: true, env: merge(input, map[string]*string{
			envDeadLetterURL: a.RelayDeadLetterQueue.QueueUrl(),
		})})
	a.ReceiverFunction = a.function(code, fnSpec{id: "Receiver", role: "receiver", memory: smallMemory,
		timeout: relayTimeoutSeconds, env: merge(input, map[string]*string{
			envOutputQueueURL: a.OutputQueue.QueueUrl(),
			envRAPKeySecret:   a.RAPKey.SecretArn(),
		})})
	a.MigrateFunction = a.function(code, fnSpec{id: "Migrate", role: "migrate", memory: smallMemory,
		timeout: migrateTimeoutSeconds, env: map[string]*string{envDSQLEndpoint: a.Cluster.AttrEndpoint()}})
	a.AgentFunction.AddEventSource(sqsSource(a.InputQueue, a.s.Input))
	a.RelayFunction.AddEventSource(sqsSource(a.RelayQueue, a.s.Relay))
	a.ReceiverURL = a.ReceiverFunction.AddFunctionUrl(&awslambda.FunctionUrlOptions{AuthType: a.s.ReceiverAuth})
}

// fnSpec describes one function of the bootstrap.
type fnSpec struct {
	id, role        string // construct id, INFINITY_ROLE
	memory, timeout int    // MiB, seconds
	env             map[string]*string
	loops           bool // allow recursive loops (SQS → function → SQS)
}

// function makes one function of the bootstrap, with its own role and log
// group.
func (a *InfinityAgent) function(code awslambda.Code, f fnSpec) awslambda.Function {
	id, role := f.id, f.role
	logs := awslogs.NewLogGroup(a.Construct, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     a.s.LogRetention,
		RemovalPolicy: a.s.RemovalPolicy,
	})
	// An own role rather than the default one: the default attaches the
	// managed AWSLambdaBasicExecutionRole, which may write to any log group.
	fnRole := awsiam.NewRole(a.Construct, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("The Infinity " + role + " function"),
	})
	logs.GrantWrite(fnRole)
	env := merge(f.env, map[string]*string{envRole: jsii.String(role)})
	props := &awslambda.FunctionProps{
		Description:  jsii.String("Infinity " + role + " (INFINITY_ROLE=" + role + ")"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         code,
		MemorySize:   jsii.Number(float64(f.memory)),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(float64(f.timeout))),
		Role:         fnRole,
		LogGroup:     logs,
		Environment:  &env,
	}
	if f.loops {
		props.RecursiveLoop = awslambda.RecursiveLoop_ALLOW
	}
	return awslambda.NewFunction(a.Construct, jsii.String(id), props)
}

// sqsSource is an event source reporting batch item failures: a failed
// record is retried alone, not with its whole batch.
func sqsSource(q awssqs.IQueue, e EventSource) awslambda.IEventSource {
	props := &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(float64(e.BatchSize)),
		ReportBatchItemFailures: jsii.Bool(true),
	}
	if e.MaxConcurrency > 0 {
		props.MaxConcurrency = jsii.Number(float64(e.MaxConcurrency))
	}
	return awslambdaeventsources.NewSqsEventSource(q, props)
}

// merge returns a copy of a with b's entries added.
func merge(a, b map[string]*string) map[string]*string {
	out := make(map[string]*string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
