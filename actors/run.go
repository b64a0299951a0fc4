package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// run is one slice in memory: the loaded history, what the slice adds, and
// the Commit it builds. Nothing reaches the stores until the commit.
type run struct {
	e      *engine
	agent  *Agent
	hist   infinity.History
	self   infinity.ThreadInfo
	items  []infinity.Item // hist.Items followed by the new items
	calls  map[string]*callState
	open   []string // own calls still waiting for a result, in order
	commit infinity.Commit

	actionable bool
	// raised are the batch's SyntheticBudget inputs: the budget was
	// raised (on the root, by each one's Budget).
	raised []infinity.InputMessage
	// budgeted says the tree has a budget (budgetCheck).
	budgeted bool
	// stoppedBefore says the history ended with the budget stopping the
	// thread before this slice's inputs were applied.
	stoppedBefore bool
	closing       bool
	children      int
	completions   int
	started       time.Time
	metadata      json.RawMessage
	modelErr      error
	inputs        []infinity.MessageID
	badArgs       []string           // calls whose arguments were not valid JSON
	closeReq      infinity.MessageID // a close request's id
	oauthURLs     []oauthRequest     // shown to clients after the commit, never stored
	cancelled     []string           // subscriptions cancelled, for the notifier
	session       []infinity.Tool    // the agent's Toolsets for this root
	specs         []infinity.ToolSpec
	model         threadModel    // set by the first completion
	lastUsage     infinity.Usage // of the slice's last completion
	compactNow    bool           // an operator asked for a compaction
	// pending is the model call a slice stopped at (errSuspended);
	// answered is its answer, for the slice to go on with.
	pending  *pendingCall
	answered *answer
}

type callState struct {
	call       *infinity.ToolCall
	own        bool
	answered   bool
	state      infinity.ResultState
	subscribed bool // an active subscription of this thread (or inherited)
}

func (e *engine) newRun(ctx context.Context, id infinity.ThreadID) (*run, error) {
	h, err := infinity.LoadHistory(ctx, e.cfg.Conversations, id)
	if err != nil {
		return nil, fmt.Errorf("slice %s: %w", id, err)
	}
	self := h.Thread()
	r := &run{
		e:       e,
		agent:   e.agent(self.Agent),
		hist:    h,
		self:    self,
		items:   slices.Grow(h.Items, 3), // LoadHistory returns a fresh slice: appending to it is safe
		calls:   make(map[string]*callState),
		started: e.cfg.Clock.Now(),
		commit:  infinity.Commit{Thread: id, Expected: h.Len(), Items: make([]infinity.Item, 0, 3)},
	}
	r.indexSummary()
	for i := range r.items {
		r.index(&r.items[i], i >= h.Inherited)
	}
	r.session = e.sessionTools(ctx, r.agent, h.Stack()[0])
	return r, nil
}

// sessionTools returns the agent's session tools for root, leaving out (and
// reporting) what cannot be had or would shadow another tool.
func (e *engine) sessionTools(ctx context.Context, a *Agent, root infinity.ThreadID) []infinity.Tool {
	if a.Toolsets == nil {
		return nil
	}
	tools, err := a.Toolsets.Tools(ctx, root)
	if err != nil {
		// What did load is used; the rest is reported.
		e.emitErr(root, fmt.Errorf("tools of session %s: %w (the thread runs without them)", root, err))
	}
	out := tools[:0:0]
	for _, t := range tools {
		name := t.Spec().Name
		if builtinNames[name] || builtins[name].run != nil || slices.ContainsFunc(a.Tools, func(o infinity.Tool) bool { return o.Spec().Name == name }) {
			e.log.Warn("session tool shadows another tool; left out", "thread", root, "tool", name)
			continue
		}
		out = append(out, t)
	}
	return out
}

