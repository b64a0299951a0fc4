package cloudctl

import (
	"context"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// Thread statuses, read from the store (the daemon's names; in the cloud
// nothing says whether a slice runs right now, so there is no "running"
// from memory: a thread whose last input has no answer yet is "running").
const (
	StatusNew      = "new"      // created, its first input not applied yet
	StatusRunning  = "running"  // its last input has no answer yet
	StatusSleeping = "sleeping" // a timer will wake it (Until)
	StatusWaiting  = "waiting"  // for input, a child, an event or a tool (Detail)
	StatusClosed   = "closed"
	// StatusOverBudget: the tree's budget stopped the thread; a raise
	// lets it go on.
	StatusOverBudget = "over_budget"
)

// WaitingForInput is the Detail of a thread that waits for user input.
const WaitingForInput = actors.WaitingForInput

// Thread is a thread as the listings show it.
type Thread struct {
	ID     infinity.ThreadID `json:"id"`
	Parent infinity.ThreadID `json:"parent,omitempty"`
	Root   infinity.ThreadID `json:"root"`
	// Name is the thread's place in its tree, in spawn order: "root",
	// "root/2", "root/2/1" (trees only).
	Name    string    `json:"name,omitempty"`
	Kind    string    `json:"kind"`
	Agent   string    `json:"agent,omitempty"`
	Model   string    `json:"model,omitempty"`
	Created time.Time `json:"created"`
	Status  string    `json:"status"`
	// Until is when a sleeping thread wakes.
	Until *time.Time `json:"until,omitempty"`
	// Detail says what a waiting thread waits for.
	Detail string `json:"detail,omitempty"`
	Items  int    `json:"items"`
	// Tokens are what its own model responses used.
	Tokens    infinity.Usage `json:"tokens"`
	Children  int            `json:"children"`
	Compacted bool           `json:"compacted,omitempty"`
	// Last is the time of its newest item.
	Last *time.Time `json:"last,omitempty"`
	// Choices are user choices its tools wait for.
	Choices []infinity.PendingChoice `json:"choices,omitempty"`
}

// Tree is a thread and its subtree, children in spawn order.
type Tree struct {
	Thread
	// Subtree adds up the tokens of the thread and every descendant.
	Subtree infinity.Usage `json:"subtree_tokens"`
	Threads []Tree         `json:"threads,omitempty"`
}

// Threads lists root threads, or with all every thread, oldest first, with
// their status.
func (c *Client) Threads(ctx context.Context, all bool) ([]Thread, error) {
	if err := c.needStore(); err != nil {
		return nil, err
	}
	infos, err := c.List(ctx, all)
	if err != nil {
		return nil, err
	}
	out := make([]Thread, 0, len(infos))
	for _, info := range infos {
		t, _, err := c.view(ctx, info)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Trees reads every root's tree, oldest root first.
func (c *Client) Trees(ctx context.Context) ([]Tree, error) {
	if err := c.needStore(); err != nil {
		return nil, err
	}
	roots, err := c.List(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]Tree, 0, len(roots))
	for _, r := range roots {
		t, err := c.tree(ctx, r, "root")
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Tree reads the tree below id (a root or any other thread).
func (c *Client) Tree(ctx context.Context, id infinity.ThreadID) (Tree, error) {
	if err := c.needStore(); err != nil {
		return Tree{}, err
	}
	info, err := c.Conversations.Thread(ctx, id)
	if err != nil {
		return Tree{}, err
	}
	name, err := c.name(ctx, id)
	if err != nil {
		return Tree{}, err
	}
	return c.tree(ctx, info, name)
}

func (c *Client) tree(ctx context.Context, info infinity.ThreadInfo, name string) (Tree, error) {
	t, kids, err := c.view(ctx, info)
	if err != nil {
		return Tree{}, err
	}
	t.Name = name
	out := Tree{Thread: t, Subtree: t.Tokens}
	kinds := kindsOf(kids)
	for i, k := range kids {
		sub, err := c.tree(ctx, k, infinity.ChildName(name, kinds, i))
		if err != nil {
			return Tree{}, err
		}
		out.Subtree = out.Subtree.Add(sub.Subtree)
		out.Threads = append(out.Threads, sub)
	}
	return out, nil
}

// view reads a thread's history and children and says what it does.
func (c *Client) view(ctx context.Context, info infinity.ThreadInfo) (Thread, []infinity.ThreadInfo, error) {
	items, err := c.Conversations.Items(ctx, info.ID, 0, -1)
	if err != nil {
		return Thread{}, nil, err
	}
	kids, err := c.Conversations.Children(ctx, info.ID)
	if err != nil {
		return Thread{}, nil, err
	}
	t := Thread{ID: info.ID, Parent: info.Parent, Root: info.Root, Kind: kindName(info.Kind), Agent: info.Agent, Model: info.Model,
		Created: info.Created, Items: len(items), Tokens: infinity.SumUsage(items), Children: len(kids), Compacted: info.Compacted,
		Choices: actors.PendingChoices(items)}
	if len(items) > 0 {
		at := items[len(items)-1].At
		t.Last = &at
	}
	t.Status, t.Detail, t.Until = status(info, items)
	return t, kids, nil
}

// name is a thread's place in its tree: "root", then the position of each
// descendant among its parent's children (spawn order), from 1.
func (c *Client) name(ctx context.Context, id infinity.ThreadID) (string, error) {
	line, err := c.Conversations.Lineage(ctx, id)
	if err != nil {
		return "", err
	}
	name := "root"
	for i := 1; i < len(line); i++ {
		kids, err := c.Conversations.Children(ctx, line[i-1].ID)
		if err != nil {
			return "", err
		}
		if j := slices.IndexFunc(kids, func(k infinity.ThreadInfo) bool { return k.ID == line[i].ID }); j >= 0 {
			name = infinity.ChildName(name, kindsOf(kids), j)
		} else {
			name += "/?" // not among its parent's children: a store out of step
		}
	}
	return name, nil
}

// kindsOf lists the threads' kinds, for infinity.ChildName.
func kindsOf(threads []infinity.ThreadInfo) []infinity.ThreadKind {
	kinds := make([]infinity.ThreadKind, len(threads))
	for i, t := range threads {
		kinds[i] = t.Kind
	}
	return kinds
}

func kindName(k infinity.ThreadKind) string {
	switch k {
	case infinity.ThreadEvent:
		return "event"
	case infinity.ThreadCompaction:
		return "compaction"
	}
	return "thread"
}

// status says what a thread does, from its info and history.
func status(info infinity.ThreadInfo, items []infinity.Item) (string, string, *time.Time) {
	if info.Closed {
		return StatusClosed, "", nil
	}
	if len(items) == 0 {
		return StatusNew, "its first input is queued", nil
	}
	if ch := actors.PendingChoices(items); len(ch) > 0 {
		return StatusWaiting, "your choice: " + ch[0].Prompt, nil
	}
	call := actors.OpenCall(items)
	if call == nil {
		last := items[len(items)-1]
		if n := len(items); last.Notice == infinity.NoticeBudgetRaised && n > 1 && items[n-2].Notice == infinity.NoticeBudgetSpent {
			return StatusRunning, "going on after a raise of its tree's budget", nil
		}
		for i := len(items) - 1; i > 0 && actors.BudgetNote(&last); i-- {
			last = items[i-1]
		}
		switch {
		case last.Notice == infinity.NoticeBudgetSpent:
			return StatusOverBudget, `the tree's budget is spent: raise it with a message to the root's input queue, {"synthetic":{"type":"budget"},"budget":{...}}`, nil
		case last.Kind == infinity.KindAssistant:
			return StatusWaiting, WaitingForInput, nil
		}
		return StatusRunning, "no answer to its last input yet", nil
	}
	if c := call.Call.Name; c == "sleep" || c == "sleep_until" {
		if until, ok := actors.WakeTime(call); ok {
			return StatusSleeping, "", &until
		}
		return StatusSleeping, "", nil
	}
	return StatusWaiting, actors.WaitingFor(call.Call), nil
}

// settled reports whether a thread has nothing to do until someone acts:
// it is closed, its tree's budget stopped it, or it answered and waits for
// input.
func settled(info infinity.ThreadInfo, items []infinity.Item) bool {
	s, d, _ := status(info, items)
	return s == StatusClosed || s == StatusOverBudget || s == StatusWaiting && d == WaitingForInput
}
