package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// builtin is a tool the engine itself implements. All but the sleeps are
// synchronous: they take effect through the slice's commit (new threads,
// closed threads, outbox messages), so the model gets their result at once.
type builtin struct {
	spec infinity.ToolSpec
	run  func(ctx context.Context, r *run, c *infinity.ToolCall)
}

var (
	builtins     map[string]builtin
	builtinOrder = []string{"spawn_thread", "report_to_parent", "close_thread", "send_message_to_child",
		"sleep", "sleep_until", "sleep_until_event_or_input", "cancel_subscription"}
	builtinNames = map[string]bool{injectedTool: true}
)

func init() {
	builtins = map[string]builtin{
		"spawn_thread": {spec: infinity.ToolSpec{Name: "spawn_thread",
			Description: "Start a child thread that works on a task in parallel with you. The child sees your conversation up to this call. child_of must be your own thread stack (root first, yourself last), exactly as given in your instructions.",
			Schema:      schema(`{"type":"object","properties":{"instructions":{"type":"string","description":"The task for the child."},"child_of":{"type":"array","items":{"type":"string"},"description":"Your thread stack, root first, your own id last."},"model":{"type":"string","description":"Optional: run the child on another of your agent's models, as provider/model. Default: your own model."}},"required":["instructions","child_of"]}`),
		}, run: spawnThread},
		"report_to_parent": {spec: infinity.ToolSpec{Name: "report_to_parent",
			Description: "Send a report to the thread that spawned you. The parent receives it as a message.",
			Schema:      schema(`{"type":"object","properties":{"report":{"type":"string"}},"required":["report"]}`),
		}, run: reportToParent},
		"close_thread": {spec: infinity.ToolSpec{Name: "close_thread",
			Description: "Finish this thread for good, with an optional final report to the parent. Its own child threads are closed too. The root thread cannot be closed.",
			Schema:      schema(`{"type":"object","properties":{"thread_id":{"type":"string","description":"Your own thread id."},"report_to_parent":{"type":"string"}},"required":["thread_id"]}`),
		}, run: closeThread},
		"send_message_to_child": {spec: infinity.ToolSpec{Name: "send_message_to_child",
			Description: "Send a message to one of your direct child threads.",
			Schema:      schema(`{"type":"object","properties":{"thread_id":{"type":"string"},"message":{"type":"string"}},"required":["thread_id","message"]}`),
		}, run: sendMessageToChild},
		"sleep": {spec: infinity.ToolSpec{Name: "sleep", Async: true, Passive: true,
			Description: "Sleep for a number of seconds. Any new input wakes you earlier.",
			Schema:      schema(`{"type":"object","properties":{"seconds":{"type":"number","minimum":0},"reason":{"type":"string"}},"required":["seconds"]}`),
		}, run: sleepFor},
		"sleep_until": {spec: infinity.ToolSpec{Name: "sleep_until", Async: true, Passive: true,
			Description: "Sleep until a date and time in a time zone. A time in the past wakes you at once. Any new input wakes you earlier.",
			Schema:      schema(`{"type":"object","properties":{"date":{"type":"string","description":"YYYY-MM-DD"},"time":{"type":"string","description":"HH:MM or HH:MM:SS"},"timezone":{"type":"string","description":"IANA time zone, default UTC"}},"required":["date","time"]}`),
		}, run: sleepUntil},
		"sleep_until_event_or_input": {spec: infinity.ToolSpec{Name: "sleep_until_event_or_input", Async: true, Passive: true,
			Description: "Wait, costing nothing, until a message arrives: user input, a child's report, a tool result or an event.",
			Schema:      schema(`{"type":"object","properties":{}}`),
		}, run: func(context.Context, *run, *infinity.ToolCall) {}},
		"cancel_subscription": {spec: infinity.ToolSpec{Name: "cancel_subscription",
			Description: "Stop an active subscription, named by the id of the tool call that started it.",
			Schema:      schema(`{"type":"object","properties":{"tool_call_id":{"type":"string"}},"required":["tool_call_id"]}`),
		}, run: cancelSubscription},
	}
	for n := range builtins {
		builtinNames[n] = true
	}
}

func schema(s string) json.RawMessage { return json.RawMessage(s) }

// args decodes a call's arguments into v; it answers the call with an error
// and returns false when they do not fit.
func args(r *run, c *infinity.ToolCall, v any) bool {
	if err := json.Unmarshal(c.Args, v); err != nil {
		r.answer(c, fmt.Sprintf("%s: bad arguments: %v", c.Name, err), true)
		return false
	}
	return true
}

