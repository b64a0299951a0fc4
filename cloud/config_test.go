package cloud_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func agentEnv() map[string]string {
	return map[string]string{
		cloud.EnvRole:             "agent",
		cloud.EnvRegion:           "us-east-1",
		cloud.EnvInputQueueURL:    "https://sqs.us-east-1.amazonaws.com/123456789012/in.fifo",
		cloud.EnvInputQueueARN:    "arn:aws:sqs:us-east-1:123456789012:in.fifo",
		cloud.EnvRelayQueueURL:    "https://sqs.us-east-1.amazonaws.com/123456789012/relay",
		cloud.EnvSchedulerRoleARN: "arn:aws:iam::123456789012:role/sched",
		cloud.EnvStateTable:       "state",
		cloud.EnvDSQLEndpoint:     "abc.dsql.us-east-1.on.aws",
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := cloud.LoadConfig(env(agentEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.ScheduleGroup != "default" || c.DSQLUser != "admin" || c.SliceMargin.Seconds() != 10 {
		t.Fatalf("defaults: %+v", c)
	}

	cases := []struct {
		name  string
		edit  func(m map[string]string)
		wants []string
	}{
		{"no role", func(m map[string]string) { delete(m, cloud.EnvRole) }, []string{"INFINITY_ROLE: required"}},
		{"bad role", func(m map[string]string) { m[cloud.EnvRole] = "leader" }, []string{`"leader" is not agent, relay, receiver or migrate`}},
		{"everything missing", func(m map[string]string) {
			for k := range m {
				if k != cloud.EnvRole {
					delete(m, k)
				}
			}
		}, []string{"AWS_REGION: required", "INFINITY_INPUT_QUEUE_URL: required", "INFINITY_STATE_TABLE: required", "INFINITY_DSQL_ENDPOINT: required", "INFINITY_SCHEDULER_ROLE_ARN: required"}},
		{"both databases", func(m map[string]string) { m[cloud.EnvDatabaseURL] = "postgres://x" }, []string{"set either it or INFINITY_DSQL_ENDPOINT"}},
		{"endpoint is a URL", func(m map[string]string) { m[cloud.EnvDSQLEndpoint] = "https://abc.dsql.us-east-1.on.aws/" }, []string{"should be a host name"}},
		{"bad queue URL", func(m map[string]string) { m[cloud.EnvOutputQueueURL] = "out" }, []string{`INFINITY_OUTPUT_QUEUE_URL: "out" is not a queue URL`}},
		{"bad ARN", func(m map[string]string) { m[cloud.EnvInputQueueARN] = "in.fifo" }, []string{`"in.fifo" is not an ARN`}},
		{"bad margin", func(m map[string]string) { m[cloud.EnvSliceMargin] = "ten" }, []string{`INFINITY_SLICE_MARGIN: "ten" is not a duration`}},
		{"relay needs little", func(m map[string]string) {
			m[cloud.EnvRole] = "relay"
			delete(m, cloud.EnvInputQueueURL)
			delete(m, cloud.EnvStateTable)
		}, []string{"INFINITY_INPUT_QUEUE_URL: required for the relay function"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := agentEnv()
			tc.edit(m)
			_, err := cloud.LoadConfig(env(m))
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.name == "relay needs little" && strings.Contains(err.Error(), "STATE_TABLE") {
				t.Errorf("the relay does not need a table: %v", err)
			}
		})
	}
}

// The variables the CDK construct sets besides the originals: each is
// checked, and every problem is named.
func TestLoadConfigDeploymentSettings(t *testing.T) {
	m := agentEnv()
	m[cloud.EnvRAPKeySecretARN] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rap-AbCdEf"
	m[cloud.EnvMaxReceiveCount] = "7"
	m[cloud.EnvModel] = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	m[cloud.EnvTools] = `{"rap":["https://tools.example.com"],"mcp":[{"url":"https://mcp.example.com/mcp","headers_secret_arn":"arn:aws:secretsmanager:us-east-1:1:secret:h"}]}`
	c, err := cloud.LoadConfig(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxReceiveCount != 7 || c.RAPKeySecretARN == "" || c.Model == "" || len(c.Tools.RAP) != 1 || c.Tools.MCP[0].HeadersSecretARN == "" {
		t.Fatalf("config %+v", c)
	}
	if c, _ := cloud.LoadConfig(env(agentEnv())); c.MaxReceiveCount != cloud.DefaultMaxReceiveCount {
		t.Fatalf("default max receive count %d", c.MaxReceiveCount)
	}

	m = agentEnv()
	m[cloud.EnvRAPKey] = strings.Repeat("ab", 16)
	m[cloud.EnvRAPKeySecretARN] = "secret"
	m[cloud.EnvMaxReceiveCount] = "0"
	m[cloud.EnvModel] = "claude"
	m[cloud.EnvTools] = `{"rap":["tools"],"mcp":[{"url":"https://x","headers_secret_arn":"h"}],"other":1}`
	_, err = cloud.LoadConfig(env(m))
	for _, want := range []string{"INFINITY_RAP_KEY_SECRET_ARN: set either it or INFINITY_RAP_KEY", `INFINITY_RAP_KEY_SECRET_ARN: "secret" is not an ARN`,
		`INFINITY_MAX_RECEIVE_COUNT: "0"`, `INFINITY_MODEL: "claude" is not provider/id`, `INFINITY_TOOLS: not {`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	m[cloud.EnvTools] = `{"rap":["tools"],"mcp":[{"url":"https://x","headers_secret_arn":"h"}]}`
	_, err = cloud.LoadConfig(env(m))
	for _, want := range []string{`rap[0]: "tools" is not an http(s) URL`, `mcp[0].headers_secret_arn: "h" is not an ARN`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// The migrate function needs the database settings and the region only.
func TestLoadConfigMigrate(t *testing.T) {
	c, err := cloud.LoadConfig(env(map[string]string{cloud.EnvRole: "migrate", cloud.EnvRegion: "us-east-1", cloud.EnvDSQLEndpoint: "abc.dsql.us-east-1.on.aws"}))
	if err != nil || c.Role != cloud.RoleMigrate {
		t.Fatalf("%+v, %v", c, err)
	}
	_, err = cloud.LoadConfig(env(map[string]string{cloud.EnvRole: "migrate"}))
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "INFINITY_DSQL_ENDPOINT: required for the migrate function") {
		t.Fatalf("err = %v", err)
	}
}
