package mcptest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Variables of the environment of a test binary run as a local server.
const (
	// StdioEnv, set to 1, makes ServeStdioIfAsked serve.
	StdioEnv = "MCPTEST_STDIO"
	// stdioSlowEnv is the slow tool's sleep (a Go duration).
	stdioSlowEnv = "MCPTEST_STDIO_SLOW"
	// stdioSayEnv, when set, is written to standard error at start.
	stdioSayEnv = "MCPTEST_STDIO_SAY"
)

// StdioOptions shape a local test server.
type StdioOptions struct {
	// Slow is how long the slow tool sleeps; default 2 s.
	Slow time.Duration
	// Say is written to standard error at start, after the line
	// "mcptest stdio server PID ready".
	Say string
	// Env are more variables (NAME=value) for the server.
	Env []string
}

// StdioCommand returns what runs this test binary as a local MCP server:
// the program (os.Executable), its arguments and the variables to add to
// its environment. The test binary's TestMain must call ServeStdioIfAsked
// first.
func StdioCommand(o StdioOptions) (path string, args, env []string, err error) {
	path, err = os.Executable()
	if err != nil {
		return "", nil, nil, fmt.Errorf("mcptest: the test binary: %w", err)
	}
	// A test binary built with -race waits a second at exit by default.
	env = []string{StdioEnv + "=1", "GORACE=atexit_sleep_ms=0"}
	if o.Slow > 0 {
		env = append(env, stdioSlowEnv+"="+o.Slow.String())
	}
	if o.Say != "" {
		env = append(env, stdioSayEnv+"="+o.Say)
	}
	return path, nil, append(env, o.Env...), nil
}

// ServeStdioIfAsked, when StdioEnv is 1, serves the tools of New over
// standard input and output until its input closes, then exits the
// process; otherwise it returns at once. Besides add, slow, fail and image,
// the local server has:
//
//   - pid: answers its process id.
//   - getenv: {"name"}; answers the variable's value, or "(unset)".
//   - say: {"text"}; writes the text to standard error, answers "said".
//   - crash: exits the process with status 3 without answering.
func ServeStdioIfAsked() {
	if os.Getenv(StdioEnv) != "1" {
		return
	}
	o := Options{Name: "mcptest-stdio", Slow: 2 * time.Second}
	if d, err := time.ParseDuration(os.Getenv(stdioSlowEnv)); err == nil && d > 0 {
		o.Slow = d
	}
	srv := newServer(o)
	type nameArgs struct {
		Name string `json:"name"`
	}
	type textArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "pid", Description: "Answer the server's process id."},
		func(context.Context, *mcp.CallToolRequest, noArgs) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(os.Getpid())), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "getenv", Description: "Answer a variable of the server's environment."},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameArgs) (*mcp.CallToolResult, any, error) {
			v, ok := os.LookupEnv(in.Name)
			if !ok {
				v = "(unset)"
			}
			return text(v), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "say", Description: "Write a line to standard error."},
		func(_ context.Context, _ *mcp.CallToolRequest, in textArgs) (*mcp.CallToolResult, any, error) {
			fmt.Fprintln(os.Stderr, strings.ReplaceAll(in.Text, "\n", " "))
			return text("said"), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "crash", Description: "Exit at once."},
		func(context.Context, *mcp.CallToolRequest, noArgs) (*mcp.CallToolResult, any, error) {
			os.Exit(3)
			return nil, nil, nil
		})
	fmt.Fprintf(os.Stderr, "mcptest stdio server %d ready\n", os.Getpid())
	if say := os.Getenv(stdioSayEnv); say != "" {
		fmt.Fprintln(os.Stderr, say)
	}
	code := 0
	if err := srv.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintf(os.Stderr, "mcptest stdio server: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