func spawnThread(ctx context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		Instructions string   `json:"instructions"`
		ChildOf      []string `json:"child_of"`
		Model        string   `json:"model"`
	}
	if !args(r, c, &a) {
		return
	}
	stack := r.hist.Stack()
	model := r.self.Model
	if a.Model != "" {
		if _, err := r.e.model(ctx, r.agent, a.Model); err != nil {
			r.answer(c, "spawn_thread: "+err.Error(), true)
			return
		}
		model = a.Model
	}
	switch {
	case strings.TrimSpace(a.Instructions) == "":
		r.answer(c, "spawn_thread: instructions is required", true)
		return
	case !slices.Equal(a.ChildOf, idStrings(stack)):
		r.answer(c, fmt.Sprintf("spawn_thread: child_of %s does not match your thread stack %s. You are thread %s, not the thread whose plan you may remember: do your own task and do not spawn threads for it.",
			quoteList(a.ChildOf), stackString(stack), r.self.ID), true)
		return
	case len(stack) > r.agent.MaxDepth:
		r.answer(c, fmt.Sprintf("spawn_thread: the thread tree may be at most %d levels deep; do this task yourself", r.agent.MaxDepth), true)
		return
	}
	if r.children == 0 {
		kids, err := r.e.cfg.Conversations.Children(ctx, r.self.ID)
		if err != nil {
			r.answer(c, "spawn_thread: could not count your children: "+err.Error(), true)
			return
		}
		for _, k := range kids {
			if k.Kind != infinity.ThreadCompaction {
				r.children++
			}
		}
	}
	if r.children >= r.agent.MaxChildren {
		r.answer(c, fmt.Sprintf("spawn_thread: a thread may spawn at most %d children", r.agent.MaxChildren), true)
		return
	}
	if tb, err := r.treeBudget(ctx); err != nil {
		r.answer(c, "spawn_thread: could not read the tree's budget: "+err.Error(), true)
		return
	} else if max := tb.Budget.MaxThreads; max > 0 && tb.Spend.LiveThreads >= max {
		r.answer(c, fmt.Sprintf("spawn_thread: the budget of this thread tree allows %d threads that are not closed, and it has %d: do this task yourself, or wait for a child to close", max, tb.Spend.LiveThreads), true)
		return
	}
	child := infinity.ThreadInfo{
		ID:          infinity.ThreadID(infinity.DeriveID("t", string(r.self.ID), c.ID)),
		Parent:      r.self.ID,
		Root:        stack[0],
		SpawnOrder:  r.ownPosition(c.ID) + 1,
		SpawnCallID: c.ID,
		Agent:       r.self.Agent,
		Model:       model,
		Created:     r.e.cfg.Clock.Now(),
	}
	r.children++
	r.commit.Create = append(r.commit.Create, child)
	r.send("seed-"+c.ID, infinity.InputMessage{GroupID: child.ID, Content: infinity.ResultContent(c.ID, fmt.Sprintf(
		"You are now inside thread %s. Your task: %s\nDo this task yourself. Send what you find with report_to_parent and finish with close_thread.",
		child.ID, a.Instructions))}, time.Time{})
	r.answer(c, fmt.Sprintf("Spawned child thread %s. It works in parallel; its reports will reach you as messages. Do not do its task yourself.", child.ID), false)
}

// ownPosition returns the own-history position of call id.
func (r *run) ownPosition(id string) int {
	for i, it := range r.commit.Items {
		if it.Kind == infinity.KindToolCall && it.Call.ID == id {
			return r.commit.Expected + i
		}
	}
	return r.ownLen()
}

func reportToParent(_ context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		Report string `json:"report"`
	}
	if !args(r, c, &a) {
		return
	}
	if r.self.IsRoot() {
		r.answer(c, "report_to_parent: this is the root thread; it has no parent", true)
		return
	}
	r.report(c.ID, "Report from child thread "+string(r.self.ID)+": "+a.Report)
	r.answer(c, "Report sent to the parent thread.", false)
}

// report sends text to the parent, tied to the spawn call.
// report sends text to the parent as this thread's report; key (a call or
// message id) makes the report's id stable across re-runs.
func (r *run) report(key, text string) {
	r.send(infinity.DeriveID("rep_", string(r.self.ID), key), infinity.InputMessage{
		GroupID:   r.self.Parent,
		Content:   infinity.ResultContent(r.self.SpawnCallID, text),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticThreadReport, ToolCallID: r.self.SpawnCallID, ChildThreadID: r.self.ID},
	}, time.Time{})
}

