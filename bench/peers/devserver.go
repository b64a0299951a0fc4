package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// devServer is a `temporal server start-dev` child process on a SQLite file in
// WAL mode with synchronous=FULL.
type devServer struct {
	cmd      *exec.Cmd
	dir      string
	db       string
	hostPort string
	base     int64
	exited   chan struct{}
}

func startDevServer(ctx context.Context, bin string) (*devServer, error) {
	if bin == "" {
		return nil, errors.New("temporal CLI unavailable: no binary")
	}
	dir, err := os.MkdirTemp("", "peers-temporal-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &devServer{dir: dir, db: filepath.Join(dir, "temporal.db"), exited: make(chan struct{})}
	s.hostPort = "127.0.0.1:" + strconv.Itoa(ports[0])
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("server log: %w", err)
	}
	s.cmd = exec.Command(bin, "server", "start-dev", "--ip", "127.0.0.1", "--headless",
		"--port", strconv.Itoa(ports[0]), "--http-port", strconv.Itoa(ports[1]),
		"--metrics-port", strconv.Itoa(ports[2]),
		"--db-filename", s.db, "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full",
		"--log-level", "error")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// If this process dies (e.g. killed by the parent's timeout), so does the server.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	logf("temporal dev server pid %d on %s, db %s", s.cmd.Process.Pid, s.hostPort, s.db)
	return s, nil
}

func (s *devServer) markBase() { s.base = filesSize(sqliteFiles(s.db)...) }

func (s *devServer) diskBytes() int64 {
	logf("temporal server write_bytes (/proc io): %d", ioWriteBytes(s.cmd.Process.Pid))
	return filesSize(sqliteFiles(s.db)...) - s.base
}

// stop interrupts the server, kills it after 15 s, and removes its files.
func (s *devServer) stop() error {
	defer os.RemoveAll(s.dir)
	select {
	case <-s.exited:
		return errors.New("temporal dev server exited early; see its log")
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