// index records calls and their answers as items are loaded or appended.
func (r *run) index(it *infinity.Item, own bool) {
	switch it.Kind {
	case infinity.KindToolCall:
		if it.Call.Name == injectedTool && it.ID != it.Call.ID {
			// Engine-made (model calls use the call id as the item id); a
			// model imitating the tool must not mark anything final.
			r.indexInjected(it.Call)
		}
		r.calls[it.Call.ID] = &callState{call: it.Call, own: own}
		if own {
			r.open = append(r.open, it.Call.ID)
		}
	case infinity.KindToolResult:
		if cs := r.calls[it.Result.CallID]; cs != nil {
			cs.answered, cs.state = true, it.Result.State
			r.dropOpen(it.Result.CallID)
			if it.Result.Subscription {
				cs.subscribed = true
			}
			if cs.call.Name == "cancel_subscription" && !it.Result.IsError {
				r.endSubscription(cs.call.Args)
			}
		}
	}
}

// endSubscription marks the subscription named by args' tool_call_id
// ended (a successful cancel_subscription, or a final event).
func (r *run) endSubscription(args json.RawMessage) {
	var a struct {
		ToolCallID string `json:"tool_call_id"`
		Original   string `json:"original_tool_call_id"`
		Final      bool   `json:"final"`
	}
	if json.Unmarshal(args, &a) != nil {
		return
	}
	id := a.ToolCallID
	if id == "" && a.Final {
		id = a.Original
	}
	if cs := r.calls[id]; cs != nil {
		cs.subscribed = false
	}
}

// indexInjected marks a call whose late result was injected as final, so a
// repeat of that result is recognised as stale.
func (r *run) indexInjected(c *infinity.ToolCall) {
	var a struct {
		Kind         string `json:"kind"`
		Original     string `json:"original_tool_call_id"`
		Subscription bool   `json:"subscription"`
	}
	if json.Unmarshal(c.Args, &a) == nil && a.Kind == "late_result" {
		if cs := r.calls[a.Original]; cs != nil {
			cs.state = infinity.ResultFinal
			if a.Subscription {
				cs.subscribed = true
			}
		}
	}
	r.endSubscription(c.Args) // a final event ends its subscription
}

func (r *run) dropOpen(id string) {
	for i, o := range r.open {
		if o == id {
			r.open = append(r.open[:i], r.open[i+1:]...)
			return
		}
	}
}

func (r *run) append(it infinity.Item) {
	it.At = r.e.cfg.Clock.Now()
	r.items = append(r.items, it)
	r.commit.Items = append(r.commit.Items, it)
	r.index(&r.items[len(r.items)-1], true)
}

// closed returns the id of the closed thread in the lineage (the thread
// itself or an ancestor), if any: a thread spawned while its parent was
// being closed is closed with it.
func (r *run) closed() infinity.ThreadID {
	for _, t := range r.hist.Lineage {
		if t.Closed {
			return t.ID
		}
	}
	return ""
}

// ownLen is the thread's own length including what this slice appended.
func (r *run) ownLen() int { return r.commit.Expected + len(r.commit.Items) }

func (r *run) empty() bool {
	c := r.commit
	return len(c.Items) == 0 && len(c.Outbox) == 0 && len(c.Create) == 0 && len(c.Close) == 0 && c.Summary == nil
}

func (r *run) send(id string, msg infinity.InputMessage, at time.Time) {
	msg.ID = infinity.MessageID(id)
	r.commit.Outbox = append(r.commit.Outbox, infinity.Outgoing{ID: id, Message: &msg, At: at})
}

// execute applies the inputs, then runs completions while the thread has
// something to act on.
func (r *run) execute(ctx context.Context, msgs []infinity.InputMessage) error {
	r.stoppedBefore = StoppedByBudget(r.items)
	for _, m := range msgs {
		r.inputs = append(r.inputs, m.ID)
		if s := m.Synthetic; s != nil && s.Type == infinity.SyntheticCompactionComplete && !r.fromCompaction(ctx, s) {
			continue
		}
		r.apply(m)
	}
	if r.closeReq != "" {
		if err := r.closeOnRequest(ctx); err != nil {
			return err
		}
	}
	if len(r.raised) > 0 {
		if err := r.budgetRaised(ctx); err != nil {
			return err
		}
	}
	return r.conclude(ctx, msgs)
}

