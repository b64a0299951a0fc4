package cloud

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
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
)

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
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(name, "%q is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", v)
		}
	}
	arn := func(name, v string) {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			bad(name, "%q is not an ARN", v)
		}
	}
	if v := getenv(EnvRAPKey); v != "" && c.RAPKey == nil {
		bad(EnvRAPKey, "not hex of 16 bytes or more (make one with: openssl rand -hex 32)")
	}
	if v := c.RAPCallbackURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(EnvRAPCallbackURL, "%q is not a URL (the receiver function's Function URL)", v)
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
		switch {
		case c.DSQLEndpoint == "" && c.DatabaseURL == "":
			bad(EnvDSQLEndpoint, "required for the agent function (or %s for a plain PostgreSQL)", EnvDatabaseURL)
		case c.DSQLEndpoint != "" && c.DatabaseURL != "":
			bad(EnvDatabaseURL, "set either it or %s, not both", EnvDSQLEndpoint)
		}
		if strings.Contains(c.DSQLEndpoint, "/") {
			bad(EnvDSQLEndpoint, "%q should be a host name, such as abc123.dsql.us-east-1.on.aws", c.DSQLEndpoint)
		}
	case RoleRelay:
		need(EnvRegion, c.Region)
		need(EnvInputQueueURL, c.InputQueueURL)
	case RoleReceiver:
		need(EnvRegion, c.Region)
		need(EnvInputQueueURL, c.InputQueueURL)
		if getenv(EnvRAPKey) == "" {
			bad(EnvRAPKey, "required for the receiver function (the same key as the agent function's)")
		}
	case "":
		bad(EnvRole, "required: agent, relay or receiver")
	default:
		bad(EnvRole, "%q is not agent, relay or receiver", c.Role)
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
