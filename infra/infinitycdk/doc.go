// Package infinitycdk is the AWS CDK construct that deploys an Infinity
// agent in the cloud mode: InfinityAgent makes the queues, the Aurora DSQL
// cluster, the DynamoDB table, the Scheduler group and role, the RAP key
// secret and the four functions of one bootstrap binary (agent, relay,
// receiver and the migrate custom resource), with least-privilege roles.
//
// RapToolSet and McpToolSet add tool servers to the agent's configuration
// (INFINITY_TOOLS) with the permissions they need.
//
// The construct validates its props when it is built: a problem is reported
// by `cdk synth` (through the construct's node validations) rather than
// found by the deployed function at its first cold start.
package infinitycdk
