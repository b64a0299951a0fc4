// Command infinity-lambda is the bootstrap of Infinity's Lambda functions,
// one binary for the three roles chosen by INFINITY_ROLE:
//
//	agent     SQS FIFO input queue → one slice per thread → batch item failures
//	relay     relay (delay) queue → FIFO input queue
//	receiver  RAP callbacks on a Function URL → the thread's message group
//
// Build it for the provided.al2023 runtime on arm64:
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags=-s -o bootstrap ./cmd/infinity-lambda
//
// It serves the scripted model and Amazon Bedrock (with the function
// role's credentials). Add -tags mcp to connect agent files' MCP servers
// (the MCP SDK adds about 1.5 MB); without it such agent files are refused
// at start-up.
//
// The configuration is read from the environment and checked before the
// first event; every missing or malformed variable is named (see package
// cloud). `infinity-lambda migrate` creates or updates the conversation
// store's schema (run it once per deployment, not per invocation).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/infinity-runtime/infinity/cloud"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "infinity-lambda:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	awsCfg, err := awsConfig(os.Getenv)
	if err != nil {
		return err
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "migrate":
			return cloud.MigrateFromEnv(ctx, os.Getenv, awsCfg)
		case "-h", "--help", "help":
			fmt.Println("usage: infinity-lambda [migrate]\n\nRuns the Lambda function named by INFINITY_ROLE (agent, relay or receiver);\n`migrate` creates the conversation store's schema. See package cloud for the\nenvironment variables.")
			return nil
		default:
			return fmt.Errorf("unknown argument %q (want no argument, or migrate)", os.Args[1])
		}
	}
	cfg, err := cloud.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	fns, err := cloud.Open(ctx, cfg, cloud.Options{AWS: awsCfg, Logger: logger, Providers: providers(awsCfg), MCP: mcpSource})
	if err != nil {
		return err
	}
	awslambda.StartWithOptions(fns.Handler(), awslambda.WithEnableSIGTERM(func() { fns.Close(context.Background()) }))
	return nil
}

// awsConfig takes the region and credentials from the environment, where
// Lambda puts the function role's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN). The SDK's config package, with its shared-file and
// SSO providers, is left out: it adds about 0.7 MB and a few milliseconds
// of start-up that a function never uses.
func awsConfig(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	key, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return aws.Config{}, fmt.Errorf("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: required (Lambda sets them from the function's role)")
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "environment"}
	return aws.Config{
		Region: region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
	}, nil
}
