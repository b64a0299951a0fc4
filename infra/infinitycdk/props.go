package infinitycdk

import (
	"fmt"
	"math"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
)

// InfinityAgentProps configure an InfinityAgent. Zero values take the
// defaults named on each field.
type InfinityAgentProps struct {
	// BootstrapPath is the bootstrap binary, built for linux/arm64
	// (required): CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags
	// lambda.norpc -trimpath -ldflags=-s -o bootstrap ./cmd/infinity-lambda
	// (add the tag mcp when the agent uses MCP servers).
	BootstrapPath string
	// AgentFile is the agent file new root threads run with; its script,
	// for a scripted model, is staged with it. Empty: the bootstrap's
	// bundled offline demo agent.
	AgentFile string
	// Model, "provider/id", replaces the agent file's default model; it
	// must be one of the file's models (model or models).
	Model string
	// MemorySize is the agent function's memory in MiB (default 1024).
	MemorySize int
	// Timeout is the agent function's timeout (default 5 minutes, at most
	// 15). The input queue's visibility timeout is 6 times it.
	Timeout awscdk.Duration
	// Input is the agent function's event source on the input queue
	// (batch size default 10, the most a FIFO queue allows).
	Input EventSource
	// Relay is the relay function's event source on the relay queue
	// (batch size default 10).
	Relay EventSource
	// MaxReceiveCount is the input queue's redrive maxReceiveCount: how
	// often a record is tried before it goes to the dead-letter queue
	// (default 5). The relay queue uses it too.
	MaxReceiveCount int
	// LogRetention is how long the functions' logs are kept (default one
	// month).
	LogRetention awslogs.RetentionDays
	// ReceiverAuth is the receiver's Function URL auth type: NONE
	// (default; every callback URL carries its call's HMAC token) or
	// AWS_IAM.
	ReceiverAuth awslambda.FunctionUrlAuthType
	// Tools are tool servers added to the agent file's.
	Tools []ToolSet
	// ModelKeys is a Secrets Manager secret whose string is a JSON object
	// of the Anthropic and OpenAI providers' settings, e.g.
	// {"ANTHROPIC_API_KEY": "sk-ant-…"} (also OPENAI_API_KEY, and
	// ANTHROPIC_BASE_URL or OPENAI_BASE_URL for another endpoint). Required
	// when the agent file names anthropic or openai models; the agent
	// function may read it, and reads it once per cold start.
	ModelKeys awssecretsmanager.ISecret
	// RemovalPolicy applies to the stateful resources: the cluster, the
	// table, the RAP key secret and the log groups (default RETAIN, with
	// deletion protection on the cluster and the table).
	RemovalPolicy awscdk.RemovalPolicy
}

// EventSource configures an SQS event source mapping.
type EventSource struct {
	// BatchSize is the most records per invocation (default 10).
	BatchSize int
	// MaxConcurrency caps the concurrent invocations the mapping makes
	// (2 to 1000; 0 leaves it unset).
	MaxConcurrency int
}

// Defaults.
const (
	DefaultMemorySize      = 1024
	DefaultTimeoutSeconds  = 300
	DefaultBatchSize       = 10
	DefaultMaxReceiveCount = 5
	// VisibilityFactor is the input and relay queues' visibility timeout
	// in multiples of their function's timeout (AWS's advice for SQS event
	// sources, which retry throttled invocations within it).
	VisibilityFactor = 6
)

// settings are the props with their defaults applied, in plain numbers.
type settings struct {
	InfinityAgentProps
	timeoutSeconds int
}

var outputPrefixChars = regexp.MustCompile(`[^A-Za-z0-9]`)

// outputPrefix is the construct id without its non-alphanumeric
// characters: the prefix of the stack outputs' names.
func outputPrefix(id string) string { return outputPrefixChars.ReplaceAllString(id, "") }

// resolve applies the defaults and reports every invalid prop (replacing
// it by its default, so that the construct can still be built and the
// synthesis report all of them).
func resolve(p InfinityAgentProps) (settings, []string) {
	s := settings{InfinityAgentProps: p}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if s.BootstrapPath == "" {
		bad("BootstrapPath: required (the bootstrap built for linux/arm64)")
	}
	if s.MemorySize == 0 {
		s.MemorySize = DefaultMemorySize
	}
	if s.MemorySize < 128 || s.MemorySize > 10240 {
		bad("MemorySize: %d MiB is not within Lambda's 128 to 10240", s.MemorySize)
		s.MemorySize = DefaultMemorySize
	}
	s.timeoutSeconds = DefaultTimeoutSeconds
	if s.Timeout != nil {
		if *s.Timeout.IsUnresolved() {
			bad("Timeout: must be a concrete duration (the queue's visibility timeout is derived from it)")
		} else {
			sec := *s.Timeout.ToSeconds(nil)
			if sec != math.Trunc(sec) || sec < 1 || sec > 900 {
				bad("Timeout: %v s is not a whole number of seconds from 1 to 900", sec)
			} else {
				s.timeoutSeconds = int(sec)
			}
		}
	}
	s.Input = eventSource("Input", s.Input, bad)
	s.Relay = eventSource("Relay", s.Relay, bad)
	if s.MaxReceiveCount == 0 {
		s.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if s.MaxReceiveCount < 1 || s.MaxReceiveCount > 1000 {
		bad("MaxReceiveCount: %d is not from 1 to 1000", s.MaxReceiveCount)
		s.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if s.LogRetention == "" {
		s.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}
	switch s.ReceiverAuth {
	case "":
		s.ReceiverAuth = awslambda.FunctionUrlAuthType_NONE
	case awslambda.FunctionUrlAuthType_NONE, awslambda.FunctionUrlAuthType_AWS_IAM:
	default:
		bad("ReceiverAuth: %q is not NONE or AWS_IAM", s.ReceiverAuth)
		s.ReceiverAuth = awslambda.FunctionUrlAuthType_NONE
	}
	if s.RemovalPolicy == "" {
		s.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	for i, t := range s.Tools {
		if t == nil {
			bad("Tools[%d]: nil", i)
		}
	}
	return s, errs
}

func eventSource(name string, e EventSource, bad func(string, ...any)) EventSource {
	if e.BatchSize == 0 {
		e.BatchSize = DefaultBatchSize
	}
	if e.BatchSize < 1 || e.BatchSize > 10 {
		bad("%s.BatchSize: %d is not from 1 to 10", name, e.BatchSize)
		e.BatchSize = DefaultBatchSize
	}
	if e.MaxConcurrency != 0 && (e.MaxConcurrency < 2 || e.MaxConcurrency > 1000) {
		bad("%s.MaxConcurrency: %d is not from 2 to 1000", name, e.MaxConcurrency)
		e.MaxConcurrency = 0
	}
	return e
}
