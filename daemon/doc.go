// Package daemon is Infinity's local runtime: what "infinity daemon" runs.
//
// A Daemon keeps everything under one home directory (see the README's
// table): the disk store (persistence/disk) holds threads, history, state
// and the durable inbox, with history read from disk when a thread runs; a local sender with that inbox (mailbox/local)
// delivers messages and timers through the actor runtime (actors); agent
// files are registered by content under agents/; and an HTTP API on
// loopback, guarded by a bearer token, Host and Origin checks and size
// limits, serves the CLI (Client is its Go client).
//
// Open restores what a stop or a crash left: due messages are delivered,
// timers re-armed, and threads whose outbox was not sent are woken. Other
// threads are activated only when a message arrives, so restart time grows
// with the number of waiting messages, not of threads.
//
// Agents' tools: remote MCP servers are connected when an agent loads, and
// local ones (a command) are started when a thread first needs them, as
// are remote ones with an oauth block, whose authorization URL the threads
// that wait for it show, whose redirect comes back to GET
// /oauth/mcp/callback (authenticated by its state) and whose tokens are
// kept in HOME/mcp-oauth/ (mcpoauth.go, docs/mcp.md); RAP
// toolsets are discovered per root thread (tools/rap), and tool servers
// call back at /rap/callback/{token}, authenticated by the per-call token
// (keyed by HOME/rap.key) instead of the bearer token. Pending user choices
// are read from history and answered through POST /v1/threads/{id}/answer;
// OAuth URLs and view updates are kept in memory only.
//
// Models and cost: each agent's models (its file's model and models, one
// provider per provider id) are registered with the runtime; a root thread
// may start on any of them (StartRequest.Model, stored as ThreadInfo.Model;
// others are refused with CodeUnknownModel and the choices). A thread's
// tokens are summed from its history (Item.Usage, attributed to Item.Model,
// else the thread's model, else the agent's default), so they survive
// restarts; its cost uses the prices file (Options.Prices, default
// HOME/prices.yaml) overridden by the agent file's prices, and is null when
// a model that answered has no price. Thread views carry Subtree totals
// (the thread and all its descendants). Followed item streams add a line
// per slice (actors.EventSlice) and per compaction (actors.EventCompacted),
// kept in memory only.
//
// Observability: GET /healthz answers without the token; GET /metrics
// serves the runtime's Prometheus series (package telemetry), with the
// token, or without it on Options.MetricsAddr (a loopback listener of its
// own); Options.Tracer traces every slice (OpenTelemetry).
//
// The web UI (daemon/ui, embedded) is served under /ui/ and reads the same
// API; a one-time code from POST /v1/ui/codes (made with the bearer token:
// "infinity ui") becomes an HttpOnly, SameSite=Strict session cookie at
// /ui/login, and a cookie request also needs the session's key, which the
// page keeps in its origin's storage (ui.go). GET /v1/events streams which threads
// change and item streams speak server-sent events when asked, both woken
// by the hub; GET /v1/threads/{id}/timeline reads a tree's lanes from the
// histories' timestamps (timeline.go).
//
// Export and Import read and write sessions.json, the readable export of
// every thread, its state and the agent files it uses.
//
// Migration (migrate.go, docs/rap.md §2.9): POST /v1/threads/{id}/migrate
// moves a session to another daemon, which takes it through its
// /v1/migrations routes; the source runs the move (stop the tree, the
// destination's tool servers, RAP /migrate, the data with its timers, then
// delete it here) and calls it off whole on any failure. Markers under
// HOME/migrations let a restart finish or call off a move cut short.
package daemon
