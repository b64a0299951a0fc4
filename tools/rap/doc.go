// Package rap is the runtime side of RAP, the Reactive Agent Protocol:
// tool servers expose toolsets over HTTP, the runtime invokes their tools
// asynchronously and receives the results later by callback.
//
// The protocol as Infinity implements it, how to write a tool server, and
// the checklist of the protocol's rules with the tests that check each are
// in docs/rap.md at the repository root. Section numbers in comments ("RAP
// §5.2", "RAP §12") are the protocol's; docs/rap.md maps them to its own
// sections, and its checklist keeps the protocol's rule numbers.
//
// The pieces:
//
//   - wire types and strict decoders for callbacks (DecodeCallback) and
//     manifests (DecodeManifest);
//   - Loader: discovery of {base}/.well-known/rap-toolset for every
//     configured server, validation, cross-toolset duplicate detection and
//     a per-session (root thread) cache with fallback to the last good
//     manifest when a fetch fails; each server may have timeouts of its
//     own (Server: connect bounds a manifest fetch, call each try of an
//     invocation);
//   - local servers (Command): programs the Loader starts when first
//     needed, on the port they announce or one they are given, under
//     supervision (internal/procsup: restarted after a death, with
//     backoff; stopped by Loader.Close);
//   - Tool: each discovered tool as an asynchronous infinity.Tool whose
//     Invoke POSTs the invocation with bounded retries;
//   - Handler: the callback endpoint, which verifies, converts
//     (Callback.Message) and hands callbacks to an infinity.InputSender;
//   - Notifier: /close_thread, /cancel_tool_call and /migrate.
//
// # Callback authentication
//
// Every invocation gets its own callback URL,
// {base}/rap/callback/{token}?call={call id}, where token is
// base64url(HMAC-SHA256(key, group_id, call id)). The scheme is stateless:
// the Handler recomputes the token from the callback's own group_id and
// call id (id, or tool_call_id for subscription events; the call query
// parameter for view updates, which name no call), so nothing is stored per
// call and any runtime instance with the key can verify. A URL is scoped to
// one call of one thread: it cannot inject into another thread or another
// call. A callback that fails verification is logged and discarded with 401.
//
// Lifetime: a URL stays valid as long as its key (Tokens.Key, or one of
// Tokens.Previous); rotating the key and dropping the old one revokes every
// URL minted with it. URLs do not expire on their own because subscription
// tools keep theirs for the life of the subscription. What bounds a URL's
// use in practice is the engine's matching: once a call has its result, a
// later tool_result, oauth or user_choice for it is a duplicate, and events
// are accepted only while the subscription is active. Replays are absorbed
// by stable message ids (rap-tool-result-{id}, rap-oauth-{id},
// rap-user-choice-{id}); subscription events are deduplicated only when the
// tool sends an Idempotency-Key header (see Callback.Message).
//
// # Not done here
//
// Matching a callback to a pending call or an active subscription,
// subscription tracking, event threads, pending user choices, OAuth
// prompts, view storage and consent belong to the engine and the UI. This
// package bounds the acknowledgement of an invocation, never the tool's
// work; the engine's ToolTimeout bounds Invoke, unless the server's own
// timeouts (Tool.CallTimeout, an actors.TimedTool) ask for longer.
//
// The package imports the standard library, the root infinity package and
// two internal helpers (backoff, procsup) only.
package rap
