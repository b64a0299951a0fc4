// Package emutest gives tests the emulators of package emulators: the
// running servers the environment names, or, when it requires them
// (INFINITY_REQUIRE_EMULATORS=1), servers this test process starts,
// installing what they need. With neither, a test that needs one skips and
// says that ./scripts/test runs it; when they are required, a missing or
// unstartable emulator fails it. Only tests import this package (it imports
// testing); the programs use package emulators.
package emutest

import (
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/internal/emulators"
)

// EnvRequire, set to 1 (scripts/test sets it), makes a missing emulator a
// failure instead of a skip: a test process whose environment names none
// starts its own, installing what it needs, and fails if it cannot.
const EnvRequire = "INFINITY_REQUIRE_EMULATORS"

// testCommand is the command that runs the tests with the emulators.
const testCommand = "./scripts/test"

var shared struct {
	mu      sync.Mutex
	servers map[emulators.Kind]*emulators.Server
	errs    map[emulators.Kind]error
	checked map[string]error // named endpoints, dialled once
}

// Postgres returns the URL of a PostgreSQL server for tests: the one in
// $INFINITY_TEST_POSTGRES_URL or, when emulators are required, one this
// process starts on first use and Main stops; otherwise the test skips.
// Tests share it, so each must use names of its own (a schema or a table
// prefix).
func Postgres(tb testing.TB) string {
	tb.Helper()
	return get(tb, emulators.Postgres, "PostgreSQL", emulators.EnvPostgres)
}

// DynamoDB returns the endpoint of a DynamoDB-protocol server for tests
// ($INFINITY_TEST_DYNAMODB_ENDPOINT, or as Postgres).
func DynamoDB(tb testing.TB) string {
	tb.Helper()
	return get(tb, emulators.DynamoDB, "DynamoDB Local", emulators.EnvDynamoDB)
}

// SQS returns the endpoint of an SQS-protocol server for tests
// ($INFINITY_TEST_SQS_ENDPOINT, or as Postgres).
func SQS(tb testing.TB) string {
	tb.Helper()
	return get(tb, emulators.SQS, "fauxqs (SQS)", emulators.EnvSQS)
}

// Chromium returns the path of a Chromium program for browser tests: the
// one $INFINITY_TEST_CHROMIUM names or, when emulators are required,
// Debian's (installed on first use); otherwise the test skips.
func Chromium(tb testing.TB) string {
	tb.Helper()
	return get(tb, emulators.Chromium, "Chromium", emulators.EnvChromium)
}

// RIE returns the path of the Lambda Runtime Interface Emulator, built
// with go install on first use and cached. The tests that run it need the
// other emulators too: it skips unless emulators are required or the
// environment names all three, running.
func RIE(tb testing.TB) string {
	tb.Helper()
	if !required(tb) && !(running(emulators.EnvPostgres) && running(emulators.EnvDynamoDB) && running(emulators.EnvSQS)) {
		tb.Skipf("skipped: needs the Lambda Runtime Interface Emulator (built with go install) and the emulators, and the environment names no running emulators (%s, %s, %s); %s runs this test with them (or %s=1 starts them in this test process, installing what is missing)",
			emulators.EnvPostgres, emulators.EnvDynamoDB, emulators.EnvSQS, testCommand, EnvRequire)
	}
	path, err := emulators.InstallRIE(tb.Context())
	if err != nil {
		tb.Fatalf("the Lambda Runtime Interface Emulator: %v", err)
	}
	return path
}

func get(tb testing.TB, kind emulators.Kind, name, env string) string {
	tb.Helper()
	if v := os.Getenv(env); v != "" {
		err := answers(v)
		switch {
		case err == nil:
			return v
		case required(tb):
			tb.Fatalf("%s=%s, and no %s emulator answers there: %v", env, v, name, err)
		default:
			tb.Skipf("skipped: %s=%s, and no %s emulator answers there (%v); %s runs this test with the emulators", env, v, name, err, testCommand)
		}
	}
	if !required(tb) {
		tb.Skipf("skipped: needs the %s emulator, and %s names none; %s runs this test with the emulators (or %s=1 starts them in this test process, installing what is missing)",
			name, env, testCommand, EnvRequire)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if s := shared.servers[kind]; s != nil {
		return s.Endpoint
	}
	err := shared.errs[kind]
	if err == nil {
		var servers []*emulators.Server
		if servers, err = emulators.Start(tb.Context(), emulators.Options{Install: true}, kind); err == nil {
			if shared.servers == nil {
				shared.servers = map[emulators.Kind]*emulators.Server{}
			}
			shared.servers[kind] = servers[0]
			return servers[0].Endpoint
		}
		if shared.errs == nil {
			shared.errs = map[emulators.Kind]error{}
		}
		shared.errs[kind] = err
	}
	tb.Fatalf("%s=1 and %s is unset, and this test process could not start the %s emulator: %v", EnvRequire, env, name, err)
	return ""
}

// running reports whether the environment names a server that answers.
func running(env string) bool {
	v := os.Getenv(env)
	return v != "" && answers(v) == nil
}

// required reports whether the environment requires the emulators.
func required(tb testing.TB) bool {
	tb.Helper()
	v := os.Getenv(EnvRequire)
	if v == "" {
		return false
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		tb.Fatalf("%s=%q: want 1 or 0", EnvRequire, v)
	}
	return on
}

// answers reports whether something listens where endpoint (a URL) points,
// dialling each endpoint once per process.
func answers(endpoint string) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if err, ok := shared.checked[endpoint]; ok {
		return err
	}
	var err error
	if strings.HasPrefix(endpoint, "/") { // a program (Chromium)
		_, err = os.Stat(endpoint)
	} else if u, perr := url.Parse(endpoint); perr == nil && u.Port() != "" {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", u.Host, 5*time.Second); err == nil {
			c.Close()
		}
	}
	if shared.checked == nil {
		shared.checked = map[string]error{}
	}
	shared.checked[endpoint] = err
	return err
}

// Main runs the tests and then stops the servers they started. Use it in
// TestMain: os.Exit(emutest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}

// StopShared stops the servers the helpers started.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for kind, s := range shared.servers {
		s.Stop()
		delete(shared.servers, kind)
	}
}

// AWSEnv sets the environment every AWS SDK client in a test needs to talk
// to the emulators (region and dummy credentials; the emulators check no
// signatures), for the duration of the test.
func AWSEnv(tb testing.TB) {
	tb.Helper()
	tb.Setenv("AWS_REGION", "us-east-1")
	tb.Setenv("AWS_ACCESS_KEY_ID", "test")
	tb.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	tb.Setenv("AWS_SESSION_TOKEN", "")
	tb.Setenv("AWS_PROFILE", "")
	tb.Setenv("AWS_CONFIG_FILE", os.DevNull)
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}
