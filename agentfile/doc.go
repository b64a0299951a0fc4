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
//	  rap: [http://127.0.0.1:9000]       # RAP tool server base URLs (http/https)
//	  mcp: [http://127.0.0.1:9100/mcp]   # MCP server URLs (http/https)
//	limits:
//	  max_depth: 4               # 1..32, default 8
//	  max_children: 10           # 1..1000, default 32
//	  max_tokens: 4096           # positive, default 4096
//	  slice:
//	    completions: 16          # 1..1000, default 16
//	    wall: 5m                 # a Go duration, 1s..1h, default 5m
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
// # Errors
//
// Parsing is strict: unknown fields (with a suggestion for a near miss),
// values of the wrong type (a quoted "4" is not an integer, 12 is not a
// string), a missing required field, an unknown provider, a scripted model
// without a script (or with both script and demo), a script file that does
// not exist (the resolved path is reported), a tool URL that is not http(s)
// with a host, a limit out of range, a wall time that is not a Go duration
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
// daemon connects MCP servers and discovers RAP toolsets per session; the
// cloud functions take RAP toolsets (MCP servers are refused there for now).
package agentfile
