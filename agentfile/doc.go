// Package agentfile reads the YAML agent files that `infinity run AGENT`
// runs: an agent's name, model, system prompt, tool servers and limits.
//
// # Format
//
//	name: researcher            # required; 1-64 characters of a-z, 0-9 and -
//	description: optional text
//	model:
//	  provider: scripted         # required: scripted | anthropic | openai | bedrock
//	  id: claude-sonnet-4-5      # the model id; required except for scripted
//	  script: ./research.json    # scripted only: a script (see models/scripted),
//	                             # relative to the agent file's directory
//	  demo: true                 # scripted only: the built-in demo script
//	                             # (exactly one of script and demo: true)
//	  context_window: 200000     # optional override (default 200000)
//	  max_output: 8192           # optional (default 8192)
//	  images: true               # optional: the model takes images
//	  price: {input: 3, output: 15}  # optional: USD per million tokens
//	  rate_limit: {concurrent: 50, rpm: 600, tpm: 400000}  # optional: across every
//	                             # thread of the daemon; at least one, each positive
//	models:                      # optional: other models threads may run on
//	  - provider: anthropic      # same fields as model, without script/demo
//	    id: claude-haiku-4-5     # required
//	    context_window: 200000
//	    price: {input: 1, output: 5}
//	system: |                    # optional system prompt
//	  You are ...
//	tools:
//	  rap:                       # RAP tool servers: a base URL (http/https), or a mapping
//	    - http://127.0.0.1:9000
//	    - url: https://rap.example.com
//	      timeout: {connect: 5s, call: 1m}
//	  mcp:                       # MCP servers: a URL (http/https), or a mapping
//	    - http://127.0.0.1:9100/mcp
//	    - url: https://api.example.com/mcp
//	      name: github           # optional, in logs and errors
//	      headers:               # values from the environment or a file, never the file
//	        Authorization: {env: GITHUB_MCP_TOKEN, prefix: "Bearer "}
//	        X-Team: {file: ~/secrets/team}
//	      timeout: {connect: 10s, call: 2m}
//	    - url: https://notes.example.com/mcp
//	      oauth: {}              # MCP's authorization flow (daemon only); optional:
//	                             # client_id, client_secret: {env: ...}, scopes: [...]
//	    - command: npx           # a local server the daemon starts (stdio)
//	      args: [-y, "@modelcontextprotocol/server-everything"]
//	      env: {FOO: bar, TOKEN: {env: EVERYTHING_TOKEN}}
//	      timeout: {call: 5m}
//	      idle: 10m              # stopped after this long unused (default 10m)
//	limits:
//	  max_depth: 4               # 1..32, default 8
//	  max_children: 10           # 1..1000, default 32
//	  max_tokens: 4096           # positive, default 4096
//	  slice:
//	    completions: 16          # 1..1000, default 16
//	    wall: 5m                 # a Go duration, 1s..1h, default 5m
//	budget:                      # caps for each tree of the agent (none by default)
//	  usd: 5                     # model cost, from the price table
//	  tokens: 2000000            # input plus output
//	  model_calls: 500
//	  wall: 48h                  # since the root started
//	  max_threads: 20            # threads of the tree not closed
//
// Schema returns the same format as a JSON Schema (draft 2020-12), for
// editors. An empty value (`limits:` with nothing after it, or `~`) is the
// same as leaving the field out. Anchors are allowed; aliases, merge keys and
// more than one YAML document are not.
//
// # Models and prices
//
// model is the agent's default; models lists the others its threads may run
// on, addressed as "provider/id" (infinity run --model, spawn_thread's
// model; children inherit their parent's). Every provider id gets one
// provider serving all of its models; API keys come from the environment
// (or the default AWS chain), never from the file. A scripted entry shares
// the file's script, so model must be scripted too. A price (input and
// output, non-negative, USD per million tokens) overrides the daemon's
// prices file for that model; without either, a model's cost is unknown.
// A rate_limit bounds the calls to that model across every thread of the
// daemon (calls in flight, requests and tokens per minute); calls beyond it
// wait, root threads taking turns (actors.ModelLimit).
//
// # Tool servers
//
// An entry of tools.rap is a base URL, or a mapping that is either a
// remote server (url) or a local one the daemon starts (command, with
// optional args, env, port and idle). An entry of tools.mcp is a URL, or a
// mapping that is either a remote server (url, with optional headers) or a
// local one (command, with optional args, env and idle). Every mapping may
// have a name (1-64 letters, digits, -, _ and ., unique among the file's
// entries of its kind) and a timeout; two local RAP servers whose program
// has the same base name need a name (the name tells them apart in the
// daemon's log).
//
// For an MCP server, timeout.connect bounds connecting (for a local
// server: starting it, initializing it and listing its tools), 1s to 10m;
// timeout.call bounds one tool call, 1s to 1h; both default to 30 s. For a
// RAP server, timeout.connect bounds each fetch of its manifest (and each
// start of a local one), 1s to 10m, default 30 s; timeout.call bounds each
// try of an invocation, until the server acknowledges it (never the
// tool's work, which has no limit), 1s to 1h, default 5 s, with up to
// four tries. A program that runs the agent may bound a call further (the
// engine's limit on one tool call).
//
// A local RAP server listens on 127.0.0.1. Without port it picks a port
// itself and, once it listens, prints one line {"port":N} on its standard
// output (as `infinity tools serve --port 0` does). With port: N the daemon
// gives it the port as the variable INFINITY_PORT (PortEnv) and in place
// of {port} (PortArg) in args, and waits until the port accepts
// connections. It is started when a session first needs its tools (or an
// invocation or notification needs it), started again after it died (on
// a port that may differ), and stopped with the daemon; idle (10s to
// 24h) stops it after that long unused, and by default it is never
// stopped for being idle, since a server that is stopped cannot send the
// results of calls it is still running.
//
// A header's value is never written in the agent file: {env: NAME} takes it
// from a variable of the environment of the program that connects (the
// daemon's), {file: PATH} from a file (an absolute path or one starting
// with ~/, read whole and trimmed, at most 64 KiB); prefix goes before it.
// The values are taken when the agent is loaded (MCPServer.ResolveHeaders),
// sent only to that server, and never stored with the agent, logged or
// quoted in errors; a missing variable or file is an error naming the
// agent file, the header and the variable or file, wrapping
// ErrUnavailable. Headers the MCP transport sets itself (Content-Type,
// Accept, Mcp-Session-Id, ...) cannot be set.
//
// An oauth block (remote servers only; oauth: {} takes every default) has
// the daemon get the server's tokens through MCP's authorization flow
// (OAuth 2.1 with PKCE, docs/mcp.md): client_id names a client registered
// beforehand with the server's authorization server (default: the daemon
// registers itself, RFC 7591), client_secret is its secret, taken like a
// header's value (MCPServer.ResolveOAuth), and scopes replace the scopes
// the server asks for. Such a server may not also set an Authorization
// header. The cloud functions refuse it (File.RefuseDaemonOnly): they
// cannot show the user an authorization URL.
//
// A local server's command is a name looked up in PATH, an absolute path or
// one starting with ~/; it runs with args, and with only a few of the
// daemon's variables (HOME, PATH, USER, the locale, the proxies: see
// internal/procsup.InheritedEnv) plus env, whose values are written in the
// file or taken like a header's (MCPServer.ResolveEnv,
// RAPServer.ResolveEnv; such values are redacted from the server's logged
// standard error). Local servers, MCP and RAP, run only in the daemon
// (File.RefuseDaemonOnly is for programs that cannot start processes or
// show a user an authorization URL). An agent file that starts programs
// or sends credentials is as trusted as a script: run only agent files
// you trust.
//
// # Errors
//
// Parsing is strict: unknown fields (with a suggestion for a near miss),
// values of the wrong type (a quoted "4" is not an integer, 12 is not a
// string), a missing required field, an unknown provider, a scripted model
// without a script (or with both script and demo), a script file that does
// not exist (the resolved path is reported), a tool URL that is not http(s)
// with a host, a tools entry that is neither a remote nor a local server
// (or both), a header written in the file, a value with neither or both of
// env and file, a file path that is relative, a timeout or idle time out
// of range, a local RAP server's port out of range (or {port} in its args
// without a port), a limit out of range, a wall time that is not a Go duration
// within range, a models entry without a provider or id, a model listed
// twice, a scripted entry beside a non-scripted model and a price that is
// negative, not a number or lacks input or output are all errors. Each is
// an *Error reading
//
//	path:line:col: field.path: what is wrong
//
// and wrapping infinity.ErrInvalid. Problems of names and types are all
// reported together; if there are none, every semantic problem is reported
// together; several errors are joined with errors.Join, in file order.
// YAML syntax errors are reported alone, with their position.
//
// # Use
//
// File.Agent builds the actors.Agent (limits left out stay zero, which the
// engine reads as its defaults); File.Registry builds the models (Default,
// Models, Providers by provider id and the file's Prices) and
// Registry.Configure gives them to the agent (Provider, ProviderName,
// Model, Providers); File.Provider is the default model's provider:
// scripted (models/scripted, the script or the demo), anthropic
// (models/anthropic, the key from ANTHROPIC_API_KEY), openai (models/openai:
// OPENAI_BASE_URL for Ollama, vLLM or llama.cpp, OPENAI_API_KEY for OpenAI)
// and bedrock (models/bedrock: credentials and region from the default AWS
// chain), each when the program was built with it (File.Provider's
// Providers; models/network.All has them all). The tool servers
// (tools.rap, tools.mcp) are wired by the programs that run agents: the
// daemon connects remote MCP servers when it loads the agent, starts local
// ones when a slice first needs their tools, and discovers RAP toolsets per
// session; the cloud functions take RAP toolsets and, when built with MCP,
// remote MCP servers.
package agentfile