// conclude is the part of execute from the model's turn on; a slice that
// stopped at a model call (errSuspended) calls it again with the answer
// in r.answered.
func (r *run) conclude(ctx context.Context, msgs []infinity.InputMessage) error {
	if err := r.think(ctx); err != nil {
		return err
	}
	if err := r.maybeCompact(ctx); err != nil {
		return err
	}
	if !r.empty() {
		r.commit.Applied = make([]infinity.MessageID, len(msgs))
		for i, m := range msgs {
			r.commit.Applied[i] = m.ID
		}
	}
	return nil
}

// apply turns one input message into history.
func (r *run) apply(m infinity.InputMessage) {
	if len(m.Metadata) > 0 && string(m.Metadata) != "null" {
		r.metadata = m.Metadata
	}
	if s := m.Synthetic; s != nil {
		switch s.Type {
		case infinity.SyntheticContinue:
			r.actionable = true
		case infinity.SyntheticClose:
			r.interrupt()
			r.closeReq = m.ID
		case infinity.SyntheticThreadReport, infinity.SyntheticParentMessage:
			r.inject(m, s.ToolCallID, string(s.Type))
		case infinity.SyntheticSubscriptionEvent:
			r.event(m)
		case infinity.SyntheticCompaction:
			r.compactNow = true
		case infinity.SyntheticCompactionComplete:
			r.applySummary(m)
		case infinity.SyntheticBudget:
			r.raised = append(r.raised, m)
		default:
			r.e.log.Warn("synthetic input not supported by this engine; dropped", "thread", r.self.ID, "type", s.Type)
		}
		return
	}
	switch m.Content.Type {
	case infinity.ContentText:
		r.interrupt()
		it := infinity.Item{ID: string(m.ID), Kind: infinity.KindUser, Text: m.Content.Text}
		if r.self.IsRoot() && r.ownLen() == 0 {
			it.Budget = m.Budget // a budget comes with a root's first message only (raises are SyntheticBudget)
		}
		r.append(it)
		r.actionable = true
	case infinity.ContentToolResult:
		r.result(m)
	case infinity.ContentOAuth:
		r.oauth(m)
	case infinity.ContentUserChoice:
		r.userChoice(m)
	default:
		r.e.log.Warn("input not supported by this engine; dropped", "thread", r.self.ID, "type", m.Content.Type)
	}
}

// result applies a tool result: the awaited answer, a late answer to a call
// that was answered with a placeholder (injected as an event), or a stale
// one (a sleep cut short, a duplicate), which is recorded and ignored.
func (r *run) result(m infinity.InputMessage) {
	id := m.Content.ID
	cs := r.calls[id]
	switch {
	case cs == nil || (!cs.own && id != r.self.SpawnCallID):
		// Only this thread's own calls take results (and a child's seed,
		// the answer to the spawn call it inherited): a result for a call
		// a child merely inherited belongs to its parent.
		r.e.log.Warn("result for a call that is not this thread's ignored", "thread", r.self.ID, "call", id, "message", m.ID)
	case !cs.answered:
		sub, parts := r.admitSubscription(m, cs)
		r.append(infinity.Item{ID: string(m.ID), Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
			CallID: id, Parts: parts, Display: m.DisplayAs, Subscription: sub,
		}})
		r.actionable = true
		r.wakePassive() // a result is input too: sleeps beside the call end

	case cs.state == infinity.ResultPending:
		var extra map[string]any
		sub, parts := r.admitSubscription(m, cs)
		if sub {
			// The call's real result starts a subscription: recorded on
			// the injected pair, so a reload sees it too.
			extra = map[string]any{"subscription": true}
		}
		r.injectWith(m.ID, id, "late_result", extra, parts, m.DisplayAs)
		cs.state = infinity.ResultFinal
	default:
		r.e.log.Debug("stale tool result recorded", "thread", r.self.ID, "call", id, "message", m.ID)
	}
}

