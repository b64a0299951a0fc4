package daemon

import (
	"context"
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
)

// WaitingForInput is the Detail of a thread that waits for user input (and
// nothing else).
const WaitingForInput = "input"

// ThreadView is a thread as the API shows it.
type ThreadView struct {
	ID      infinity.ThreadID `json:"id"`
	Parent  infinity.ThreadID `json:"parent,omitempty"`
	Root    infinity.ThreadID `json:"root"`
	Agent   string            `json:"agent"`
	Created time.Time         `json:"created"`
	Status  string            `json:"status"`
	// Until is when a sleeping thread wakes.
	Until *time.Time `json:"until,omitempty"`
	// Detail says what a waiting thread waits for, or why it failed.
	Detail   string         `json:"detail,omitempty"`
	Items    int            `json:"items"`
	Tokens   infinity.Usage `json:"tokens"`
	Children int            `json:"children"`
	// Choices are the user choices the thread's tools wait for.
	Choices []infinity.PendingChoice `json:"choices,omitempty"`
	// Authorize is a tool's request that the user open a URL (OAuth),
	// while its call waits; it is kept in memory only.
	Authorize *Authorize `json:"authorize,omitempty"`
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
	v := ThreadView{ID: info.ID, Parent: info.Parent, Root: info.Root, Agent: info.Agent, Created: info.Created,
		Items: len(items), Tokens: infinity.SumUsage(items), Children: len(kids)}
	call := openCall(items)
	until, timer := t[info.ID]
	failure := d.failure(info.ID)
	v.Choices = actors.PendingChoices(items)
	v.Authorize = d.authorization(info.ID, items)
	switch {
	case info.Closed:
		v.Status = StatusClosed
	case d.rt.Busy(info.ID):
		v.Status = StatusRunning
	case failure != "":
		v.Status, v.Detail = StatusFailed, failure
	case v.Authorize != nil:
		v.Status, v.Detail = StatusWaiting, "authorization of "+v.Authorize.Tool+": open "+v.Authorize.URL
	case len(v.Choices) > 0:
		v.Status, v.Detail = StatusWaiting, "your choice: "+v.Choices[0].Prompt+" (infinity answer)"
	case timer && call != nil && !isWaitCall(call):
		v.Status, v.Until = StatusSleeping, &until
	default:
		v.Status, v.Detail = StatusWaiting, waitingFor(call)
	}
	return v, nil
}

// openCall returns the last own tool call if nothing answered it yet.
func openCall(items []infinity.Item) *infinity.ToolCall {
	answered := map[string]bool{}
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		switch it.Kind {
		case infinity.KindToolResult:
			if it.Result.State != infinity.ResultPending {
				answered[it.Result.CallID] = true
			}
		case infinity.KindToolCall:
			if !answered[it.Call.ID] {
				return it.Call
			}
		case infinity.KindUser, infinity.KindAssistant:
			return nil
		}
	}
	return nil
}

func isWaitCall(c *infinity.ToolCall) bool { return c.Name == "sleep_until_event_or_input" }

// waitingFor describes what a thread that is neither running nor sleeping
// waits for, given its open call (nil: none).
func waitingFor(c *infinity.ToolCall) string {
	switch {
	case c == nil:
		return WaitingForInput
	case c.Name == "spawn_thread":
		return "a child's report"
	case isWaitCall(c):
		return "input or an event"
	case c.Name == "sleep" || c.Name == "sleep_until":
		return "a timer"
	}
	return "the tool " + c.Name
}

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
		out.Threads = append(out.Threads, sub)
	}
	return out, nil
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
