package cloudctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/smithy-go"

	"github.com/infinity-runtime/infinity/cloud"
)

// ErrNotConfigured reports that the configuration lacks what a command
// needs; the message names the environment variables or stack outputs.
var ErrNotConfigured = errors.New("not configured")

// ErrStackNotFound reports that CloudFormation has no stack of that name
// in the region.
var ErrStackNotFound = errors.New("stack not found")

// The CfnOutputs of the InfinityAgent construct: each output's key is the
// construct id with every non-alphanumeric character removed (the agent
// prefix), followed by one of these.
const (
	OutputInputQueueURL           = "InputQueueUrl"
	OutputOutputQueueURL          = "OutputQueueUrl"
	OutputDeadLetterQueueURL      = "DeadLetterQueueUrl"
	OutputRelayDeadLetterQueueURL = "RelayDeadLetterQueueUrl"
	OutputReceiverURL             = "ReceiverUrl"
	OutputClusterEndpoint         = "ClusterEndpoint"
	OutputStateTableName          = "StateTableName"
	OutputStackName               = "StackName"
)

// Config says where a deployment's queues and conversation store are.
type Config struct {
	// Source says where the configuration came from, for messages:
	// "the environment" or "stack NAME" (with its agent prefix).
	Source string
	// Stack and Agent are the stack name and agent prefix of a
	// configuration read from CloudFormation.
	Stack, Agent string

	InputQueueURL           string
	OutputQueueURL          string
	DeadLetterQueueURL      string // the input queue's dead-letter queue
	RelayDeadLetterQueueURL string
	ReceiverURL             string
	StateTable              string
	// DSQLEndpoint is the Aurora DSQL cluster (IAM auth as DSQLUser);
	// DatabaseURL a plain PostgreSQL URL instead (cloud-local).
	DSQLEndpoint string
	DSQLUser     string
	DatabaseURL  string
}

// FromEnv reads the configuration `infinity cloud-local` prints and the
// functions run with: the INFINITY_* variables of package cloud.
func FromEnv(getenv func(string) string) Config {
	c := Config{
		Source:             "the environment",
		InputQueueURL:      strings.TrimSpace(getenv(cloud.EnvInputQueueURL)),
		OutputQueueURL:     strings.TrimSpace(getenv(cloud.EnvOutputQueueURL)),
		DeadLetterQueueURL: strings.TrimSpace(getenv(cloud.EnvDeadLetterURL)),
		ReceiverURL:        strings.TrimSpace(getenv(cloud.EnvRAPCallbackURL)),
		StateTable:         strings.TrimSpace(getenv(cloud.EnvStateTable)),
		DSQLEndpoint:       strings.TrimSpace(getenv(cloud.EnvDSQLEndpoint)),
		DSQLUser:           strings.TrimSpace(getenv(cloud.EnvDSQLUser)),
		DatabaseURL:        strings.TrimSpace(getenv(cloud.EnvDatabaseURL)),
	}
	if c.DSQLUser == "" {
		c.DSQLUser = "admin"
	}
	return c
}

// StackAPI is the part of the CloudFormation client FromStack uses.
type StackAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// FromStack reads the outputs of a deployed stack (DescribeStacks). agent
// picks one InfinityAgent construct when the stack has several (its id; the
// non-alphanumeric characters are dropped as the construct drops them);
// dsqlUser is the database role (empty: admin).
func FromStack(ctx context.Context, api StackAPI, stack, agent, dsqlUser string) (Config, error) {
	if strings.TrimSpace(stack) == "" {
		return Config{}, fmt.Errorf("stack: no name: %w", ErrNotConfigured)
	}
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &stack})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(ae.ErrorMessage(), "does not exist") {
			return Config{}, fmt.Errorf("stack %s: %w in this region (%s)", stack, ErrStackNotFound, ae.ErrorMessage())
		}
		return Config{}, fmt.Errorf("stack %s: describe: %w", stack, err)
	}
	if len(out.Stacks) == 0 {
		return Config{}, fmt.Errorf("stack %s: %w", stack, ErrStackNotFound)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		if o.OutputKey != nil && o.OutputValue != nil {
			outputs[*o.OutputKey] = *o.OutputValue
		}
	}
	return fromOutputs(stack, agent, dsqlUser, outputs)
}

