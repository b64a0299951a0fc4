// Package mcp exposes the tools of MCP (Model Context Protocol) servers as
// infinity.Tool values. Connect opens a session over the streamable HTTP
// transport, lists the server's tools (following pagination) and wraps each
// one as a synchronous tool that calls the server with a bounded timeout.
//
// Tool names must be unique across everything an agent sees: Connect refuses
// a server whose tool shadows an engine built-in or repeats a name, and
// Collect refuses servers whose tools collide with each other. A collision is
// a configuration mistake, so the whole connect (or collect) fails with an
// error naming both owners rather than silently dropping a tool the agent's
// author expected.
//
// Every failure of a call (invalid arguments, timeout, transport failure, a
// result the server marked isError) reaches the model as a tool result with
// IsError set and a message it can act on; Invoke never returns a non-nil
// error. After a transport failure the next call reconnects once.
//
// The package imports the standard library, the root infinity package and
// github.com/modelcontextprotocol/go-sdk/mcp. The mcptest subpackage serves a
// small MCP server for tests.
package mcp
