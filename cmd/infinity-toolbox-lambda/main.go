// Command infinity-toolbox-lambda is the example tool server (package
// tools/toolbox) as an AWS Lambda function behind a Function URL, for
// agents deployed with the CDK construct (RapToolSetFromFunction gives the
// agent the right to invoke an IAM-auth Function URL; the runtime signs
// its requests).
//
// Lambda freezes a function between requests, so the server runs each
// call inline: the invocation is answered once the call's result has been
// sent back. That leaves out the tools that outlive a request (webhook
// and timer subscriptions, approvals): this build serves current_time and
// run_task (at most 4 s of steps: the runtime waits 5 s for an invocation's
// answer); `infinity tools serve` serves them all.
//
// Build it for the arm64 runtime (provided.al2023) as the bootstrap:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./cmd/infinity-toolbox-lambda
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/tools/toolbox"
)

func main() { awslambda.Start(handler()) }

// handler answers the Function URL's requests with the inline toolbox.
func handler() func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return lambda.Receiver{Handler: toolbox.NewInline(nil)}.Handle
}
