package cloud

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
)

// Role is which Lambda function a process serves.
type Role string

// Roles.
const (
	RoleAgent    Role = "agent"
	RoleRelay    Role = "relay"
	RoleReceiver Role = "receiver"
	// RoleMigrate is the CloudFormation custom resource that creates the
	// conversation store's schema on deploy; it needs only the database
	// settings.
	RoleMigrate Role = "migrate"
)

// Environment variables the functions read.
const (
	EnvRole             = "INFINITY_ROLE"
	EnvRegion           = "AWS_REGION"
	EnvInputQueueURL    = "INFINITY_INPUT_QUEUE_URL"
	EnvInputQueueARN    = "INFINITY_INPUT_QUEUE_ARN"
	EnvRelayQueueURL    = "INFINITY_RELAY_QUEUE_URL"
	EnvOutputQueueURL   = "INFINITY_OUTPUT_QUEUE_URL"
	EnvDeadLetterURL    = "INFINITY_DEAD_LETTER_QUEUE_URL"
	EnvSchedulerRoleARN = "INFINITY_SCHEDULER_ROLE_ARN"
	EnvScheduleGroup    = "INFINITY_SCHEDULE_GROUP"
	EnvStateTable       = "INFINITY_STATE_TABLE"
	EnvDSQLEndpoint     = "INFINITY_DSQL_ENDPOINT"
	EnvDSQLUser         = "INFINITY_DSQL_USER"
	EnvDatabaseURL      = "INFINITY_DATABASE_URL"
	EnvAgentFile        = "INFINITY_AGENT_FILE"
	EnvSliceMargin      = "INFINITY_SLICE_MARGIN"
	EnvRAPKey           = "INFINITY_RAP_KEY"
	EnvRAPCallbackURL   = "INFINITY_RAP_CALLBACK_URL"
	EnvRAPKeySecretARN  = "INFINITY_RAP_KEY_SECRET_ARN"
	EnvMaxReceiveCount  = "INFINITY_MAX_RECEIVE_COUNT"
	EnvModel            = "INFINITY_MODEL"
	EnvTools            = "INFINITY_TOOLS"
	// EnvModelKeysSecretARN names a Secrets Manager secret whose string
	// is a JSON object of variable names to values, e.g.
	// {"ANTHROPIC_API_KEY": "sk-ant-…"}: the Lambda bootstrap's Anthropic
	// and OpenAI providers take their settings (ANTHROPIC_API_KEY,
	// ANTHROPIC_BASE_URL, OPENAI_API_KEY, OPENAI_BASE_URL) from it first,
	// then from the environment, so that keys need not sit in the
	// function's configuration in plain text.
	EnvModelKeysSecretARN = "INFINITY_MODEL_KEYS_SECRET_ARN"
)

// DefaultMaxReceiveCount is the input queue's redrive maxReceiveCount when
// INFINITY_MAX_RECEIVE_COUNT is not set (the CDK construct's default).
const DefaultMaxReceiveCount = 5

// Config is a function's configuration.
type Config struct {
	Role   Role
	Region string
	// Queues.
	InputQueueURL  string
	InputQueueARN  string
	RelayQueueURL  string
	OutputQueueURL string // optional: display events
	DeadLetterURL  string // optional: undecodable records
	// EventBridge Scheduler, for sleeps over 900 s.
	SchedulerRoleARN string
	ScheduleGroup    string
	// StateTable is the DynamoDB table of the state store.
	StateTable string
	// DSQLEndpoint is the Aurora DSQL cluster endpoint (IAM auth as
	// DSQLUser, TLS); DatabaseURL is a plain PostgreSQL URL instead (the
	// local stand-in). Exactly one is set.
	DSQLEndpoint string
	DSQLUser     string
	DatabaseURL  string
	// AgentFile is the agent file new root threads run with; empty means
	// the bundled offline demo agent.
	AgentFile string
	// SliceMargin is kept free before the invocation's deadline: a slice
	// that reaches it commits what it has and continues in a later
	// invocation.
	SliceMargin time.Duration
	// RAPKey signs the per-call tokens of RAP callback URLs (hex, 16 bytes
	// or more; the agent and receiver functions share it). RAPCallbackURL is
	// the receiver's Function URL, under which tool servers call back.
	RAPKey         []byte
	RAPCallbackURL string
	// RAPKeySecretARN names a Secrets Manager secret holding the RAP key
	// as hex; Open reads it (through Options.Secrets) when RAPKey is not
	// set. The key never appears in the function's configuration.
	RAPKeySecretARN string
	// MaxReceiveCount must be the input queue's redrive maxReceiveCount
	// (INFINITY_MAX_RECEIVE_COUNT, default DefaultMaxReceiveCount): a
	// record whose slice fails on that receive is dead-lettered by the
	// agent function itself, with the reason attached.
	MaxReceiveCount int
	// Model, "provider/id", replaces the agent file's default model.
	Model string
	// Tools are tool servers added to the agent file's.
	Tools Tools
}

