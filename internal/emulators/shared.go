package emulators

import (
	"context"
	"os"
	"sync"
	"testing"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

var shared struct {
	mu      sync.Mutex
	servers map[string]*Server
	errs    map[string]error
}

// Postgres returns the URL of a PostgreSQL server for tests: the one in
// $INFINITY_TEST_POSTGRES_URL, or one this process starts on first use and
// Main stops. Tests share it, so each must use names of its own (a schema
// or a table prefix).
func Postgres(tb TB) string { return get(tb, "postgres", EnvPostgres, StartPostgres) }

// DynamoDB returns the endpoint of a DynamoDB-protocol server for tests
// ($INFINITY_TEST_DYNAMODB_ENDPOINT or one started on first use).
func DynamoDB(tb TB) string { return get(tb, "dynamodb", EnvDynamoDB, StartDynamoDB) }

// SQS returns the endpoint of an SQS-protocol server for tests
// ($INFINITY_TEST_SQS_ENDPOINT or one started on first use).
func SQS(tb TB) string { return get(tb, "sqs", EnvSQS, StartSQS) }

func get(tb TB, name, env string, start func(context.Context) (*Server, error)) string {
	tb.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if s := shared.servers[name]; s != nil {
		return s.Endpoint
	}
	if err := shared.errs[name]; err != nil {
		tb.Fatalf("%s emulator: %v", name, err)
	}
	s, err := start(context.Background())
	if err != nil {
		if shared.errs == nil {
			shared.errs = map[string]error{}
		}
		shared.errs[name] = err
		tb.Fatalf("%s emulator: %v", name, err)
	}
	if shared.servers == nil {
		shared.servers = map[string]*Server{}
	}
	shared.servers[name] = s
	return s.Endpoint
}

// Main runs the tests and then stops the servers they started. Use it in
// TestMain: os.Exit(emulators.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}

// StopShared stops the servers the test helpers started.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for name, s := range shared.servers {
		s.Stop()
		delete(shared.servers, name)
	}
}

// AWSEnv sets the environment every AWS SDK client in a test needs to talk
// to the emulators (region and dummy credentials; the emulators check no
// signatures), for the duration of the test.
func AWSEnv(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}
