package infinitycdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// schema makes the custom resource that creates the conversation store's
// schema on deploy: CloudFormation invokes the migrate function directly
// (ServiceToken is its ARN) on Create and Update; Delete does nothing.
func (a *InfinityAgent) schema() {
	a.Schema = awscdk.NewCustomResource(a.Construct, jsii.String("Schema"), &awscdk.CustomResourceProps{
		ServiceToken: a.MigrateFunction.FunctionArn(),
		ResourceType: jsii.String("Custom::InfinitySchema"),
		// A new bootstrap may bring migrations, and a replaced cluster
		// starts empty: either changing makes CloudFormation send Update,
		// which runs them (they are idempotent); deploying the same
		// bootstrap to the same cluster again sends nothing.
		Properties: &map[string]interface{}{"BootstrapSha256": a.asset.bootstrapSHA256,
			"Cluster": a.Cluster.AttrResourceArn()},
		ServiceTimeout: awscdk.Duration_Seconds(jsii.Number(migrateTimeoutSeconds + 60)),
	})
	// The agent function is created once its store has the schema, so a
	// fresh deployment is usable as soon as it completes.
	a.AgentFunction.Node().AddDependency(a.Schema)
}

// outputs are what `infinity cloud --stack NAME` reads: their logical ids
// are prefix (the construct id's letters and digits) and a fixed suffix.
func (a *InfinityAgent) outputs(prefix string) {
	for _, o := range []struct {
		name, description string
		value             *string
	}{
		{"InputQueueUrl", "The FIFO input queue (send user messages here)", a.InputQueue.QueueUrl()},
		{"OutputQueueUrl", "The queue of display events", a.OutputQueue.QueueUrl()},
		{"DeadLetterQueueUrl", "The input queue's dead-letter queue", a.InputDeadLetterQueue.QueueUrl()},
		{"RelayDeadLetterQueueUrl", "The relay queue's dead-letter queue", a.RelayDeadLetterQueue.QueueUrl()},
		{"ReceiverUrl", "The receiver's Function URL (RAP callbacks)", a.ReceiverURL.Url()},
		{"ClusterEndpoint", "The Aurora DSQL cluster's endpoint", a.Cluster.AttrEndpoint()},
		{"StateTableName", "The DynamoDB table of the state store", a.Table.TableName()},
		{"StackName", "The stack this agent is in", awscdk.Aws_STACK_NAME()},
	} {
		out := awscdk.NewCfnOutput(a.Construct, jsii.String(o.name), &awscdk.CfnOutputProps{
			Value:       o.value,
			Description: jsii.String(o.description),
		})
		out.OverrideLogicalId(jsii.String(prefix + o.name))
	}
}
