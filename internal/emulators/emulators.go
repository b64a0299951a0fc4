// Package emulators installs and starts local stand-ins for the AWS services
// the cloud mode uses, so that the cloud code runs against real protocol
// servers on a laptop or in CI:
//
//   - PostgreSQL 15 (Debian's package) for Aurora DSQL;
//   - DynamoDB Local 1.25.1 (the JAR shipped in the npm package
//     amplify-dynamodb-simulator@2.9.30, run on Java 17) for DynamoDB;
//   - fauxqs 1.9.2 (npm, run on Node.js) for SQS;
//   - Debian's Chromium, headless, for the web UI's browser tests (not a
//     server: its Endpoint is the program's path, started by each test).
//
// Start installs nothing unless its caller asks (Options.Install): without
// it, anything missing fails it with an error matching ErrNotInstalled
// that lists what is missing and how to install it. Installs are cached
// under Dir and done once (idempotently, under a file lock, so parallel
// test processes share them). Every server binds loopback on a free port,
// is a child of the calling process (it dies with it on Linux) and is
// removed by Stop.
//
// Tests reach the emulators through package emutest, which uses the
// servers the environment names (scripts/test starts one of each for the
// whole suite) and skips without them; this package links no test code.
package emulators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrUnavailable reports that an emulator cannot be installed or started
// here (a missing system package that cannot be installed, no network for
// npm, ...). The wrapped message says what to do.
var ErrUnavailable = errors.New("emulator unavailable")

// ErrNotInstalled reports that an emulator needs something that is not
// installed, and Options.Install did not allow installing it. The error's
// message lists each missing piece with how to install it.
var ErrNotInstalled = errors.New("emulator not installed")

// Kind names an emulator.
type Kind string

// The emulators.
const (
	// Postgres is PostgreSQL 15, standing in for Aurora DSQL.
	Postgres Kind = "postgres"
	// DynamoDB is DynamoDB Local.
	DynamoDB Kind = "dynamodb"
	// SQS is fauxqs.
	SQS Kind = "sqs"
	// Chromium is the browser the web UI's tests drive headless.
	Chromium Kind = "chromium"
)

// Options say what Start may do besides starting servers.
type Options struct {
	// Install lets Start install what the emulators need and is missing:
	// Debian packages with apt-get (as root, or through passwordless
	// sudo) and npm packages under Dir. Without it Start installs nothing.
	Install bool
	// Progress, when set, is told what is installed before it is, that a
	// slow step still runs, and how long each took.
	Progress io.Writer
	// InstallHint, when set, ends the ErrNotInstalled error: the command
	// that installs what is missing (such as "infinity cloud-local
	// --install").
	InstallHint string
}

// Versions of what Install fetches.
const (
	FauxqsVersion          = "1.9.2"
	DynamoDBPackage        = "amplify-dynamodb-simulator@2.9.30"
	PostgresMajor          = "15"
	chromiumPackage        = "chromium"
	postgresPackage        = "postgresql-15"
	javaPackage            = "openjdk-17-jre-headless"
	startTimeout           = 60 * time.Second
	dynamoDBStartupTimeout = 90 * time.Second
)

// Environment variables naming servers that are already running: the
// tests (package emutest) and "infinity cloud-local" use them instead of
// starting their own.
const (
	EnvPostgres = "INFINITY_TEST_POSTGRES_URL"
	EnvDynamoDB = "INFINITY_TEST_DYNAMODB_ENDPOINT"
	EnvSQS      = "INFINITY_TEST_SQS_ENDPOINT"
	// EnvChromium names the Chromium program.
	EnvChromium = "INFINITY_TEST_CHROMIUM"
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
	Kind Kind
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
