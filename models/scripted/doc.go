// Package scripted is a deterministic infinity.ModelProvider driven by a
// script, so demos and tests run offline. It is the default model of
// `infinity demo` and of agent files with `provider: scripted`.
//
// # Scripts
//
// A Script is an ordered list of rules. For each request the provider picks
// the first rule whose condition (When, and the Go predicate If) holds and
// whose Times budget is not used up, and streams its Reply. Put the more
// specific rules first. A request that no rule answers fails with an error
// wrapping ErrNoMatch that describes the request's last item.
//
// Scripts are JSON (Parse, Load) or Go values (New). Parsing is strict:
// unknown fields and wrongly typed values are errors naming the field's
// path, such as `rules[3].when: unknown field "dept"`.
//
//	{
//	  "model": "scripted",          // optional, the model id served
//	  "context_window": 200000,     // optional
//	  "rules": [
//	    {
//	      "name": "greet",          // optional, used in errors
//	      "when": {...},            // the condition; {} always holds
//	      "reply": {...},           // the response
//	      "times": 1                // optional: answer at most once per provider
//	    }
//	  ]
//	}
//
// # Conditions
//
// Every field set in "when" must hold. The depth of a request is
// len(req.Stack)-1: a root thread has depth 0, its children depth 1.
//
//	depth      the depth equals this
//	min_depth  the depth is at least this
//	last       the last item's kind: "user", "assistant", "tool_call", "tool_result"
//	last_tool  the last item is a tool result answering a call of this tool
//	last_text  the last item's text (a result's text for tool results) contains this
//	contains   some user, assistant or tool-result text contains this
//	           (tool-call arguments are not searched)
//	count      {"tool": T, "min": N}: at least N calls of tool T have a result
//	system     the system prompt contains this
//
// # Replies
//
//	text        streamed as word-sized text deltas
//	calls       [{"name": ..., "args": {...}}], streamed in order after the text;
//	            several calls are parallel calls of one response
//	error       fail with this message (no calls allowed); before any event, or
//	            after the text with "mid_stream": true
//	retryable   the error wraps infinity.ErrRetryable
//	mid_stream  stream the text first, then fail
//	delay       wait this long before the first event, a Go duration ("150ms");
//	            cancelling the request's context cuts the wait short
//
// A response ends with an StreamDone whose Stop is StopToolUse when it made
// calls and StopEnd otherwise, and whose Usage is estimated from the
// characters of the request (system prompt and items) and of the reply, four
// to a token. Tool call ids are "call_" and 16 hex digits of a SHA-256 over
// the thread id, the number of items and the call's index (see CallID): the
// same request gets the same ids, another thread gets other ids.
//
// A common use of "times" is a transient failure followed by success: a
// rule {"times": 1, "reply": {"error": "overloaded", "retryable": true}}
// placed before the normal rule fails the first request only.
//
// # Templates
//
// Call arguments and reply text may name the calling thread:
//
//	$THREAD  req.Thread
//	$PARENT  the parent thread, req.Stack[len-2], or "" for a root
//	$ROOT    the root thread, req.Stack[0]
//	$DEPTH   the depth, a decimal number
//	$STACK   in arguments, a string value that is exactly "$STACK" becomes the
//	         JSON array of req.Stack; elsewhere the ids joined with "/"
//	$CALL_ID(tool)     the id of the newest call of tool in the request's
//	                   history (to cancel a subscription it started, say)
//	$DATE(+dur,zone)   the date (YYYY-MM-DD) and time (HH:MM:SS) in the IANA
//	$TIME(+dur,zone)   zone, dur (a Go duration such as 90s) from now: the
//	                   arguments of sleep_until
//
// Templates are replaced inside string values only; object keys, numbers and
// the order of keys are kept as written. A request without a Stack is taken
// as a root whose stack is [req.Thread].
//
// # Example
//
// A root thread that spawns two children; each child sleeps, reports to the
// root and closes itself, and the root answers once both reports are in.
// Children inherit the root's history, so they are told apart by the text
// of their own spawn result, the last item of their first request, which the
// engine writes as "You are now inside thread <id>. Your task: <instructions>".
// Reports reach the root as results of injected "receive_event__injected"
// calls.
//
//	{"rules": [
//	  {"name": "root-done",
//	   "when": {"depth": 0, "last_tool": "receive_event__injected",
//	            "count": {"tool": "receive_event__injected", "min": 2}},
//	   "reply": {"text": "Both children reported."}},
//	  {"name": "root-wait",
//	   "when": {"depth": 0, "last": "tool_result"},
//	   "reply": {"calls": [{"name": "sleep_until_event_or_input"}]}},
//	  {"name": "root-spawn",
//	   "when": {"depth": 0, "last": "user"},
//	   "reply": {"text": "Spawning two children.", "calls": [
//	     {"name": "spawn_thread", "args": {"instructions": "task A: ...", "child_of": "$STACK"}},
//	     {"name": "spawn_thread", "args": {"instructions": "task B: ...", "child_of": "$STACK"}}]}},
//	  {"name": "child-A-sleep",
//	   "when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task A"},
//	   "reply": {"calls": [{"name": "sleep", "args": {"seconds": 2, "reason": "working on A"}}]}},
//	  {"name": "child-B-sleep",
//	   "when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task B"},
//	   "reply": {"delay": "100ms",
//	             "calls": [{"name": "sleep", "args": {"seconds": 3, "reason": "working on B"}}]}},
//	  {"name": "child-report",
//	   "when": {"depth": 1, "last_tool": "sleep"},
//	   "reply": {"calls": [
//	     {"name": "close_thread", "args": {"thread_id": "$THREAD", "report_to_parent": "$THREAD is done"}}]}}
//	]}
//
// The same rules in Go (Go 1.26's new(expr) makes the pointers):
//
//	p, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
//		{Name: "root-spawn",
//			When:  scripted.Match{Depth: new(0), Last: "user"},
//			Reply: scripted.Reply{Text: "Spawning.", Calls: []scripted.CallSpec{
//				{Name: "spawn_thread", Args: json.RawMessage(`{"instructions": "task A: ...", "child_of": "$STACK"}`)},
//			}}},
//		// ...
//	}})
//
// Demo returns the script of `infinity demo` (demo.json in this package), a
// complete version of this example with three children.
package scripted
