package infinitycdk

import (
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppressNagFindings records, on the resources concerned, why the cdk-nag
// AwsSolutions findings that remain are intended. Each suppression names
// the finding it covers (and, for wildcards, the one resource pattern).
func (a *InfinityAgent) suppressNagFindings() {
	suppress(a.RAPKey, "AwsSolutions-SMG4", "The RAP key signs the callback URLs of tool calls still in flight, which "+
		"may be days old: rotating it invalidates them, so it is rotated by hand (put a new value, redeploy) "+
		"rather than on a schedule.")
	suppress(a.OutputQueue, "AwsSolutions-SQS3", "The output queue carries display events to clients that read "+
		"and delete them; an event a client does not delete is shown again and then expires, blocking "+
		"nothing, so a dead-letter queue would only hide events.")
	suppress(a.AgentFunction.Role(), "AwsSolutions-IAM5", "Two wildcards only. scheduler:CreateSchedule: "+
		"schedule names are made per timer at run time, so the name is a wildcard within this agent's own "+
		"schedule group. bedrock:InvokeModelWithResponseStream: a cross-region inference profile sends each "+
		"request to a region of its geography that Bedrock picks (a global profile to any), and IAM checks "+
		"the foundation model in the region that serves it, so that ARN's region is a wildcard; the model "+
		"is named exactly.",
		`/^Resource::arn:<AWS::Partition>:scheduler:.+:schedule\/[^/*]+\/\*$/`,
		`/^Resource::arn:<AWS::Partition>:bedrock:\*::foundation-model\/[^*]+$/`)
}

// suppress adds a justified cdk-nag suppression of rule to c and its
// children; appliesTo, when given, limits it to findings matching those
// regular expressions.
func suppress(c constructs.IConstruct, rule, reason string, appliesTo ...string) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		list := make([]interface{}, len(appliesTo))
		for i, re := range appliesTo {
			list[i] = map[string]interface{}{"regex": re}
		}
		s.AppliesTo = &list
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}
