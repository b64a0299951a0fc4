package actors

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// This file applies the inputs that tool servers send back besides results
// (RAP callbacks turned into input messages by tools/rap): subscription
// events, OAuth requests and user choices. What a thread subscribed to, and
// which choices wait for the user, is read from its history, so it commits
// with the slice that changed it.

// event applies a subscription event. An event for a call that is not an
// active subscription of this thread is discarded. An associative event is
// injected inline; any other one is handled by a new event thread that
// inherits this thread's history and reports back to it. A final event ends
// the subscription.
func (r *run) event(m infinity.InputMessage) {
	s := m.Synthetic
	cs := r.calls[s.ToolCallID]
	if cs == nil || !cs.subscribed {
		r.e.log.Warn("event for an inactive subscription discarded", "thread", r.self.ID, "subscription", s.ToolCallID, "message", m.ID)
		return
	}
	extra := map[string]any{"final": s.Final}
	if s.Associative || r.self.Kind == infinity.ThreadEvent && !cs.own {
		// Inline: asked for, or this is the event thread made for it.
		r.injectWith(m.ID, s.ToolCallID, "subscription_event", extra, m.Content.Parts, m.DisplayAs)
		return
	}
	child := infinity.ThreadInfo{
		ID:          infinity.ThreadID(infinity.DeriveID("e", string(r.self.ID), string(m.ID))),
		Parent:      r.self.ID,
		Root:        r.hist.Stack()[0],
		SpawnOrder:  r.ownLen(),
		SpawnCallID: s.ToolCallID,
		Kind:        infinity.ThreadEvent,
		Agent:       r.self.Agent,
		Created:     r.e.cfg.Clock.Now(),
	}
	r.commit.Create = append(r.commit.Create, child)
	seed := m
	seed.GroupID = child.ID
	seed.Synthetic = &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: s.ToolCallID, Associative: true, Final: s.Final}
	seed.Content.Parts = append([]infinity.Part{{Type: "text", Text: fmt.Sprintf(
		"This thread (%s) was started to handle one event of your subscription %s. Act on it; tell the thread that subscribed with report_to_parent if it needs to know, and finish with close_thread.",
		child.ID, s.ToolCallID)}}, m.Content.Parts...)
	r.send("evt-"+string(m.ID), seed, time.Time{})
	if s.Final {
		// The subscriber learns that nothing more will come.
		r.injectWith(m.ID+"/final", s.ToolCallID, "subscription_ended", map[string]any{"final": true, "event_thread_id": child.ID},
			[]infinity.Part{{Type: "text", Text: fmt.Sprintf("The subscription's final event is being handled in thread %s; no more events will come.", child.ID)}}, nil)
	}
}

// pendingCall returns the state of one of this thread's own calls that
// still waits for its real result, or nil (with a log line) for any other
// call: a callback about it must not reach the history.
func (r *run) pendingCall(m infinity.InputMessage) *callState {
	cs := r.calls[m.Content.ID]
	if cs == nil || !cs.own || (cs.answered && cs.state != infinity.ResultPending) {
		r.e.log.Warn("callback for a call that is not pending discarded", "thread", r.self.ID, "call", m.Content.ID, "type", m.Content.Type, "message", m.ID)
		return nil
	}
	return cs
}

// oauth applies a tool's request for the user's authorization. The call
// stays pending; the model is told authorization is in progress; the URL
// goes to the observer (clients show it) and is never stored.
func (r *run) oauth(m infinity.InputMessage) {
	cs := r.pendingCall(m)
	if cs == nil {
		return
	}
	r.oauthURLs = append(r.oauthURLs, oauthRequest{call: m.Content.ID, tool: cs.call.Name, url: m.Content.AuthURL})
	r.injectWith(m.ID, m.Content.ID, "oauth", nil, []infinity.Part{{Type: "text", Text: fmt.Sprintf(
		"The tool %s needs the user to authorize it; they have been shown a link. Its result will arrive once they have.", cs.call.Name)}}, nil)
}

type oauthRequest struct{ call, tool, url string }

// ChoiceSegment is the display segment type of a pending user choice: the
// question for people, kept out of the model's view.
const ChoiceSegment = "user_choice"

// userChoice applies a tool's question for the user. The call stays
// pending until the tool's result; the model sees the question, and the
// choice (with its response URL) is kept in a display segment that only
// clients read, so the pending choices of a thread are in its history.
func (r *run) userChoice(m infinity.InputMessage) {
	cs := r.pendingCall(m)
	if cs == nil {
		return
	}
	c := infinity.PendingChoice{ID: m.Content.ID, Prompt: m.Content.Prompt, Choices: m.Content.Choices, Default: m.Content.Default, ResponseURL: m.Content.ResponseURL}
	raw, _ := json.Marshal(c) // plain fields always marshal
	text := fmt.Sprintf("The tool %s asked the user: %q (choices: %s; default %q). Their answer will arrive as the tool's result.",
		cs.call.Name, c.Prompt, strings.Join(quoted(c.Choices), ", "), choiceLabel(c))
	r.injectWith(m.ID, m.Content.ID, "user_choice", nil, []infinity.Part{{Type: "text", Text: text}},
		[]infinity.DisplaySegment{{Type: ChoiceSegment, Content: raw}})
}

func quoted(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

func choiceLabel(c infinity.PendingChoice) string {
	if c.Default >= 0 && c.Default < len(c.Choices) {
		return c.Choices[c.Default]
	}
	return ""
}

// PendingChoices returns the user choices of a history that still wait for
// an answer: asked by a tool whose call has no final result yet.
func PendingChoices(items []infinity.Item) []infinity.PendingChoice {
	final := FinishedCalls(items)
	var out []infinity.PendingChoice
	for _, it := range items {
		if it.Kind != infinity.KindToolResult {
			continue
		}
		for _, seg := range it.Result.Display {
			var c infinity.PendingChoice
			if seg.Type != ChoiceSegment || json.Unmarshal(seg.Content, &c) != nil || final[c.ID] {
				continue
			}
			out = append(out, c)
		}
	}
	return out
}

// FinishedCalls returns the ids of the calls in items that have their
// final result (in place, or injected late).
func FinishedCalls(items []infinity.Item) map[string]bool {
	final := map[string]bool{}
	for _, it := range items {
		if it.Kind == infinity.KindToolResult && it.Result.State == infinity.ResultFinal {
			final[it.Result.CallID] = true
		}
		if it.Kind == infinity.KindToolCall && it.Call.Name == injectedTool {
			var a struct {
				Kind     string `json:"kind"`
				Original string `json:"original_tool_call_id"`
			}
			if json.Unmarshal(it.Call.Args, &a) == nil && a.Kind == "late_result" {
				final[a.Original] = true
			}
		}
	}
	return final
}
