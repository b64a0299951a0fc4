package mcp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/mcp"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

func connect(t *testing.T, url string, opts ...mcp.Option) *mcp.Server {
	t.Helper()
	s, err := mcp.Connect(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func find(t *testing.T, s *mcp.Server, name string) infinity.Tool {
	t.Helper()
	for _, tl := range s.Tools() {
		if tl.Spec().Name == name {
			return tl
		}
	}
	t.Fatalf("no tool %q", name)
	return nil
}

func names(tools []infinity.Tool) []string {
	var n []string
	for _, t := range tools {
		n = append(n, t.Spec().Name)
	}
	slices.Sort(n)
	return n
}

func TestConnectListsTools(t *testing.T) {
	url, stop := mcptest.New()
	defer stop()
	s := connect(t, url)
	if got, want := names(s.Tools()), []string{"add", "fail", "image", "slow"}; !slices.Equal(got, want) {
		t.Fatalf("tools = %v, want %v", got, want)
	}
	spec := find(t, s, "add").Spec()
	if spec.Description != "Add two numbers." || spec.Async || spec.Passive {
		t.Errorf("spec = %+v", spec)
	}
	var schema struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(spec.Schema, &schema); err != nil {
		t.Fatalf("schema %s: %v", spec.Schema, err)
	}
	if schema.Type != "object" || schema.Properties["a"] == nil || schema.Properties["b"] == nil {
		t.Errorf("schema = %s", spec.Schema)
	}
	if !strings.Contains(s.Name(), "mcptest") {
		t.Errorf("name = %q", s.Name())
	}
}

func TestPagination(t *testing.T) {
	srv := mcptest.Start(mcptest.Options{PageSize: 2, Extra: []string{"e1", "e2", "e3"}})
	defer srv.Close()
	s := connect(t, srv.URL)
	if got := names(s.Tools()); len(got) != 7 {
		t.Fatalf("tools = %v, want 7 across pages", got)
	}
}

func TestInvoke(t *testing.T) {
	url, stop := mcptest.New()
	defer stop()
	s := connect(t, url, mcp.WithTimeout(200*time.Millisecond))
	png := base64.StdEncoding.EncodeToString(mcptest.PNG)
	tests := []struct {
		tool, args string
		isError    bool
		want       infinity.Part
	}{
		{"add", `{"a":2,"b":3}`, false, infinity.Part{Type: "text", Text: "5"}},
		{"add", ``, true, infinity.Part{Type: "text", Text: "missing properties"}}, // the server validates its schema
		{"add", `[1,2]`, true, infinity.Part{Type: "text", Text: "not a JSON object"}},
		{"fail", `{}`, true, infinity.Part{Type: "text", Text: "it failed on purpose"}},
		{"image", `{}`, false, infinity.Part{Type: "image", Data: png, MediaType: "image/png"}},
		{"slow", `{}`, true, infinity.Part{Type: "text", Text: "did not answer within 200ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.tool+tc.args, func(t *testing.T) {
			start := time.Now()
			call := infinity.ToolCall{ID: "c1", Name: tc.tool, Args: json.RawMessage(tc.args)}
			res, err := find(t, s, tc.tool).Invoke(context.Background(), infinity.ToolEnv{}, call)
			if err != nil || res == nil {
				t.Fatalf("Invoke = %v, %v; want a result and nil", res, err)
			}
			if time.Since(start) > 1500*time.Millisecond {
				t.Errorf("took %v", time.Since(start))
			}
			if res.CallID != "c1" || res.IsError != tc.isError || len(res.Parts) != 1 {
				t.Fatalf("result = %+v", res)
			}
			got := res.Parts[0]
			if got.Type != tc.want.Type || !strings.Contains(got.Text, tc.want.Text) || got.Data != tc.want.Data || got.MediaType != tc.want.MediaType {
				t.Errorf("part = %+v, want %+v", got, tc.want)
			}
		})
	}
	// The timeout left the session usable.
	res, _ := find(t, s, "add").Invoke(context.Background(), infinity.ToolEnv{}, infinity.ToolCall{ID: "c2", Args: json.RawMessage(`{"a":1,"b":1}`)})
	if res.IsError || res.Text() != "2" {
		t.Errorf("after timeout: %+v", res)
	}
}

func TestCollisionWithBuiltin(t *testing.T) {
	srv := mcptest.Start(mcptest.Options{Extra: []string{"sleep"}})
	defer srv.Close()
	_, err := mcp.Connect(context.Background(), srv.URL)
	if !errors.Is(err, mcp.ErrCollision) || !strings.Contains(err.Error(), `"sleep"`) || !strings.Contains(err.Error(), "built-in") {
		t.Fatalf("err = %v, want a collision naming sleep and the built-ins", err)
	}
}

func TestCollisionAcrossServers(t *testing.T) {
	one := mcptest.Start(mcptest.Options{Name: "one"})
	defer one.Close()
	two := mcptest.Start(mcptest.Options{Name: "two"})
	defer two.Close()
	three := mcptest.Start(mcptest.Options{Name: "three", Prefix: "x_"})
	defer three.Close()
	s1, s2, s3 := connect(t, one.URL), connect(t, two.URL), connect(t, three.URL)

	_, err := mcp.Collect(s1, s2)
	if !errors.Is(err, mcp.ErrCollision) || !strings.Contains(err.Error(), "one") || !strings.Contains(err.Error(), "two") {
		t.Fatalf("err = %v, want a collision naming both servers", err)
	}
	all, err := mcp.Collect(s1, s3)
	if err != nil || len(all) != 8 {
		t.Fatalf("Collect = %d tools, %v", len(all), err)
	}
}

func TestConnectFails(t *testing.T) {
	url, stop := mcptest.New()
	stop() // nothing listens there any more
	for _, u := range []string{url, "not a url", "http://127.0.0.1:1/mcp"} {
		start := time.Now()
		_, err := mcp.Connect(context.Background(), u, mcp.WithTimeout(2*time.Second))
		if err == nil || !strings.Contains(err.Error(), "connect to MCP server "+u) {
			t.Errorf("Connect(%q) = %v", u, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Connect(%q) took %v", u, d)
		}
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	srv := mcptest.Start(mcptest.Options{})
	defer srv.Close()
	s := connect(t, srv.URL)
	add := find(t, s, "add")
	call := infinity.ToolCall{ID: "c", Name: "add", Args: json.RawMessage(`{"a":1,"b":2}`)}
	srv.Restart() // the server forgets the session
	res, _ := add.Invoke(context.Background(), infinity.ToolEnv{}, call)
	if !res.IsError || !strings.Contains(res.Text(), "reconnects") {
		t.Fatalf("first call after restart = %+v", res)
	}
	res, _ = add.Invoke(context.Background(), infinity.ToolEnv{}, call)
	if res.IsError || res.Text() != "3" {
		t.Fatalf("call after reconnect = %+v", res)
	}
}

func TestClosed(t *testing.T) {
	url, stop := mcptest.New()
	defer stop()
	s := connect(t, url)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := find(t, s, "add").Invoke(context.Background(), infinity.ToolEnv{}, infinity.ToolCall{ID: "c", Args: json.RawMessage(`{"a":1,"b":2}`)})
	if err != nil || !res.IsError {
		t.Fatalf("Invoke after Close = %+v, %v", res, err)
	}
}

type countingClient struct{ n atomic.Int32 }

func (c *countingClient) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

func TestWithHTTPClient(t *testing.T) {
	url, stop := mcptest.New()
	defer stop()
	c := &countingClient{}
	s := connect(t, url, mcp.WithHTTPClient(c))
	res, _ := find(t, s, "add").Invoke(context.Background(), infinity.ToolEnv{}, infinity.ToolCall{ID: "c", Args: json.RawMessage(`{"a":1,"b":2}`)})
	if res.Text() != "3" || c.n.Load() == 0 {
		t.Fatalf("result %+v after %d requests through the client", res, c.n.Load())
	}
}