// Tools are tool servers the deployment adds to the agent file's
// (INFINITY_TOOLS, JSON).
type Tools struct {
	RAP []string    `json:"rap,omitempty"`
	MCP []MCPServer `json:"mcp,omitempty"`
}

// MCPServer is a remote MCP server; its request headers (credentials) come
// from a Secrets Manager secret holding a JSON object of name to value.
type MCPServer struct {
	URL              string `json:"url"`
	HeadersSecretARN string `json:"headers_secret_arn,omitempty"`
}

// LoadConfig reads the configuration of role from getenv (os.Getenv) and
// reports every missing or malformed variable at once, each by name.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Role:             Role(strings.TrimSpace(getenv(EnvRole))),
		Region:           getenv(EnvRegion),
		InputQueueURL:    getenv(EnvInputQueueURL),
		InputQueueARN:    getenv(EnvInputQueueARN),
		RelayQueueURL:    getenv(EnvRelayQueueURL),
		OutputQueueURL:   getenv(EnvOutputQueueURL),
		DeadLetterURL:    getenv(EnvDeadLetterURL),
		SchedulerRoleARN: getenv(EnvSchedulerRoleARN),
		ScheduleGroup:    getenv(EnvScheduleGroup),
		StateTable:       getenv(EnvStateTable),
		DSQLEndpoint:     getenv(EnvDSQLEndpoint),
		DSQLUser:         getenv(EnvDSQLUser),
		DatabaseURL:      getenv(EnvDatabaseURL),
		AgentFile:        getenv(EnvAgentFile),
		SliceMargin:      10 * time.Second,
		RAPKeySecretARN:  strings.TrimSpace(getenv(EnvRAPKeySecretARN)),
		MaxReceiveCount:  DefaultMaxReceiveCount,
		Model:            strings.TrimSpace(getenv(EnvModel)),
	}
	if v := getenv(EnvRAPKey); v != "" {
		if key, err := hex.DecodeString(strings.TrimSpace(v)); err == nil && len(key) >= 16 {
			c.RAPKey = key
		}
	}
	c.RAPCallbackURL = strings.TrimRight(getenv(EnvRAPCallbackURL), "/")
	if c.ScheduleGroup == "" {
		c.ScheduleGroup = "default"
	}
	if c.DSQLUser == "" {
		c.DSQLUser = "admin"
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	need := func(name, v string) {
		if v == "" {
			bad(name, "required for the %s function", c.Role)
		}
	}
	queueURL := func(name, v string) {
		if v == "" {
			return
		}
		if !IsHTTPURL(v) {
			bad(name, "%q is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", v)
		}
	}
	arn := func(name, v string) {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			bad(name, "%q is not an ARN", v)
		}
	}
	databaseSettings := func() {
		switch {
		case c.DSQLEndpoint == "" && c.DatabaseURL == "":
			bad(EnvDSQLEndpoint, "required for the %s function (or %s for a plain PostgreSQL)", c.Role, EnvDatabaseURL)
		case c.DSQLEndpoint != "" && c.DatabaseURL != "":
			bad(EnvDatabaseURL, "set either it or %s, not both", EnvDSQLEndpoint)
		}
		if strings.Contains(c.DSQLEndpoint, "/") {
			bad(EnvDSQLEndpoint, "%q should be a host name, such as abc123.dsql.us-east-1.on.aws", c.DSQLEndpoint)
		}
	}
	if v := getenv(EnvRAPKey); v != "" && c.RAPKey == nil {
		bad(EnvRAPKey, "not hex of 16 bytes or more (make one with: openssl rand -hex 32)")
	}
	if v := c.RAPCallbackURL; v != "" {
		if !IsHTTPURL(v) {
			bad(EnvRAPCallbackURL, "%q is not a URL (the receiver function's Function URL)", v)
		}
	}
	if getenv(EnvRAPKey) != "" && c.RAPKeySecretARN != "" {
		bad(EnvRAPKeySecretARN, "set either it or %s, not both", EnvRAPKey)
	}
	arn(EnvRAPKeySecretARN, c.RAPKeySecretARN)
	if v := getenv(EnvMaxReceiveCount); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 1000 {
			bad(EnvMaxReceiveCount, "%q is not a whole number from 1 to 1000 (the input queue's maxReceiveCount)", v)
		}
		c.MaxReceiveCount = n
	}
	if v := c.Model; v != "" {
		if p, id, ok := strings.Cut(v, "/"); !ok || p == "" || id == "" {
			bad(EnvModel, "%q is not provider/id, such as bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", v)
		}
	}
	if v := getenv(EnvTools); strings.TrimSpace(v) != "" {
		if err := c.Tools.parse(v); err != nil {
			bad(EnvTools, "%v", err)
		}
	}
	if v := getenv(EnvSliceMargin); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad(EnvSliceMargin, "%q is not a duration such as 10s", v)
		}
		c.SliceMargin = d
	}
	switch c.Role {
	case RoleAgent:
		need(EnvRegion, c.Region)
		need(EnvInputQueueURL, c.InputQueueURL)
		need(EnvInputQueueARN, c.InputQueueARN)
		need(EnvRelayQueueURL, c.RelayQueueURL)
		need(EnvSchedulerRoleARN, c.SchedulerRoleARN)
		need(EnvStateTable, c.StateTable)
		databaseSettings()
	case RoleRelay:
		need(EnvRegion, c.Region)
		need(EnvInputQueueURL, c.InputQueueURL)
	case RoleReceiver:
		need(EnvRegion, c.Region)
		need(EnvInputQueueURL, c.InputQueueURL)
		if getenv(EnvRAPKey) == "" && c.RAPKeySecretARN == "" {
			bad(EnvRAPKey, "required for the receiver function (the same key as the agent function's), or %s", EnvRAPKeySecretARN)
		}
	case RoleMigrate:
		need(EnvRegion, c.Region)
		databaseSettings()
	case "":
		bad(EnvRole, "required: agent, relay, receiver or migrate")
	default:
		bad(EnvRole, "%q is not agent, relay, receiver or migrate", c.Role)
	}
	for _, q := range []struct{ name, v string }{
		{EnvInputQueueURL, c.InputQueueURL}, {EnvRelayQueueURL, c.RelayQueueURL},
		{EnvOutputQueueURL, c.OutputQueueURL}, {EnvDeadLetterURL, c.DeadLetterURL},
	} {
		queueURL(q.name, q.v)
	}
	arn(EnvInputQueueARN, c.InputQueueARN)
	arn(EnvSchedulerRoleARN, c.SchedulerRoleARN)
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %w: %w", infinity.ErrInvalid, errors.Join(errs...))
	}
	return c, nil
}

// parse reads INFINITY_TOOLS: JSON with the RAP servers' base URLs and the
// MCP servers, each URL absolute (http or https).
func (t *Tools) parse(v string) error {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(t); err != nil {
		return fmt.Errorf(`not {"rap":["URL"],"mcp":[{"url":"URL","headers_secret_arn":"ARN"}]}: %v`, err)
	}
	var errs []error
	for i, u := range t.RAP {
		if !IsHTTPURL(u) {
			errs = append(errs, fmt.Errorf("rap[%d]: %q is not an http(s) URL", i, u))
		}
	}
	for i, m := range t.MCP {
		if !IsHTTPURL(m.URL) {
			errs = append(errs, fmt.Errorf("mcp[%d].url: %q is not an http(s) URL", i, m.URL))
		}
		if m.HeadersSecretARN != "" && !strings.HasPrefix(m.HeadersSecretARN, "arn:") {
			errs = append(errs, fmt.Errorf("mcp[%d].headers_secret_arn: %q is not an ARN", i, m.HeadersSecretARN))
		}
	}
	return errors.Join(errs...)
}

// IsHTTPURL reports whether v is an absolute http or https URL with a
// host, as every URL setting of the functions must be.
func IsHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
