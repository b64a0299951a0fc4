// Package mcptest serves a small MCP server over streamable HTTP for tests.
// Its tools:
//
//   - add: {"a","b"} numbers; answers their sum as text ("5").
//   - slow: sleeps for Slow (default 2 s) or until the call is cancelled,
//     then answers "done"; for timeout tests.
//   - fail: answers an isError result with the text "it failed on purpose".
//   - image: answers one 1×1 PNG image (PNG, media type "image/png").
//
// Options.Headers makes the server require request headers (credentials);
// StartOAuth serves the tools behind OAuth 2.1, with an authorization
// server of its own.
// A test binary can also serve the same tools as a local server, over its
// standard input and output: see ServeStdioIfAsked and StdioCommand.
//
// It imports the standard library and github.com/modelcontextprotocol/go-sdk.
package mcptest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// PNG is the 1×1 image the image tool returns.
var PNG = func() []byte {
	var b bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	_ = png.Encode(&b, img) // cannot fail writing to a buffer
	return b.Bytes()
}()

// Options shape the server; the zero value serves the four tools.
type Options struct {
	// Name is the server's implementation name; default "mcptest".
	Name string
	// Prefix is prepended to every tool name ("x_add"), for servers that
	// must not collide.
	Prefix string
	// Extra tool names, each answering its own name as text; for
	// collision and pagination tests.
	Extra []string
	// PageSize bounds tools per tools/list page; 0 is the SDK default.
	PageSize int
	// Slow is how long the slow tool sleeps; default 2 s.
	Slow time.Duration
	// Headers, when set, must all be on every request, with these values;
	// a request without them is answered 401 Unauthorized.
	Headers map[string]string
}

// Server is a running test server.
type Server struct {
	URL string
	hs  *httptest.Server
	h   atomic.Pointer[http.Handler]
	o   Options
}

// New serves the default tools and returns the URL and a close function.
func New() (url string, closeFn func()) {
	s := Start(Options{})
	return s.URL, s.Close
}

// Start serves a server shaped by o.
func Start(o Options) *Server {
	if o.Name == "" {
		o.Name = "mcptest"
	}
	if o.Slow <= 0 {
		o.Slow = 2 * time.Second
	}
	s := &Server{o: o}
	s.Restart()
	s.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range o.Headers {
			if r.Header.Get(k) != v {
				w.Header().Set("WWW-Authenticate", "Bearer")
				http.Error(w, "missing or wrong "+k, http.StatusUnauthorized)
				return
			}
		}
		(*s.h.Load()).ServeHTTP(w, r)
	}))
	s.URL = s.hs.URL
	return s
}

// Restart replaces the MCP handler at the same URL, so every existing
// session is forgotten (clients see "session not found").
func (s *Server) Restart() {
	srv := newServer(s.o)
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	s.h.Store(&h)
}

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

type addArgs struct {
	A float64 `json:"a" jsonschema:"the first number"`
	B float64 `json:"b" jsonschema:"the second number"`
}

type noArgs struct{}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func newServer(o Options) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: o.Name, Version: "v0.0.1"}, &mcp.ServerOptions{PageSize: o.PageSize})
	p := o.Prefix
	mcp.AddTool(srv, &mcp.Tool{Name: p + "add", Description: "Add two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in addArgs) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(in.A + in.B)), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: p + "slow", Description: "Take a long time."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ noArgs) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(o.Slow):
			case <-ctx.Done():
			}
			return text("done"), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: p + "fail", Description: "Always fail."},
		func(context.Context, *mcp.CallToolRequest, noArgs) (*mcp.CallToolResult, any, error) {
			res := text("it failed on purpose")
			res.IsError = true
			return res, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: p + "image", Description: "Return a tiny PNG."},
		func(context.Context, *mcp.CallToolRequest, noArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{Data: PNG, MIMEType: "image/png"}}}, nil, nil
		})
	for _, name := range o.Extra {
		mcp.AddTool(srv, &mcp.Tool{Name: name, Description: "Say its own name."},
			func(context.Context, *mcp.CallToolRequest, noArgs) (*mcp.CallToolResult, any, error) {
				return text(name), nil, nil
			})
	}
	return srv
}