// admitSubscription decides whether result m starts a subscription: only
// for the thread's own call, and only below the agent's cap; past it the
// result is kept as a plain one, the model is told, and the tool servers
// are asked to cancel (RAP: cap active subscriptions per thread).
func (r *run) admitSubscription(m infinity.InputMessage, cs *callState) (bool, []infinity.Part) {
	if !m.Subscription || !cs.own {
		return false, m.Content.Parts
	}
	active := 0
	for _, c := range r.calls {
		if c.subscribed && c.own {
			active++
		}
	}
	if active < r.agent.MaxSubscriptions {
		return true, m.Content.Parts
	}
	r.cancelled = append(r.cancelled, cs.call.ID)
	note := infinity.Part{Type: "text", Text: fmt.Sprintf("(Not subscribed: this thread already has %d active subscriptions, the most it may have; cancel one with cancel_subscription first.)", active)}
	return false, append(append([]infinity.Part(nil), m.Content.Parts...), note)
}

// injectedTool is the name of the synthetic call that carries reports,
// parent messages and late results into a thread's history.
const injectedTool = "receive_event__injected"

// inject adds a synthetic call/result pair that ties m to the original call.
// The original call may be gone from view (compacted); the pair is injected
// anyway, so nothing addressed to the thread is dropped.
func (r *run) inject(m infinity.InputMessage, original, kind string) {
	var extra map[string]any
	if m.Synthetic != nil && m.Synthetic.ChildThreadID != "" {
		extra = map[string]any{"child_thread_id": m.Synthetic.ChildThreadID}
	}
	r.injectWith(m.ID, original, kind, extra, m.Content.Parts, m.DisplayAs)
}

// injectWith adds the synthetic pair with extra arguments, under an item
// id derived from key.
func (r *run) injectWith(key infinity.MessageID, original, kind string, extra map[string]any, parts []infinity.Part, display []infinity.DisplaySegment) {
	r.interrupt()
	args := map[string]any{"kind": kind, "original_tool_call_id": original}
	if cs := r.calls[original]; cs != nil {
		args["original_tool_name"] = cs.call.Name
		if kind == "subscription_event" {
			args["original_args"] = cs.call.Args
		}
	}
	for k, v := range extra {
		args[k] = v
	}
	raw, _ := json.Marshal(args) // strings, booleans and raw JSON always marshal
	callID := infinity.DeriveID("inj_", string(r.self.ID), string(key))
	r.append(infinity.Item{ID: string(key) + "/call", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: callID, Name: injectedTool, Args: raw}})
	r.append(infinity.Item{ID: string(key), Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
		CallID: callID, Parts: parts, Display: display,
	}})
	r.actionable = true
}

// interrupt answers every open call before other input enters the history,
// so the model always sees each call answered before it speaks again. A
// passive call (a sleep) is cut short and its late wake-up ignored; any
// other call is marked pending and its real result is injected when it
// arrives.
func (r *run) interrupt() { r.answerOpen(true) }

// wakePassive cuts short the open passive calls (sleeps) once a result
// arrived; open non-passive calls keep waiting for their own results.
func (r *run) wakePassive() { r.answerOpen(false) }

func (r *run) answerOpen(active bool) {
	for _, id := range append([]string(nil), r.open...) {
		state, text := infinity.ResultInterrupted, "Interrupted: new input arrived first."
		if !r.passive(r.calls[id].call.Name) {
			if !active {
				continue
			}
			state, text = infinity.ResultPending, "Still running: the result will arrive as a separate message."
		}
		r.append(infinity.Item{ID: id + "/interrupted", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
			CallID: id, Parts: []infinity.Part{{Type: "text", Text: text}}, State: state,
		}})
	}
}