// fromOutputs picks one construct's outputs. The prefixes are read off
// the InputQueueUrl outputs (no other suffix ends with it), so an agent
// whose id ends in "Relay" cannot be mistaken for another's
// RelayDeadLetterQueueUrl.
func fromOutputs(stack, agent, dsqlUser string, outputs map[string]string) (Config, error) {
	var prefixes []string
	for k := range outputs {
		if p, ok := strings.CutSuffix(k, OutputInputQueueURL); ok {
			prefixes = append(prefixes, p)
		}
	}
	sort.Strings(prefixes)
	if len(prefixes) == 0 {
		keys := make([]string, 0, len(outputs))
		for k := range outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return Config{}, fmt.Errorf("stack %s has no <agent>%s output, so it holds no InfinityAgent construct (its outputs: %s): %w",
			stack, OutputInputQueueURL, listOrNone(keys), ErrNotConfigured)
	}
	prefix := ""
	switch want := alnum(agent); {
	case agent != "":
		// The construct's id as written, or in another case if only one
		// agent matches so.
		var fold []string
		for _, p := range prefixes {
			if strings.EqualFold(p, want) {
				fold = append(fold, p)
			}
		}
		switch {
		case slices.Contains(prefixes, want):
			prefix = want
		case len(fold) == 1:
			prefix = fold[0]
		default:
			return Config{}, fmt.Errorf("stack %s has no agent %q (its agents: %s): %w", stack, want, listOrNone(prefixes), ErrNotConfigured)
		}
	case len(prefixes) > 1:
		return Config{}, fmt.Errorf("stack %s holds several agents (%s): pick one with --agent: %w", stack, listOrNone(prefixes), ErrNotConfigured)
	default:
		prefix = prefixes[0]
	}
	if dsqlUser == "" {
		dsqlUser = "admin"
	}
	source := "stack " + stack
	if prefix != "" {
		source += " (agent " + prefix + ")"
	}
	get := func(suffix string) string { return strings.TrimSpace(outputs[prefix+suffix]) }
	return Config{
		Source:                  source,
		Stack:                   stack,
		Agent:                   prefix,
		InputQueueURL:           get(OutputInputQueueURL),
		OutputQueueURL:          get(OutputOutputQueueURL),
		DeadLetterQueueURL:      get(OutputDeadLetterQueueURL),
		RelayDeadLetterQueueURL: get(OutputRelayDeadLetterQueueURL),
		ReceiverURL:             get(OutputReceiverURL),
		StateTable:              get(OutputStateTableName),
		DSQLEndpoint:            get(OutputClusterEndpoint),
		DSQLUser:                dsqlUser,
	}, nil
}

// alnum drops every character that is not a letter or a digit, as the
// construct does to make its output keys.
func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return -1
	}, s)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	for i, v := range s {
		if v == "" {
			s[i] = `""`
		}
	}
	return strings.Join(s, ", ")
}

// Need names what a command uses.
type Need uint8

// What commands need.
const (
	NeedInput      Need = 1 << iota // the input queue (start, send, dlq redrive)
	NeedDeadLetter                  // the input queue's dead-letter queue (dlq)
	NeedDatabase                    // the conversation store (logs, ls, tree)
)

// Require reports, in one error wrapping ErrNotConfigured, everything need
// asks for that c lacks or has malformed, each by the environment variable
// (or the stack output) that would provide it.
func (c Config) Require(need Need) error {
	var problems []string
	missing := func(env, output string) {
		if c.Stack != "" {
			problems = append(problems, fmt.Sprintf("%s has no %s%s output", c.Source, c.Agent, output))
			return
		}
		problems = append(problems, fmt.Sprintf("set %s", env))
	}
	queue := func(v, env, output string) {
		if v == "" {
			missing(env, output)
			return
		}
		if !cloud.IsHTTPURL(v) {
			problems = append(problems, fmt.Sprintf("%s %q is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", c.name(env, output), v))
		}
	}
	if need&NeedInput != 0 {
		queue(c.InputQueueURL, cloud.EnvInputQueueURL, OutputInputQueueURL)
	}
	if need&NeedDeadLetter != 0 {
		queue(c.DeadLetterQueueURL, cloud.EnvDeadLetterURL, OutputDeadLetterQueueURL)
	}
	if need&NeedDatabase != 0 {
		switch {
		case c.DSQLEndpoint == "" && c.DatabaseURL == "":
			if c.Stack != "" {
				missing("", OutputClusterEndpoint)
			} else {
				problems = append(problems, fmt.Sprintf("set %s (or %s for a plain PostgreSQL)", cloud.EnvDSQLEndpoint, cloud.EnvDatabaseURL))
			}
		case c.DSQLEndpoint != "" && c.DatabaseURL != "":
			problems = append(problems, fmt.Sprintf("set either %s or %s, not both", cloud.EnvDSQLEndpoint, cloud.EnvDatabaseURL))
		case strings.Contains(c.DSQLEndpoint, "/"):
			problems = append(problems, fmt.Sprintf("%s %q should be a host name, such as abc123.dsql.us-east-1.on.aws", c.name(cloud.EnvDSQLEndpoint, OutputClusterEndpoint), c.DSQLEndpoint))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	hint := ""
	if c.Stack == "" {
		hint = " (or name a deployed stack with --stack NAME)"
	}
	return fmt.Errorf("%s: %s%s: %w", c.Source, strings.Join(problems, "; "), hint, ErrNotConfigured)
}

// name is how messages call a setting: its variable, or its stack output.
func (c Config) name(env, output string) string {
	if c.Stack != "" {
		return "output " + c.Agent + output
	}
	return env
}
