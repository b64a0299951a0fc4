package infinitycdk

import (
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// permissions grants each function the actions it calls, on its own
// resources only. (The event sources grant the agent and relay functions
// the receive/delete actions on their queues.)
func (a *InfinityAgent) permissions() {
	stack := awscdk.Stack_Of(a.Construct)
	a.SchedulerRole.AddToPolicy(allow([]string{"sqs:SendMessage"}, a.InputQueue.QueueArn()))

	agent := a.AgentFunction
	// Sends: a thread's own messages (input), short delays (relay),
	// display events (output), records it gives up on (dead letters).
	agent.AddToRolePolicy(allow([]string{"sqs:SendMessage"},
		a.InputQueue.QueueArn(), a.RelayQueue.QueueArn(), a.OutputQueue.QueueArn(), a.InputDeadLetterQueue.QueueArn()))
	// persistence/dynamodb: Query and GetItem (consistent reads),
	// BatchWriteItem (processed marks), TransactWriteItems of Put and
	// Delete (which IAM checks as PutItem and DeleteItem).
	agent.AddToRolePolicy(allow([]string{
		"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
	}, a.Table.TableArn()))
	// One-time schedules for sleeps over 900 s; they delete themselves
	// after they fire (ActionAfterCompletion DELETE), so the function
	// never deletes one. Their names are made per message: the schedule
	// ARN needs a wildcard for the name within this group.
	agent.AddToRolePolicy(allow([]string{"scheduler:CreateSchedule"}, a.scheduleARNs()))
	agent.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iam:PassRole"),
		Resources: &[]*string{a.SchedulerRole.RoleArn()},
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"iam:PassedToService": "scheduler.amazonaws.com"},
		},
	}))
	for _, fn := range []awslambda.Function{agent, a.MigrateFunction} {
		// The functions connect as the admin role (INFINITY_DSQL_USER's
		// default).
		fn.AddToRolePolicy(allow([]string{"dsql:DbConnectAdmin"}, a.Cluster.AttrResourceArn()))
	}
	if arns := bedrockARNs(stack, a.spec.bedrock); len(arns) > 0 {
		// ConverseStream is authorized as InvokeModelWithResponseStream.
		agent.AddToRolePolicy(allow([]string{"bedrock:InvokeModelWithResponseStream"}, arns...))
	}

	if keys := a.s.ModelKeys; keys != nil {
		agent.AddToRolePolicy(allow([]string{"secretsmanager:GetSecretValue"}, secretARNForPolicy(keys)))
		// A secret encrypted with a customer managed key is read only
		// with kms:Decrypt on that key too (as McpToolSet's headers).
		if key := keys.EncryptionKey(); key != nil {
			key.GrantDecrypt(agent)
		}
	}

	a.RelayFunction.AddToRolePolicy(allow([]string{"sqs:SendMessage"},
		a.InputQueue.QueueArn(), a.RelayDeadLetterQueue.QueueArn()))

	a.ReceiverFunction.AddToRolePolicy(allow([]string{"sqs:SendMessage"},
		a.InputQueue.QueueArn(), a.OutputQueue.QueueArn()))
	a.ReceiverFunction.AddToRolePolicy(allow([]string{"secretsmanager:GetSecretValue"}, a.RAPKey.SecretArn()))
}

// scheduleARNs is the ARN pattern of the schedules in the agent's group.
func (a *InfinityAgent) scheduleARNs() *string {
	return awscdk.Stack_Of(a.Construct).FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("scheduler"),
		Resource:     jsii.String("schedule"),
		ResourceName: jsii.String(*a.ScheduleGroup.ScheduleGroupName() + "/*"),
		ArnFormat:    awscdk.ArnFormat_SLASH_RESOURCE_NAME,
	})
}

// scheduleGroupARN is the ARN of the agent's schedule group.
func (a *InfinityAgent) scheduleGroupARN() *string {
	return awscdk.Stack_Of(a.Construct).FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("scheduler"),
		Resource:     jsii.String("schedule-group"),
		ResourceName: a.ScheduleGroup.ScheduleGroupName(),
		ArnFormat:    awscdk.ArnFormat_SLASH_RESOURCE_NAME,
	})
}

// allow is a statement allowing actions on resources.
func allow(actions []string, resources ...*string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: &resources,
	})
}

// geoPrefixes start the ids of Bedrock's cross-region inference profiles
// (us.anthropic.claude-…): the geography the profile routes within.
var geoPrefixes = []string{"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"}

// crossRegion returns the foundation model id of a cross-region inference
// profile id, and whether id is one.
func crossRegion(id string) (string, bool) {
	geo, model, ok := strings.Cut(id, ".")
	if !ok || !slices.Contains(geoPrefixes, geo) || !strings.Contains(model, ".") {
		return "", false
	}
	return model, true
}

// bedrockARNs are the resources InvokeModelWithResponseStream needs for
// the models ids:
//   - a foundation model id: its ARN in the stack's region;
//   - a cross-region inference profile id (us.…, eu.…, global.…): the
//     profile's ARN in the stack's region and account, and the foundation
//     model's ARN in every region: the profile routes each request to a
//     region of its geography that Bedrock picks (and AWS adds regions to
//     a profile over time), and IAM checks the foundation model in the
//     region that serves it (a global profile's carries no region at all);
//   - an ARN: itself (an application inference profile's models must be
//     granted separately, on AgentFunction's role).
func bedrockARNs(stack awscdk.Stack, ids []string) []*string {
	var out []*string
	seen := map[string]bool{}
	add := func(arn string) {
		if !seen[arn] {
			seen[arn] = true
			out = append(out, jsii.String(arn))
		}
	}
	partition, region, account := *stack.Partition(), *stack.Region(), *stack.Account()
	foundation := func(region, model string) string {
		return "arn:" + partition + ":bedrock:" + region + "::foundation-model/" + model
	}
	for _, id := range ids {
		switch model, cross := crossRegion(id); {
		case strings.HasPrefix(id, "arn:"):
			add(id)
			if _, profile, ok := strings.Cut(id, ":inference-profile/"); ok {
				if model, cross := crossRegion(profile); cross {
					add(foundation("*", model))
				}
			}
		case cross:
			add("arn:" + partition + ":bedrock:" + region + ":" + account + ":inference-profile/" + id)
			add(foundation("*", model))
		default:
			add(foundation(region, id))
		}
	}
	return out
}