// asleep reports whether the thread waits on open calls that are all
// passive: nothing of its own is running, only a timer or an outside
// message wakes it.
func (r *run) asleep() bool {
	if len(r.open) == 0 {
		return false
	}
	for _, id := range r.open {
		if !r.passive(r.calls[id].call.Name) {
			return false
		}
	}
	return true
}

func (r *run) passive(name string) bool {
	if b, ok := builtins[name]; ok {
		return b.spec.Passive
	}
	if t := findTool(name, r.agent.Tools, r.session); t != nil {
		return t.Spec().Passive
	}
	return false
}

// closeOnRequest closes the thread and its subtree because an operator
// asked to (a SyntheticClose input); a child's parent is told.
func (r *run) closeOnRequest(ctx context.Context) error {
	subtree, err := r.subtree(ctx)
	if err != nil {
		return fmt.Errorf("slice %s: close: %w", r.self.ID, err)
	}
	r.commit.Close = append(r.commit.Close, subtree...)
	if !r.self.IsRoot() {
		r.report(string(r.closeReq), "Child thread "+string(r.self.ID)+" was closed by the user.")
	}
	r.closing = true
	return nil
}

// think runs completions until the model answers without tools, waits on
// an asynchronous call, closes the thread, or the budget runs out.
func (r *run) think(ctx context.Context) error {
	if a := r.answered; a != nil { // the slice resumes after its model call
		r.answered = nil
		if a.panicked {
			return a.err
		}
		if more, err := r.took(ctx, a.resp, a.err); !more || err != nil {
			return err
		}
	}
	for r.actionable && len(r.open) == 0 && !r.closing {
		if r.outOfBudget(ctx) {
			r.sendContinue()
			return nil
		}
		if r.completions > 0 && r.budgeted {
			// A tree with a budget commits each model call before the
			// next: what a slice spends is then in the store for every
			// other slice of the tree to count, here and in the cloud.
			// (Before any store read: a failed read must not cost the
			// call already made.)
			r.sendContinue()
			return nil
		}
		stop, err := r.budgetCheck(ctx)
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
		if gate := r.agent.Gate; gate != nil { // after the budget: a spent one is said first
			if err := gate(ctx, r.self.ID, r.self.Root); err != nil {
				if r.completions > 0 {
					// What the slice's calls and tools did is kept: it
					// commits, and its continue meets the gate again.
					r.sendContinue()
					return nil
				}
				return fmt.Errorf("slice %s: %w", r.self.ID, err)
			}
		}
		r.completions++
		tm, req, err := r.prepare(ctx)
		if err == nil && r.e.suspends(ctx, tm.provider) {
			r.pending = &pendingCall{model: tm, req: req}
			return errSuspended
		}
		var resp response
		if err == nil {
			resp, err = r.call(ctx, tm, req)
		}
		if more, err := r.took(ctx, resp, err); !more || err != nil {
			return err
		}
	}
	return nil
}

// took adds a model turn's answer (or failure) to the run: more says the
// model is to be asked again (it called tools, which ran); err is the
// slice's error (a failure the batch is retried for).
func (r *run) took(ctx context.Context, resp response, err error) (more bool, _ error) {
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("slice %s: %w", r.self.ID, ctx.Err())
		}
		if errors.Is(err, infinity.ErrRetryable) || errors.Is(err, infinity.ErrAwaitingUser) {
			// A passing outage, or a person who must act first: retry
			// the whole batch later rather than strand a thread that no
			// user will nudge.
			return false, fmt.Errorf("slice %s: %w", r.self.ID, err)
		}
		r.modelErr = err
		if r.self.Kind == infinity.ThreadCompaction {
			r.finishCompaction("")
		}
		return false, nil
	}
	r.lastUsage = resp.usage
	if r.self.Kind == infinity.ThreadCompaction {
		resp.calls = nil // it has no tools
		r.appendResponse(resp)
		r.finishCompaction(resp.text)
		return false, nil
	}
	calls := r.appendResponse(resp)
	if len(calls) == 0 {
		return false, nil
	}
	r.runCalls(ctx, calls)
	return true, nil
}

