package mcp

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/procsup"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Command is a local MCP server: a program this process starts and speaks
// to over its standard input and output (the go-sdk's command transport).
type Command struct {
	// Path is the program: a name looked up in PATH, or a path.
	Path string
	// Args are its arguments.
	Args []string
	// Env are variables (NAME=value) it gets besides procsup.InheritedEnv's
	// few of this process's environment (a variable set here wins).
	Env []string
	// Redact are values passed in Env (credentials) that are never logged
	// as they are, should the server write them to its standard error.
	Redact []string
	// Dir is its working directory; "" means this process's.
	Dir string
}

// ConnectCommand starts the local MCP server c, initializes it and lists
// its tools, within the connect timeout; it fails as Connect does. The
// server then runs under supervision (internal/procsup): it is stopped
// after it has gone unused for WithIdle's duration, and a call after that,
// or after it died, starts it again (a server that keeps dying is started
// again only after a backoff, and calls meanwhile get an error result that
// says so). Its standard error goes to WithLogger's logger, line by line,
// with its name under LogKey. Close stops it and whatever it started.
func ConnectCommand(ctx context.Context, c Command, opts ...Option) (*Server, error) {
	if c.Path == "" {
		return nil, fmt.Errorf("mcp: a local server needs a program: %w", infinity.ErrInvalid)
	}
	o := newOptions(opts)
	label := o.name
	if label == "" {
		label = filepath.Base(c.Path)
	}
	s := &Server{target: c.Path, opts: o, client: newClient(o)}
	s.setName(nil)
	env := append(procsup.InheritedEnv(), c.Env...)
	sup, err := procsup.New(procsup.Config[*sdk.ClientSession]{
		Name: label, Path: c.Path, Args: c.Args, Env: env, Dir: c.Dir,
		Start: func(ctx context.Context, cmd *exec.Cmd) (*sdk.ClientSession, error) {
			ctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
			defer cancel()
			return s.client.Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: terminateAfter}, nil)
		},
		Log: o.log, LogKey: LogKey, Idle: o.idle, Redact: c.Redact,
		MinBackoff: o.minBackoff, MaxBackoff: o.maxBackoff,
	})
	if err != nil {
		return nil, fmt.Errorf("MCP server %s: %w", s.name, err)
	}
	l := &stdioLink{sup: sup}
	s.link = l
	ctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
	defer cancel()
	sess, done, err := l.acquire(ctx)
	if err != nil {
		_ = sup.Close()
		return nil, fmt.Errorf("connect to MCP server %s: %w", s.name, err)
	}
	s.setName(sess)
	err = s.list(ctx, sess)
	done(nil)
	if err != nil {
		_ = sup.Close()
		return nil, err
	}
	return s, nil
}

// stdioLink is a supervised local server: each call leases the running
// process, starting it when none runs.
type stdioLink struct {
	sup *procsup.Supervisor[*sdk.ClientSession]
}

func (l *stdioLink) acquire(ctx context.Context) (*sdk.ClientSession, func(error), error) {
	lease, err := l.sup.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return lease.Conn, func(broken error) {
		if broken != nil {
			lease.Fail(broken)
			return
		}
		lease.Release()
	}, nil
}

func (l *stdioLink) close() error { return l.sup.Close() }

// pid returns the local server's process id, or 0 when it is not running
// (or the server is remote).
func (s *Server) pid() int {
	if l, ok := s.link.(*stdioLink); ok {
		return l.sup.Pid()
	}
	return 0
}
