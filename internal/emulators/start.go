package emulators

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startPostgres starts a throwaway PostgreSQL cluster (trust auth, fsync
// off) on a free loopback port. Its Endpoint is
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func startPostgres(ctx context.Context) (*Server, error) {
	dir, err := os.MkdirTemp("", "infinity-postgres-")
	if err != nil {
		return nil, fmt.Errorf("emulators: %w", err)
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("emulators: postgres: %w", err)
	}
	// initdb and postgres refuse to run as root.
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root needs the postgres user: %w", err))
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(postgresBin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	child(initdb, uid, gid)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w: %s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(filepath.Join(postgresBin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	child(cmd, uid, gid)
	srv, err := startChild(Postgres, cmd, fmt.Sprintf("127.0.0.1:%d", port), startTimeout, func() { logf.Close(); os.RemoveAll(dir) })
	if err != nil {
		return fail(fmt.Errorf("%w (log: %s)", err, readTail(filepath.Join(dir, "server.log"))))
	}
	// The port listens before the cluster accepts sessions; pg_isready
	// tells when it does.
	ready := filepath.Join(postgresBin, "pg_isready")
	deadline := time.Now().Add(startTimeout)
	for exec.CommandContext(ctx, ready, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run() != nil {
		if time.Now().After(deadline) {
			srv.Stop()
			return nil, fmt.Errorf("emulators: postgres on port %d never became ready", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Endpoint = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return srv, nil
}

// startDynamoDB starts DynamoDB Local in memory on a free loopback port.
func startDynamoDB(context.Context) (*Server, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	emu := filepath.Join(dir, "dynamodb-local", "package", "emulator")
	cmd := exec.Command("java", "-Xmx512m", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
		"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
	cmd.Dir = emu
	return startHTTP(DynamoDB, cmd, port, dynamoDBStartupTimeout)
}

// startSQS starts fauxqs on a free loopback port.
func startSQS(context.Context) (*Server, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "start.mjs")
	cmd.Dir = fauxqsDir(dir)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	return startHTTP(SQS, cmd, port, startTimeout)
}

// startHTTP starts an emulator that serves HTTP on a loopback port; its
// output is kept for the error when it does not come up.
func startHTTP(name Kind, cmd *exec.Cmd, port int, timeout time.Duration) (*Server, error) {
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &limited{&log}, &limited{&log}
	child(cmd, -1, -1)
	srv, err := startChild(name, cmd, fmt.Sprintf("127.0.0.1:%d", port), timeout, nil)
	if err != nil {
		return nil, fmt.Errorf("emulators: %s: %w: %s", name, err, log.String())
	}
	srv.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	return srv, nil
}

// startChild starts cmd and waits until addr listens. cleanup runs after
// the process is gone.
func startChild(name Kind, cmd *exec.Cmd, addr string, timeout time.Duration, cleanup func()) (*Server, error) {
	if err := cmd.Start(); err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() error {
		kill(cmd)
		<-exited
		if cleanup != nil {
			cleanup()
		}
		return nil
	}
	if err := waitTCP(context.Background(), addr, exited, timeout); err != nil {
		stop()
		return nil, err
	}
	return &Server{Kind: name, stop: stop}, nil
}

// limited keeps the first 8 KiB written to it.
type limited struct{ b *strings.Builder }

func (l *limited) Write(p []byte) (int, error) {
	if room := 8<<10 - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