// sendContinue has the thread send itself a continue message: the slice
// ends here (its work commits) and the thread goes on in the next.
func (r *run) sendContinue() {
	r.send(r.continueID(), infinity.InputMessage{
		GroupID: r.self.ID, Content: infinity.TextContent(""),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticContinue},
	}, time.Time{})
}

// continueID is stable for a re-run of the same slice, and differs from the
// id of the continue message that started this slice.
func (r *run) continueID() string {
	parts := []string{string(r.self.ID), strconv.Itoa(r.ownLen())}
	for _, id := range r.inputs {
		parts = append(parts, string(id))
	}
	return infinity.DeriveID("cont_", parts...)
}

func (r *run) outOfBudget(ctx context.Context) bool {
	now := r.e.cfg.Clock.Now()
	if r.e.cfg.Deadline != nil {
		if dl, ok := r.e.cfg.Deadline(ctx); ok && !now.Before(dl) {
			return true
		}
	}
	if r.completions == 0 {
		return false // the first completion always runs, so every slice progresses
	}
	b := r.agent.Budget
	return r.completions >= b.Completions || now.Sub(r.started) >= b.Wall
}

// appendResponse stores a whole model response and returns its calls.
func (r *run) appendResponse(resp response) []*infinity.ToolCall {
	start := len(r.commit.Items)
	calls := make([]*infinity.ToolCall, 0, len(resp.calls))
	if resp.text != "" {
		r.append(infinity.Item{ID: positionID("a_", r.self.ID, r.ownLen()), Kind: infinity.KindAssistant, Text: resp.text})
	}
	for i := range resp.calls {
		c := &resp.calls[i]
		if c.ID == "" || r.calls[c.ID] != nil {
			c.ID = positionID("call_", r.self.ID, r.ownLen())
		}
		switch {
		case len(c.Args) == 0:
			c.Args = json.RawMessage("{}")
		case !json.Valid(c.Args):
			// Stores keep arguments as JSON: keep the model's bytes as a
			// string, and answer the call with an error (runCalls).
			raw, _ := json.Marshal(map[string]string{"invalid_json_arguments": string(c.Args)}) // a map of strings always marshals
			c.Args = raw
			r.badArgs = append(r.badArgs, c.ID)
		}
		r.append(infinity.Item{ID: c.ID, Kind: infinity.KindToolCall, Call: c})
		calls = append(calls, c)
	}
	if len(r.commit.Items) > start {
		u := resp.usage
		last := len(r.commit.Items) - 1
		r.commit.Items[last].Usage, r.commit.Items[last].Model = &u, r.model.name
		r.items[len(r.items)-1].Usage, r.items[len(r.items)-1].Model = &u, r.model.name
	}
	return calls
}

// answer appends a result for call.
func (r *run) answer(call *infinity.ToolCall, text string, isErr bool) {
	if isErr && !strings.HasPrefix(text, "Error:") {
		text = "Error: " + text
	}
	r.append(infinity.Item{ID: call.ID + "/result", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
		CallID: call.ID, Parts: []infinity.Part{{Type: "text", Text: text}}, IsError: isErr,
	}})
}

