package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity/actors"

	infinity "github.com/infinity-runtime/infinity"
)

// Thread statuses.
const (
	StatusRunning  = "running"  // input queued or a slice running
	StatusSleeping = "sleeping" // a timer will wake it (Until)
	StatusWaiting  = "waiting"  // waiting for input, a child, an event or a tool
	StatusFailed   = "failed"   // the last slice failed (Detail); new input retries
	StatusClosed   = "closed"
	// StatusOverBudget: the thread stopped calling its model because its
	// tree's budget is spent (Detail says which cap); raising the budget
	// lets it go on. A root is over_budget when its tree's budget is spent
	// and it waits for its children.
	StatusOverBudget = "over_budget"
)

// WaitingForInput is the Detail of a thread that waits for user input (and
// nothing else).
const WaitingForInput = actors.WaitingForInput

// ThreadView is a thread as the API shows it.
type ThreadView struct {
	ID     infinity.ThreadID `json:"id"`
	Parent infinity.ThreadID `json:"parent,omitempty"`
	Root   infinity.ThreadID `json:"root"`
	Agent  string            `json:"agent"`
	// Kind is "event" for a thread that handles a subscription event and
	// "compaction" for one that summarises its parent; empty for a root
	// or a spawn_thread child.
	Kind string `json:"kind,omitempty"`
	// Model is the model the thread runs on ("provider/model"): its own
	// (infinity run --model, inherited by children) or its agent's
	// default.
	Model   string    `json:"model,omitempty"`
	Created time.Time `json:"created"`
	Status  string    `json:"status"`
	// Until is when a sleeping thread wakes.
	Until *time.Time `json:"until,omitempty"`
	// Detail says what a waiting thread waits for, or why it failed.
	Detail string `json:"detail,omitempty"`
	Items  int    `json:"items"`
	// Tokens are what the thread's own model responses used (from its
	// history: they survive restarts).
	Tokens infinity.Usage `json:"tokens"`
	// Cost is what they cost in USD, by the prices of the models that
	// answered; null when one of them has no price.
	Cost *float64 `json:"cost"`
	// Subtree adds up the thread and all its descendants.
	Subtree  Totals `json:"subtree"`
	Children int    `json:"children"`
	// Compacted says the thread's history was compacted: the model sees a
	// summary and the latest items; every item is still stored.
	Compacted bool `json:"compacted,omitempty"`
	// Choices are the user choices the thread's tools wait for.
	Choices []infinity.PendingChoice `json:"choices,omitempty"`
	// Authorize is a tool's request that the user open a URL (OAuth),
	// while its call waits; it is kept in memory only.
	Authorize *Authorize `json:"authorize,omitempty"`
	// Budget is a root's tree budget and what the tree spent, when it has
	// one (infinity budget).
	Budget *actors.TreeBudget `json:"budget,omitempty"`
}

// Authorize asks the user to authorize a tool.
type Authorize struct {
	Tool string `json:"tool"`
	URL  string `json:"url"`
}

// Tree is a thread and its subtree.
type Tree struct {
	ThreadView
	Threads []Tree `json:"threads,omitempty"`
}

// timers is the earliest future wake-up of each thread, read once per
// request from the inbox.
type timers map[infinity.ThreadID]time.Time