func closeThread(ctx context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		ThreadID string `json:"thread_id"`
		Report   string `json:"report_to_parent"`
	}
	if !args(r, c, &a) {
		return
	}
	switch {
	case infinity.ThreadID(a.ThreadID) != r.self.ID:
		r.answer(c, fmt.Sprintf("close_thread: thread_id %q is not this thread (%s); a thread can only close itself", a.ThreadID, r.self.ID), true)
		return
	case r.self.IsRoot():
		r.answer(c, "close_thread: the root thread cannot be closed", true)
		return
	}
	subtree, err := r.subtree(ctx)
	if err != nil {
		r.answer(c, "close_thread: could not list the threads below this one: "+err.Error(), true)
		return
	}
	r.commit.Close = append(r.commit.Close, subtree...)
	text := "Child thread " + string(r.self.ID) + " has closed."
	if a.Report != "" {
		text += " Final report: " + a.Report
	}
	r.report(c.ID, text)
	r.answer(c, "Thread closed.", false)
	r.closing = true
}

// subtree returns the thread and every open thread below it, including
// children spawned earlier in this slice.
func (r *run) subtree(ctx context.Context) ([]infinity.ThreadID, error) {
	out := []infinity.ThreadID{r.self.ID}
	for _, t := range r.commit.Create {
		out = append(out, t.ID)
	}
	for i := 0; i < len(out); i++ {
		kids, err := r.e.cfg.Conversations.Children(ctx, out[i])
		if errors.Is(err, infinity.ErrNotFound) {
			continue // created in this slice, not stored yet
		}
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if !k.Closed && !slices.Contains(out, k.ID) {
				out = append(out, k.ID)
			}
		}
	}
	return out, nil
}

func sendMessageToChild(ctx context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		ThreadID string `json:"thread_id"`
		Message  string `json:"message"`
	}
	if !args(r, c, &a) {
		return
	}
	if a.Message == "" {
		r.answer(c, "send_message_to_child: message is required", true)
		return
	}
	var child *infinity.ThreadInfo
	for i := range r.commit.Create {
		if r.commit.Create[i].ID == infinity.ThreadID(a.ThreadID) {
			child = &r.commit.Create[i]
		}
	}
	if child == nil {
		info, err := r.e.cfg.Conversations.Thread(ctx, infinity.ThreadID(a.ThreadID))
		if err != nil && !errors.Is(err, infinity.ErrNotFound) {
			r.answer(c, "send_message_to_child: "+err.Error(), true)
			return
		}
		if err == nil {
			child = &info
		}
	}
	switch {
	case child == nil || child.Parent != r.self.ID:
		r.answer(c, fmt.Sprintf("send_message_to_child: thread %q is not a child of this thread (%s)", a.ThreadID, r.self.ID), true)
		return
	case child.Closed:
		r.answer(c, fmt.Sprintf("send_message_to_child: child thread %s is closed", child.ID), true)
		return
	}
	r.send(infinity.DeriveID("pm_", string(r.self.ID), c.ID), infinity.InputMessage{
		GroupID:   child.ID,
		Content:   infinity.ResultContent(child.SpawnCallID, "Message from parent thread: "+a.Message),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticParentMessage, ToolCallID: child.SpawnCallID},
	}, time.Time{})
	r.answer(c, "Message sent to child thread "+string(child.ID)+".", false)
}

// maxSleep bounds sleeps, so a typo cannot park a thread for centuries.
const maxSleep = 366 * 24 * time.Hour

func sleepFor(_ context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		Seconds *float64 `json:"seconds"`
		Reason  string   `json:"reason"`
	}
	if !args(r, c, &a) {
		return
	}
	if a.Seconds == nil || *a.Seconds < 0 || math.IsNaN(*a.Seconds) || *a.Seconds > maxSleep.Seconds() {
		r.answer(c, fmt.Sprintf("sleep: seconds must be a number from 0 to %.0f", maxSleep.Seconds()), true)
		return
	}
	d := time.Duration(*a.Seconds * float64(time.Second))
	r.wake(c, r.e.cfg.Clock.Now().Add(d), "Slept for "+strconv.FormatFloat(*a.Seconds, 'f', -1, 64)+" seconds.")
}

