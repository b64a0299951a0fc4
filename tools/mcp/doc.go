// Package mcp exposes the tools of MCP (Model Context Protocol) servers as
// infinity.Tool values. Connect opens a session with a remote server over
// the streamable HTTP transport (WithHeaders adds credentials to every
// request); ConnectCommand starts a local server and speaks to it over its
// standard input and output (the go-sdk's command transport). Both list the
// server's tools (following pagination) and wrap each one as a synchronous
// tool that calls the server with a bounded timeout (WithTimeout;
// WithConnectTimeout bounds connecting).
//
// A local server runs under internal/procsup: started when first needed,
// started again by the next call after it died (with a capped backoff when
// it keeps dying), stopped after it has gone unused for WithIdle's
// duration, stopped with Close together with whatever it started. Its
// standard error goes to WithLogger's logger, line by line, with its name
// under LogKey (mcp_server). It inherits only a few of this process's
// variables (procsup.InheritedEnv) besides its own.
//
// Tool names must be unique across everything an agent sees: Connect refuses
// a server whose tool shadows an engine built-in or repeats a name, and
// Collect refuses servers whose tools collide with each other. A collision is
// a configuration mistake, so the whole connect (or collect) fails with an
// error naming both owners rather than silently dropping a tool the agent's
// author expected.
//
// Every failure of a call (invalid arguments, timeout, transport failure, a
// result the server marked isError, a local server that cannot start) reaches
// the model as a tool result with IsError set and a message it can act on;
// Invoke never returns a non-nil error. A timeout names the limit that ended
// the call: the server's call timeout, or the caller's shorter deadline.
// After a transport failure the next call reconnects once (a local server is
// started again).
//
// A Source connects its servers when their tools are first asked for
// (actors.ToolSource), remote and local alike. A server that waits for the
// user's authorization is tried again at every call, without a request.
//
// WithOAuth authorizes a remote server's requests with an Authorizer: MCP's
// authorization flow (OAuth 2.1, authorization code with PKCE; discovery,
// dynamic client registration and the exchange are the go-sdk's auth
// package's). A server's 401 starts an authorization in the background and
// fails the connection at once with ErrAuthorizationRequired; the URL the
// user must open is in Authorizer.State, and the redirect's query goes to
// Authorizer.Complete (its state is good for one answer, until the URL
// expires). Tokens are kept in a TokenStore (FileTokenStore: a 0600 file),
// refreshed when they expire (golang.org/x/oauth2) and kept again.
//
// The package imports the standard library, the root infinity package,
// internal packages, github.com/modelcontextprotocol/go-sdk (mcp, auth,
// oauthex) and golang.org/x/oauth2. The mcptest subpackage serves a small
// MCP server for tests, over HTTP (StartOAuth: behind OAuth, with its own
// authorization server) or, from a test binary, over standard input and
// output.
package mcp
