// Command example is a CDK app with one InfinityAgent: `npx cdk synth`
// (or deploy) in this directory. cdk.json's build step cross-compiles the
// bootstrap into build/bootstrap first.
//
// Context values (-c key=value) configure it:
//
//	agentFile   an agent file (default: the bootstrap's offline demo agent),
//	            e.g. -c agentFile=bedrock.yaml
//	model       provider/id, one of the agent file's models
//	modelKeys   the name of a Secrets Manager secret holding the Anthropic
//	            or OpenAI API key as JSON ({"ANTHROPIC_API_KEY": "..."}),
//	            for an agent file on those APIs
//	bootstrap   the bootstrap binary (default build/bootstrap)
//	stackName   the stack's name (default InfinityAgent)
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/infinity-runtime/infinity/infra/infinitycdk"
)

func main() {
	err := synth()
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// synth builds and synthesizes the app. The CDK reports an invalid
// construct (the InfinityAgent's validation, say) by panicking through
// jsii: synth returns it as an error.
func synth() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synth: %v", r)
		}
	}()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String(context(app, "stackName", "InfinityAgent")), &awscdk.StackProps{
		Description: jsii.String("An Infinity agent in the cloud mode"),
		Env:         env(),
	})
	props := &infinitycdk.InfinityAgentProps{
		BootstrapPath: context(app, "bootstrap", "build/bootstrap"),
		AgentFile:     context(app, "agentFile", ""),
		Model:         context(app, "model", ""),
	}
	if name := context(app, "modelKeys", ""); name != "" {
		props.ModelKeys = awssecretsmanager.Secret_FromSecretNameV2(stack, jsii.String("ModelKeys"), jsii.String(name))
	}
	infinitycdk.NewInfinityAgent(stack, "Agent", props)
	// cdk-nag's AwsSolutions pack: synth fails on a finding the construct
	// has not justified.
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	app.Synth(nil)
	return nil
}

// context returns the context value key, or def.
func context(app awscdk.App, key, def string) string {
	if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

// env pins the stack to the CLI's account and region when both are known
// (credentials are configured); otherwise the stack is
// environment-agnostic, which synthesizes without credentials.
func env() *awscdk.Environment {
	account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION")
	if account == "" || region == "" {
		return nil
	}
	return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
}