func (d *Daemon) snapshot(ctx context.Context) (timers, error) {
	waiting, err := d.store.Inbox().Waiting(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	t := timers{}
	for _, q := range waiting {
		if !q.At.After(now) {
			continue
		}
		id := q.Message.GroupID
		if have, ok := t[id]; !ok || q.At.Before(have) {
			t[id] = q.At
		}
	}
	return t, nil
}

func (d *Daemon) view(ctx context.Context, info infinity.ThreadInfo, t timers) (ThreadView, error) {
	conv := d.store.Conversations()
	items, err := conv.Items(ctx, info.ID, 0, -1)
	if err != nil {
		return ThreadView{}, err
	}
	kids, err := conv.Children(ctx, info.ID)
	if err != nil {
		return ThreadView{}, err
	}
	am := d.agents.modelsOf(info.Agent)
	model := threadModel(info, am)
	v := ThreadView{ID: info.ID, Parent: info.Parent, Root: info.Root, Agent: info.Agent, Model: model, Created: info.Created, Compacted: info.Compacted,
		Items: len(items), Tokens: infinity.SumUsage(items), Cost: costOf(items, model, am.Prices), Children: len(kids)}
	v.Subtree = Totals{Threads: 1, Tokens: v.Tokens, Cost: v.Cost}
	if info.Kind != infinity.ThreadNormal {
		v.Kind = info.Kind.String()
	}
	var call *infinity.ToolCall
	if it := actors.OpenCall(items); it != nil {
		call = it.Call
	}
	until, timer := t[info.ID]
	failure := d.failure(info.ID)
	v.Choices = actors.PendingChoices(items)
	v.Authorize = d.authorization(info.ID, items)
	if info.IsRoot() {
		if tb, err := d.rt.TreeBudgetOf(ctx, info); err != nil {
			return ThreadView{}, err
		} else if !tb.Budget.IsZero() {
			v.Budget = &tb
		}
	}
	stopped := actors.StoppedByBudget(items)
	mcpWait := d.mcpAuth.waitingOn(info.ID)
	switch {
	case info.Closed:
		v.Status = StatusClosed
	case mcpWait != nil:
		// Held back until an MCP server is authorized (mcpoauth.go).
		v.Status, v.Detail = StatusWaiting, mcpWait.detail
		if mcpWait.authorize != nil {
			v.Authorize = mcpWait.authorize
		}
	case d.rt.Busy(info.ID):
		v.Status = StatusRunning
		if key, ok := d.rt.WaitingForModel(info.ID); ok {
			v.Detail = "waiting for its turn at " + key + " (a rate limit)"
		} else if since, ok := d.rt.CallingModel(info.ID); ok {
			v.Detail = "calling its model (for " + time.Since(since).Round(time.Second).String() + ")"
		}
	case failure != "":
		v.Status, v.Detail = StatusFailed, failure
	case stopped || v.Budget != nil && v.Budget.Spent != "" && call != nil && call.Name == "sleep_until_event_or_input":
		v.Status, v.Detail = StatusOverBudget, "the tree's budget is spent"
		if v.Budget != nil && v.Budget.Spent != "" {
			v.Detail += " (" + v.Budget.Spent + ")"
		}
		v.Detail += ": raise it with infinity budget ROOT --add"
	case v.Authorize != nil:
		v.Status, v.Detail = StatusWaiting, "authorization of "+v.Authorize.Tool+": open "+v.Authorize.URL
	case len(v.Choices) > 0:
		v.Status, v.Detail = StatusWaiting, "your choice: "+v.Choices[0].Prompt+" (infinity answer)"
	case timer && call != nil && !isWaitCall(call):
		v.Status, v.Until = StatusSleeping, &until
	default:
		v.Status, v.Detail = StatusWaiting, actors.WaitingFor(call)
	}
	if v.Budget != nil && v.Budget.Warned && v.Budget.Spent == "" && v.Status != StatusClosed {
		v.Detail = strings.TrimSpace(v.Detail + fmt.Sprintf(" (budget: %.0f%% of a cap used)", 100*v.Budget.Budget.Used(v.Budget.Spend)))
	}
	return v, nil
}

func isWaitCall(c *infinity.ToolCall) bool { return c.Name == "sleep_until_event_or_input" }

func (d *Daemon) tree(ctx context.Context, id infinity.ThreadID, t timers) (Tree, error) {
	conv := d.store.Conversations()
	info, err := conv.Thread(ctx, id)
	if err != nil {
		return Tree{}, err
	}
	v, err := d.view(ctx, info, t)
	if err != nil {
		return Tree{}, err
	}
	out := Tree{ThreadView: v}
	kids, err := conv.Children(ctx, id)
	if err != nil {
		return Tree{}, err
	}
	for _, k := range kids {
		sub, err := d.tree(ctx, k.ID, t)
		if err != nil {
			return Tree{}, err
		}
		out.Subtree = out.Subtree.add(sub.Subtree)
		out.Threads = append(out.Threads, sub)
	}
	return out, nil
}

// own is the usage and cost of one thread's own history.
func (d *Daemon) own(ctx context.Context, info infinity.ThreadInfo) (Totals, error) {
	items, err := d.store.Conversations().Items(ctx, info.ID, 0, -1)
	if err != nil {
		return Totals{}, err
	}
	am := d.agents.modelsOf(info.Agent)
	return Totals{Threads: 1, Tokens: infinity.SumUsage(items), Cost: costOf(items, threadModel(info, am), am.Prices)}, nil
}

// subtrees adds up every thread's subtree, given all threads and the
// totals already known (views computed anyway); the others are read.
func (d *Daemon) subtrees(ctx context.Context, all []infinity.ThreadInfo, known map[infinity.ThreadID]Totals) (map[infinity.ThreadID]Totals, error) {
	parent := make(map[infinity.ThreadID]infinity.ThreadID, len(all))
	out := make(map[infinity.ThreadID]Totals, len(all))
	for _, info := range all {
		parent[info.ID] = info.Parent
		own, ok := known[info.ID]
		if !ok {
			var err error
			if own, err = d.own(ctx, info); errors.Is(err, infinity.ErrNotFound) {
				own = Totals{} // deleted since the listing was read
			} else if err != nil {
				return nil, err
			}
		}
		known[info.ID] = own
	}
	for _, info := range all {
		own := known[info.ID]
		// Add the thread's own totals to itself and every ancestor.
		for id, hops := info.ID, 0; id != "" && hops <= len(all); id, hops = parent[id], hops+1 {
			if _, seen := parent[id]; !seen {
				break
			}
			out[id] = out[id].add(own)
		}
	}
	return out, nil
}

// subtree adds up one thread's subtree.
func (d *Daemon) subtree(ctx context.Context, info infinity.ThreadInfo) (Totals, error) {
	total, err := d.own(ctx, info)
	if err != nil {
		return Totals{}, err
	}
	kids, err := d.store.Conversations().Children(ctx, info.ID)
	if err != nil {
		return Totals{}, err
	}
	for _, k := range kids {
		sub, err := d.subtree(ctx, k)
		if err != nil {
			return Totals{}, err
		}
		total = total.add(sub)
	}
	return total, nil
}

// authorization returns one of the thread's OAuth requests whose call
// still waits (the oldest); the URLs of answered calls are forgotten.
func (d *Daemon) authorization(id infinity.ThreadID, items []infinity.Item) *Authorize {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	var found *actors.Event
	var done map[string]bool
	for k, ev := range d.oauth {
		if ev.Thread != id {
			continue
		}
		if done == nil {
			done = actors.FinishedCalls(items)
		}
		if done[ev.Call] {
			delete(d.oauth, k)
			continue
		}
		if found == nil || ev.At.Before(found.At) {
			e := ev
			found = &e
		}
	}
	if found == nil {
		return nil
	}
	return &Authorize{Tool: found.Tool, URL: found.URL}
}
