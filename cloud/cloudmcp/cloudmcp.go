// Package cloudmcp connects the cloud functions' MCP servers: it is what
// cloud.Options.MCP wants, kept out of package cloud so that a bootstrap
// built without MCP does not link the MCP SDK.
package cloudmcp

import (
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/tools/httpclient"
	"github.com/infinity-runtime/infinity/tools/mcp"
)

// Source connects to the MCP servers when a slice first needs their tools,
// each with its own headers, over plain HTTP(S).
func Source(servers []cloud.MCPEndpoint) cloud.ToolServers {
	endpoints := make([]mcp.Endpoint, len(servers))
	for i, s := range servers {
		opts := []mcp.Option{mcp.WithHeaders(s.Headers)}
		if s.Name != "" {
			opts = append(opts, mcp.WithName(s.Name))
		}
		if s.ConnectTimeout > 0 {
			opts = append(opts, mcp.WithConnectTimeout(s.ConnectTimeout))
		}
		if s.CallTimeout > 0 {
			opts = append(opts, mcp.WithTimeout(s.CallTimeout))
		}
		endpoints[i] = mcp.Endpoint{URL: s.URL, Options: opts}
	}
	return mcp.NewEndpointSource(endpoints, mcp.WithHTTPClient(httpclient.NewPlain()))
}
