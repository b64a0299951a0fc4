//go:build mcp

package main

import "github.com/infinity-runtime/infinity/cloud/cloudmcp"

// mcpSource connects MCP servers (built with -tags mcp: the MCP SDK adds
// about 1.5 MB to the bootstrap).
var mcpSource = cloudmcp.Source