// wake schedules the wake-up result of a sleep call.
func (r *run) wake(c *infinity.ToolCall, at time.Time, text string) {
	r.send(infinity.DeriveID("wake_", string(r.self.ID), c.ID), infinity.InputMessage{
		GroupID: r.self.ID, Content: infinity.ResultContent(c.ID, text),
	}, at)
}

func sleepUntil(_ context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		Date     string `json:"date"`
		Time     string `json:"time"`
		Timezone string `json:"timezone"`
	}
	if !args(r, c, &a) {
		return
	}
	target, err := parseWallTime(a.Date, a.Time, a.Timezone)
	if err != nil {
		r.answer(c, "sleep_until: "+err.Error(), true)
		return
	}
	now := r.e.cfg.Clock.Now()
	label := fmt.Sprintf("%s %s (%s)", a.Date, a.Time, target.Location())
	switch {
	case !target.After(now):
		r.wake(c, time.Time{}, "The target time "+label+" had already passed; woke at once.")
	case target.Sub(now) > maxSleep:
		r.answer(c, "sleep_until: the target time is more than a year away", true)
	default:
		r.wake(c, target, "Woke at the target time "+label+".")
	}
}

// parseWallTime resolves a wall-clock date and time in an IANA zone. A time
// that does not exist (skipped by a DST change) or exists twice (repeated by
// one) is an error that says so, rather than a silent guess.
func parseWallTime(date, clock, zone string) (time.Time, error) {
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Paris)", zone)
	}
	d, err := time.Parse("2006-01-02", date)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q is not YYYY-MM-DD", date)
	}
	var c time.Time
	if c, err = time.Parse("15:04:05", clock); err != nil {
		if c, err = time.Parse("15:04", clock); err != nil {
			return time.Time{}, fmt.Errorf("time %q is not HH:MM or HH:MM:SS", clock)
		}
	}
	// Try every UTC offset the zone uses within a day of the date; each
	// offset that maps back to the same wall clock is one real instant.
	wall := time.Date(d.Year(), d.Month(), d.Day(), c.Hour(), c.Minute(), c.Second(), 0, time.UTC)
	var found []time.Time
	for _, probe := range []time.Duration{-36 * time.Hour, 0, 36 * time.Hour} {
		_, off := wall.Add(probe).In(loc).Zone()
		t := wall.Add(-time.Duration(off) * time.Second)
		if u := t.In(loc); u.Year() == wall.Year() && u.YearDay() == wall.YearDay() &&
			u.Hour() == wall.Hour() && u.Minute() == wall.Minute() && u.Second() == wall.Second() &&
			!slices.ContainsFunc(found, t.Equal) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return time.Time{}, fmt.Errorf("%s %s does not exist in %s (a daylight-saving change skips it)", date, clock, zone)
	case 1:
		return found[0].In(loc), nil
	default:
		return time.Time{}, fmt.Errorf("%s %s happens twice in %s (a daylight-saving change repeats it); pick a time outside that hour", date, clock, zone)
	}
}

func cancelSubscription(ctx context.Context, r *run, c *infinity.ToolCall) {
	var a struct {
		ToolCallID string `json:"tool_call_id"`
	}
	if !args(r, c, &a) {
		return
	}
	if a.ToolCallID == "" {
		r.answer(c, "cancel_subscription: tool_call_id is required", true)
		return
	}
	cs := r.calls[a.ToolCallID]
	if cs == nil || !cs.subscribed || !cs.own {
		// Only the thread that subscribed may cancel (an event thread
		// inherits the call but not the subscription).
		r.answer(c, fmt.Sprintf("cancel_subscription: no active subscription for tool call %q", a.ToolCallID), true)
		return
	}
	r.cancelled = append(r.cancelled, a.ToolCallID)
	// The result below ends the subscription (index reads it back).
	r.answer(c, fmt.Sprintf("Subscription %q cancelled.", a.ToolCallID), false)
}

func idStrings(ids []infinity.ThreadID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func quoteList(s []string) string {
	ids := make([]infinity.ThreadID, len(s))
	for i, x := range s {
		ids[i] = infinity.ThreadID(x)
	}
	return stackString(ids)
}

// ReservedToolNames are the names no agent tool may take: the built-ins and
// the engine's injected-event tool.
func ReservedToolNames() []string {
	return append(slices.Clone(builtinOrder), injectedTool)
}
