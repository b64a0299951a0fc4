package infinitycdk

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdsql"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// InfinityAgent is one deployed agent: its queues, stores, functions and
// roles. Its fields give access to what it made, to add alarms or
// permissions.
type InfinityAgent struct {
	constructs.Construct

	// InputQueue is the FIFO input queue (one message group per thread);
	// InputDeadLetterQueue receives its records that failed
	// MaxReceiveCount times.
	InputQueue, InputDeadLetterQueue awssqs.Queue
	// RelayQueue carries delayed messages (up to 900 s) to the relay
	// function; RelayDeadLetterQueue is its dead-letter queue.
	RelayQueue, RelayDeadLetterQueue awssqs.Queue
	// OutputQueue receives display events.
	OutputQueue awssqs.Queue

	AgentFunction, RelayFunction, ReceiverFunction, MigrateFunction awslambda.Function
	// ReceiverURL is the receiver's Function URL (RAP callbacks).
	ReceiverURL awslambda.FunctionUrl

	// Cluster is the Aurora DSQL cluster of the conversation store.
	Cluster awsdsql.CfnCluster
	// Table is the DynamoDB table of the state store.
	Table awsdynamodb.TableV2
	// ScheduleGroup holds the one-time schedules of sleeps over 900 s;
	// SchedulerRole is the role Scheduler assumes to deliver them.
	ScheduleGroup awsscheduler.ScheduleGroup
	SchedulerRole awsiam.Role
	// RAPKey is the secret holding the key of RAP callback tokens.
	RAPKey awssecretsmanager.Secret
	// Schema is the custom resource that creates the database schema.
	Schema awscdk.CustomResource

	s             settings
	spec          agentSpec
	asset         staged
	problems      *validation
	tools         []toolEntry
	rapConfigured bool
}

// NewInfinityAgent builds the agent's resources under scope. Invalid props
// are reported by the construct's validation, so `cdk synth` names them.
func NewInfinityAgent(scope constructs.Construct, id string, props *InfinityAgentProps) *InfinityAgent {
	a := &InfinityAgent{Construct: constructs.NewConstruct(scope, jsii.String(id))}
	if props == nil {
		props = &InfinityAgentProps{}
	}
	var problems []string
	a.s, problems = resolve(*props)
	spec, err := readAgent(a.s.AgentFile, a.s.Model)
	if err != nil {
		problems = append(problems, err.Error())
	}
	a.spec = spec
	if len(spec.keys) > 0 && props.ModelKeys == nil {
		problems = append(problems, fmt.Sprintf("ModelKeys: required: the agent file names %s models, whose API keys the function reads from that secret (a JSON object such as {\"ANTHROPIC_API_KEY\": \"…\"})", strings.Join(spec.keys, " and ")))
	}
	dir := filepath.Join(*awscdk.Stage_Of(a.Construct).Outdir(), ".infinity-staging", *a.Node().Addr())
	a.asset, err = stage(dir, a.s.BootstrapPath, spec.file)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if outputPrefix(id) == "" {
		problems = append(problems, "id: "+id+" has no letter or digit to name the stack outputs with")
	}
	a.problems = &validation{problems}
	a.Node().AddValidation(a.problems)

	a.stores()
	a.queues()
	a.functions()
	a.permissions()
	for _, t := range a.s.Tools {
		if t != nil {
			a.AddToolSet(t)
		}
	}
	a.configureRAP()
	if a.spec.mcp {
		awscdk.Annotations_Of(a.Construct).AddInfo(jsii.String("the agent file lists MCP servers: build the bootstrap with -tags \"lambda.norpc mcp\""))
	}
	a.schema()
	a.outputs(outputPrefix(id))
	a.suppressNagFindings()
	return a
}

// validation reports the problems found in the props.
type validation struct{ list []string }

func (v *validation) add(problem string) { v.list = append(v.list, problem) }

// Validate implements constructs.IValidation.
func (v *validation) Validate() *[]*string { return jsii.Strings(v.list...) }

// stores makes the DSQL cluster, the table, the schedule group, the
// Scheduler's role and the RAP key.
func (a *InfinityAgent) stores() {
	retain := a.s.RemovalPolicy == awscdk.RemovalPolicy_RETAIN
	a.Cluster = awsdsql.NewCfnCluster(a.Construct, jsii.String("Cluster"), &awsdsql.CfnClusterProps{
		DeletionProtectionEnabled: jsii.Bool(retain),
	})
	a.Cluster.ApplyRemovalPolicy(a.s.RemovalPolicy, nil)
	// The state store's key schema and TTL attribute (persistence/dynamodb).
	a.Table = awsdynamodb.NewTableV2(a.Construct, jsii.String("StateTable"), &awsdynamodb.TablePropsV2{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		Billing:             awsdynamodb.Billing_OnDemand(nil),
		TimeToLiveAttribute: jsii.String("ttl"),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(retain),
		RemovalPolicy:      a.s.RemovalPolicy,
	})
	// Schedules are transient (each deletes itself after it fires), so
	// the group goes with the stack.
	a.ScheduleGroup = awsscheduler.NewScheduleGroup(a.Construct, jsii.String("Schedules"), &awsscheduler.ScheduleGroupProps{
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	a.SchedulerRole = awsiam.NewRole(a.Construct, jsii.String("SchedulerRole"), &awsiam.RoleProps{
		Description: jsii.String("Assumed by EventBridge Scheduler to deliver an Infinity agent's long timers to its input queue"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{
				"StringEquals": map[string]interface{}{"aws:SourceAccount": awscdk.Stack_Of(a.Construct).Account()},
				// Only this agent's schedule group (the confused-deputy
				// guard Scheduler's documentation gives: it has named the
				// group's ARN and, earlier, its schedules' ARNs; both are
				// accepted, both are this group only).
				"ArnLike": map[string]interface{}{"aws:SourceArn": []*string{a.scheduleGroupARN(), a.scheduleARNs()}},
			},
		}),
	})
	a.RAPKey = awssecretsmanager.NewSecret(a.Construct, jsii.String("RapKey"), &awssecretsmanager.SecretProps{
		Description: jsii.String("The key of an Infinity agent's RAP callback tokens (64 hex characters)"),
		// 64 characters of 0-9a-f: 32 bytes as hex.
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(64),
			ExcludeUppercase:   jsii.Bool(true),
			ExcludePunctuation: jsii.Bool(true),
			IncludeSpace:       jsii.Bool(false),
			ExcludeCharacters:  jsii.String("ghijklmnopqrstuvwxyz"),
		},
		RemovalPolicy: a.s.RemovalPolicy,
	})
}
