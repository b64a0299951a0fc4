//go:build !mcp

package main

import "github.com/infinity-runtime/infinity/cloud"

// mcpSource is nil without -tags mcp: agent files with MCP servers are
// refused at start-up, with an error that says how to build them in.
var mcpSource func([]cloud.MCPEndpoint) cloud.ToolServers