// runCalls handles every call of a response, in order: built-ins and sync
// tools run now; async tools are dispatched after the commit.
func (r *run) runCalls(ctx context.Context, calls []*infinity.ToolCall) {
	for _, c := range calls {
		if r.closing {
			r.answer(c, "not run: the thread closed earlier in this response", true)
			continue
		}
		if slices.Contains(r.badArgs, c.ID) || !strings.HasPrefix(strings.TrimSpace(string(c.Args)), "{") {
			r.answer(c, "the arguments of "+c.Name+" are not a JSON object", true)
			continue
		}
		if b, ok := builtins[c.Name]; ok {
			bctx, end := r.e.cfg.Probe.Begin(ctx, Step{Kind: StepTool, Thread: r.self.ID, Tool: c.Name, ToolKind: ToolBuiltin, Call: c.ID})
			n := len(r.commit.Items)
			b.run(bctx, r, c)
			end(StepEnd{Err: r.answeredError(n, c.ID)})
			continue
		}
		t := r.tool(c.Name)
		if t == nil {
			r.answer(c, fmt.Sprintf("tool %q does not exist. Available tools: %s", c.Name, strings.Join(r.toolNames(), ", ")), true)
			continue
		}
		spec := t.Spec()
		if spec.Async {
			r.commit.Outbox = append(r.commit.Outbox, infinity.Outgoing{ID: "invoke-" + c.ID, Invoke: &infinity.Invocation{Tool: c.Name, Call: *c}})
			continue
		}
		tctx, end := r.e.cfg.Probe.Begin(ctx, Step{Kind: StepTool, Thread: r.self.ID, Tool: c.Name, ToolKind: ToolSync, Call: c.ID})
		tctx, cancel := context.WithTimeout(tctx, toolTimeout(t, r.e.cfg.ToolTimeout))
		res, err := t.Invoke(tctx, r.e.toolEnv(r.hist.Lineage), *c)
		cancel()
		switch {
		case err != nil:
			end(StepEnd{Err: err})
			r.answer(c, err.Error(), true)
		case res == nil:
			end(StepEnd{Err: errToolError})
			r.answer(c, "the tool returned no result", true)
		default:
			var serr error
			if res.IsError {
				serr = errToolError
			}
			end(StepEnd{Err: serr})
			out := *res
			out.CallID, out.State = c.ID, infinity.ResultFinal
			r.append(infinity.Item{ID: c.ID + "/result", Kind: infinity.KindToolResult, Result: &out})
		}
	}
}

// errToolError is a probe step's error for a tool call answered with an
// error result.
var errToolError = errors.New("the tool answered with an error")

// answeredError is errToolError when the items the slice added from n on
// answer call with an error result.
func (r *run) answeredError(n int, call string) error {
	for _, it := range r.commit.Items[min(n, len(r.commit.Items)):] {
		if it.Kind == infinity.KindToolResult && it.Result != nil && it.Result.CallID == call && it.Result.IsError {
			return errToolError
		}
	}
	return nil
}

func (r *run) tool(name string) infinity.Tool {
	if name == injectedTool {
		return nil
	}
	return findTool(name, r.agent.Tools, r.session)
}

func findTool(name string, sets ...[]infinity.Tool) infinity.Tool {
	for _, set := range sets {
		for _, t := range set {
			if t.Spec().Name == name {
				return t
			}
		}
	}
	return nil
}

func (r *run) toolNames() []string {
	names := make([]string, 0, len(builtinOrder)+len(r.agent.Tools)+len(r.session))
	names = append(names, builtinOrder...)
	for _, t := range r.agent.Tools {
		names = append(names, t.Spec().Name)
	}
	for _, t := range r.session {
		names = append(names, t.Spec().Name)
	}
	return names
}

// toolSpecs lists what the model may call in this run: the agent's specs,
// then the session's.
func (r *run) toolSpecs() []infinity.ToolSpec {
	if len(r.session) == 0 {
		return r.agent.toolSpecs()
	}
	if r.specs == nil {
		r.specs = slices.Clone(r.agent.toolSpecs())
		for _, t := range r.session {
			r.specs = append(r.specs, t.Spec())
		}
	}
	return r.specs
}

// toolSpecs lists the built-ins and the agent's tools, in that order; the
// list is built once per agent and shared (callers must not modify it).
func (a *Agent) toolSpecs() []infinity.ToolSpec {
	a.specsOnce.Do(func() {
		a.specs = make([]infinity.ToolSpec, 0, len(builtinOrder)+len(a.Tools))
		for _, n := range builtinOrder {
			a.specs = append(a.specs, builtins[n].spec)
		}
		for _, t := range a.Tools {
			a.specs = append(a.specs, t.Spec())
		}
	})
	return a.specs
}

var errStreamEnded = errors.New("model stream ended before the response was complete")
