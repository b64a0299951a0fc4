// Package replay records the model calls of a run and serves them again
// offline, deterministically: a Recorder wraps any infinity.ModelProvider
// and writes every request it gets and the whole response (or error) to a
// file; a Player reads the file and makes Providers that answer the same
// requests with the same responses, and fail loudly, with a diff, on a
// request the recording does not hold. It works at the ModelProvider
// level, so it never sees an API key or an HTTP header, and a recording
// holds none.
//
// Recording:
//
//	rec, err := replay.Create("run.jsonl", replay.RecordOptions{Models: []string{"anthropic/claude-haiku-4-5"}})
//	model = rec.Wrap(replay.DefaultName, model) // or rec.WrapAgent(&agent)
//	// ... run the agent tree, close the runtime ...
//	rec.Close()
//
// Replaying:
//
//	pl, err := replay.Open("run.jsonl")
//	model = pl.Provider(replay.DefaultName) // or pl.ServeAgent(&agent)
//
// Package embedded does both from its Options (Record, Replay), and
// package infinitytest replays a recording in a test in one call.
//
// # The file
//
// A recording is JSON Lines. The first line is the header:
//
//	{"format":"infinity-replay","version":1,"created":"2026-12-07T10:00:00Z","models":["anthropic/claude-haiku-4-5"],"meta":{"agent":"demo"}}
//
// A reader refuses another format or a newer version (ErrFormat). Then one
// line per event, in the order they happened:
//
//	{"type":"models","provider":"anthropic","models":[{"id":"claude-haiku-4-5","context_window":200000,"max_output":8192}]}
//	{"type":"call","seq":1,"provider":"anthropic","thread":"tq3…","stack":["tq3…"],"key":"sha256:…",
//	 "request":{"model":"claude-haiku-4-5","max_tokens":4096,"system":"…","tools":[…],"items":[{"kind":"user","text":"…"}]},
//	 "response":{"text":"…","calls":[{"id":"toolu_1","name":"spawn_thread","args":{…}}],"usage":{"input":812,"output":40},"stop":"tool_use"}}
//
// A "models" line is a provider's model list as its Models method gave it
// (replay serves it: the engine caps max_tokens and compacts by it),
// written again when it changes. A "call" line is written when the call
// ends: the request as the provider received it (model, system prompt,
// tools, history, max_tokens; not the engine's item ids, times and usage,
// and an image as its SHA-256), and either the response (the stream
// folded as the engine folds it: the text deltas joined, the tool calls
// in order, the usage and stop reason of its StreamDone) or "error" (its
// message, and whether it was retryable or a rate limit, which the engine
// acts on). A call its caller gave up on (a cancelled context) is not
// written. Thread and stack are the recorded run's ids, for people; key
// is the hash of the matching form below, also for people (a reader
// computes it again, so a request edited by hand matches as edited). Each
// line is written whole and synced before the engine sees the end of the
// stream, so a crash loses at most the calls in flight; a reader leaves
// out a last line cut short (Recording.Torn).
//
// # Matching
//
// A request matches a recorded one when their matching forms are equal
// and they were asked of the same provider name. The matching form is the
// request rendered as lines ("system | …", "item 3 tool_result ⟪call:2⟫ |
// …", one line per line of every text, tool schemas and call arguments as
// JSON with sorted keys) after three rewrites, which take out what differs
// between two runs of the same agent:
//
//   - Thread ids the runtime generates (a 't', 'e' or 'k' and 20
//     characters of [a-z2-7]: a random root id, and the ids derived from
//     it for children) become ⟪stack:i⟫ when they are the asking
//     thread's lineage (⟪stack:0⟫ the root, the asking thread last) and
//     ⟪thread:n⟫ otherwise, numbered in order of appearance. They appear
//     in the system prompt ("Your thread ID is …"), in spawn_thread
//     results and children's reports. Ids a caller chose ("nightly") are
//     kept: replay with the same ones.
//   - Call ids become ⟪call:n⟫ in order of appearance: the engine derives
//     some from thread ids (injected results), and a provider makes its
//     own. Inside text they are replaced when at least 8 characters long.
//   - Dates with a time of day (RFC 3339, and Go's time.Time format)
//     become ⟪time⟫: a tool that tells the time says another one in the
//     replay.
//
// So a replay may start its root under another generated id than the
// recording did, and its children get other ids in turn: the response
// served has the recorded run's ids put back as the asking run's (a
// close_thread argument names the thread that asks now, not the recorded
// one). The renaming is by position, not by guessing: a request is
// matched whole, and the same request asked by another run names the same
// things in the same places. Its limits: a 21-character word of that
// shape counts as an id (harmlessly: it is renamed the same way on both
// sides), and a run whose threads race (two children's reports reaching
// the root in the other order) asks requests the recording does not hold.
//
// The same request asked again (the engine's retry after a recorded
// retryable error, or two threads asking the same thing) gets the next
// recording of it, in recorded order; asked more often than recorded, it
// fails.
//
// # Failures
//
// A request the recording does not hold fails with a *NotRecordedError,
// which wraps ErrNotRecorded: its message names the provider and thread,
// and shows the lines that differ between the request asked and the
// nearest recorded one (of the same depth, most lines alike, then not yet
// served, then the same call number of its thread):
//
//	replay: provider "default", thread tq3…: the recording does not hold this request (the thread's call 1); the nearest recorded request, call 1, differs in these lines
//	--- recorded call 1 (thread tbx…)
//	+++ asked (thread tq3…)
//	@@ recorded line 9, asked line 9 @@
//	  tool spawn_thread schema | {…}
//	- item 0 user | Plan my week.
//	+ item 0 user | Plan my month.
//
// The engine does not retry it; the thread's slice fails (and is tried
// again later, failing the same way). Player.Missed and Player.Err tell a
// program that waits for a tree about the first miss.
package replay
