//go:build mcp

package main

import (
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/tools/httpclient"
	"github.com/infinity-runtime/infinity/tools/mcp"
)

// mcpSource connects agent files' MCP servers (built with -tags mcp: the
// MCP SDK adds about 1.5 MB to the bootstrap).
func mcpSource(urls []string) cloud.ToolServers {
	return mcp.NewSource(urls, mcp.WithHTTPClient(httpclient.NewPlain()))
}
