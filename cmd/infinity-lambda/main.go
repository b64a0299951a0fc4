// Command infinity-lambda is the bootstrap of Infinity's Lambda functions,
// one binary for the four roles chosen by INFINITY_ROLE:
//
//	agent     SQS FIFO input queue → one slice per thread → batch item failures
//	relay     relay (delay) queue → FIFO input queue
//	receiver  RAP callbacks on a Function URL → the thread's message group
//	migrate   CloudFormation custom resource → the database schema
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
// cloud). The agent function writes a CloudWatch embedded-metric-format
// line per slice to stdout (INFINITY_EMF=off turns them off) and, when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// sends each slice's spans over OTLP/HTTP (JSON) before its invocation
// returns (see lambda.Telemetry). INFINITY_ROLE=migrate serves the
// CloudFormation custom resource that creates or updates the conversation
// store's schema on deploy; `infinity-lambda migrate` does the same from a
// shell.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/lambda"
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
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "migrate":
			awsCfg, err := awsConfig(os.Getenv)
			if err != nil {
				return err
			}
			return cloud.MigrateFromEnv(ctx, os.Getenv, awsCfg)
		case "-h", "--help", "help":
			fmt.Print(usage)
			return nil
		default:
			return fmt.Errorf("unknown argument %q (want no argument, or migrate)", os.Args[1])
		}
	}
	cfg, err := cloud.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	awsCfg, err := awsConfig(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.Role == cloud.RoleMigrate {
		awslambda.Start(lambda.Migrator(func(ctx context.Context) error { return cloud.Migrate(ctx, cfg, awsCfg) }, logger))
		return nil
	}
	secrets, err := cloud.NewSecretsManager(awsCfg, "")
	if err != nil {
		return err
	}
	opts := cloud.Options{AWS: awsCfg, Logger: logger, Providers: providers(awsCfg, secrets, os.Getenv), MCP: mcpSource, Secrets: secrets}
	var tel *lambda.Telemetry
	if cfg.Role == cloud.RoleAgent {
		// Slices run in the agent function only: EMF lines on stdout and,
		// with an OTLP endpoint, spans sent before each invocation returns.
		if tel, err = lambda.TelemetryFromEnv(os.Getenv, os.Stdout, logger); err != nil {
			return err
		}
		opts.Probe = tel.Probe()
	}
	fns, err := cloud.Open(ctx, cfg, opts)
	if err != nil {
		return err
	}
	handler := fns.Handler()
	if tel != nil {
		handler = tel.Handler(fns.Agent.Handle)
	}
	awslambda.StartWithOptions(handler, awslambda.WithEnableSIGTERM(func() { fns.Close(context.Background()) }))
	return nil
}

const usage = `usage: infinity-lambda [migrate]

Runs the Lambda function named by INFINITY_ROLE: agent, relay, receiver, or
migrate (the CloudFormation custom resource that creates the schema on
deploy). "infinity-lambda migrate" creates or updates the conversation
store's schema from a shell: it needs AWS_REGION, INFINITY_DSQL_ENDPOINT (or
INFINITY_DATABASE_URL) and credentials in AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY; "infinity cloud migrate" does the same with any
credential source the AWS SDK supports. See package cloud for the
environment variables.
`
