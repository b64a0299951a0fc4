// Package emulators installs and starts local stand-ins for the AWS services
// the cloud mode uses, so that the cloud code runs against real protocol
// servers on a laptop or in CI:
//
//   - PostgreSQL 15 (Debian's package) for Aurora DSQL;
//   - DynamoDB Local 1.25.1 (the JAR shipped in the npm package
//     amplify-dynamodb-simulator@2.9.30, run on Java 17) for DynamoDB;
//   - fauxqs 1.9.2 (npm, run on Node.js) for SQS.
//
// Installs are cached under Dir and done once (idempotently, under a file
// lock, so parallel test processes share them). Every server binds loopback
// on a free port, is a child of the calling process (it dies with it on
// Linux) and is removed by Stop.
//
// Tests reach them through Postgres, DynamoDB and SQS, which reuse the
// server named by an environment variable (scripts/test starts one of each
// for the whole suite) or start one per test process, stopped by Main.
package emulators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrUnavailable reports that an emulator cannot be installed or started
// here (a missing system package that cannot be installed, no network for
// npm, ...). The wrapped message says what to do.
var ErrUnavailable = errors.New("emulator unavailable")

// Versions of what Install fetches.
const (
	FauxqsVersion          = "1.9.2"
	DynamoDBPackage        = "amplify-dynamodb-simulator@2.9.30"
	PostgresMajor          = "15"
	postgresPackage        = "postgresql-15"
	javaPackage            = "openjdk-17-jre-headless"
	startTimeout           = 60 * time.Second
	dynamoDBStartupTimeout = 90 * time.Second
)

// Environment variables naming servers that are already running; the
// test helpers use them instead of starting their own.
const (
	EnvPostgres = "INFINITY_TEST_POSTGRES_URL"
	EnvDynamoDB = "INFINITY_TEST_DYNAMODB_ENDPOINT"
	EnvSQS      = "INFINITY_TEST_SQS_ENDPOINT"
	// EnvDir overrides Dir.
	EnvDir = "INFINITY_EMULATORS_DIR"
)

// Dir is where installs are cached: $INFINITY_EMULATORS_DIR, or
// infinity/emulators under the user's cache directory.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("emulators: cache directory: %w", err)
	}
	return filepath.Join(base, "infinity", "emulators"), nil
}

// Server is a running emulator.
type Server struct {
	// Name is "postgres", "dynamodb" or "sqs".
	Name string
	// Endpoint is an http:// URL for DynamoDB and SQS, and a postgres:// URL
	// for PostgreSQL.
	Endpoint string
	stop     func() error
}

// Stop stops the server and removes its data. It is safe to call twice.
func (s *Server) Stop() error {
	if s == nil || s.stop == nil {
		return nil
	}
	stop := s.stop
	s.stop = nil
	return stop()
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("emulators: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts connections, the process exits (exited
// closes) or ctx ends.
func waitTCP(ctx context.Context, addr string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the process exited before it listened")
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
