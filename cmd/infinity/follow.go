package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// injectedTool is the synthetic call that brings reports, parent messages
// and late results into a thread's history (actors' injectedTool).
const injectedTool = "receive_event__injected"

// followPoll is how often a followed tree is read.
const followPoll = 200 * time.Millisecond

// followTree prints the transcript of every thread of root's tree until
// every thread in it is settled; a failed thread makes it errThreadFailed.
//
// Each round reads the tree, then each thread's new items, a parent's
// before its children's. Children are named by their place among their
// parent's children, which the daemon lists in the order they were
// spawned (root/1 is the child of the first spawn_thread call), whenever
// their first lines arrive. A thread's lines print in their order. A
// parent's line that brings in a child's report (the injected call and
// result, with the results its arrival cut short just before them) prints
// after that child's lines of the same round: they were read after the
// parent's, so they hold all the child did before it reported. A report
// from a child the tree does not show yet holds its parent's lines, and
// the parent's subtree's, for one round; so do a child's first lines while
// a sibling spawned before it has printed none (children spawned together
// start in their order).
func followTree(ctx context.Context, c *daemon.Client, root infinity.ThreadID, w io.Writer, st style) error {
	tr := newTranscript(w)
	tr.st = st
	f := &follower{tr: tr, names: map[infinity.ThreadID]string{root: "root"}, next: map[infinity.ThreadID]int{},
		queue: map[infinity.ThreadID][]daemon.ItemLine{}, held: map[infinity.ThreadID]bool{}, started: map[infinity.ThreadID]bool{}}
	for {
		t, err := c.Tree(ctx, root)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return followError(err)
		}
		f.nodes = map[infinity.ThreadID]daemon.Tree{}
		f.index(t)
		busy := false
		err = f.read(ctx, c, t, &busy)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return followError(err)
		}
		f.flush(t, !busy, map[infinity.ThreadID]bool{})
		if !busy {
			fmt.Fprintf(w, "-- %s is %s\n", root, st.paint(statusColor(t.Status), statusText(t.ThreadView)))
			if v, ok := firstFailed(t); ok {
				return fmt.Errorf("run: thread %s (%s) failed: %s: %w", v.ID, f.names[v.ID], v.Detail, errThreadFailed)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
	}
}

// follower is followTree's state between rounds.
type follower struct {
	tr    *transcript
	names map[infinity.ThreadID]string // "root", "root/2", "root/2/1"
	next  map[infinity.ThreadID]int    // the position of the next item to read
	// queue holds each thread's lines read and not printed yet.
	queue map[infinity.ThreadID][]daemon.ItemLine
	// held marks a thread whose lines wait a round: for a child the tree
	// did not show yet, or for an elder sibling's first lines.
	held map[infinity.ThreadID]bool
	// started marks the threads with lines printed.
	started map[infinity.ThreadID]bool
	nodes   map[infinity.ThreadID]daemon.Tree // this round's tree, by id
}

// index names the tree's new threads and indexes this round's tree.
func (f *follower) index(t daemon.Tree) {
	f.nodes[t.ID] = t
	kinds := make([]infinity.ThreadKind, len(t.Threads))
	for i, k := range t.Threads {
		kinds[i], _ = infinity.ParseThreadKind(k.Kind) // a kind this CLI does not know counts as a spawn
	}
	for i, k := range t.Threads {
		if _, ok := f.names[k.ID]; !ok {
			f.names[k.ID] = infinity.ChildName(f.names[t.ID], kinds, i)
		}
		f.index(k)
	}
}

// read queues the new lines of every thread of t, a parent's read before
// its children's; busy is set when a thread is not settled.
func (f *follower) read(ctx context.Context, c *daemon.Client, t daemon.Tree, busy *bool) error {
	if !settled(t.ThreadView) {
		*busy = true
	}
	err := c.Items(ctx, t.ID, f.next[t.ID], false, func(l daemon.ItemLine) error {
		f.tr.note(l.Item)
		f.queue[t.ID] = append(f.queue[t.ID], l)
		f.next[t.ID] = l.Index + 1
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range t.Threads {
		if err := f.read(ctx, c, k, busy); err != nil {
			return err
		}
	}
	return nil
}

// flush prints t's queued lines, then its children's (see followTree);
// done marks the threads flushed this round. It reports whether some of
// t's lines wait for the next round. In the last round (final) none waits.
func (f *follower) flush(t daemon.Tree, final bool, done map[infinity.ThreadID]bool) (waits bool) {
	if done[t.ID] {
		return len(f.queue[t.ID]) > 0
	}
	done[t.ID] = true
	q := f.queue[t.ID]
	if !final && len(q) > 0 && !f.started[t.ID] && !f.held[t.ID] && f.elderWaits(t) {
		f.held[t.ID] = true
		return true
	}
	for i := range q {
		if child := reportFrom(q[i:]); child != "" {
			k, known := f.nodes[child]
			childWaits := known && f.flush(k, final, done)
			if !final && (childWaits || !known && !f.held[t.ID]) {
				f.queue[t.ID], f.held[t.ID] = q[i:], true
				return true
			}
		}
		f.held[t.ID], f.started[t.ID] = false, true
		f.tr.line(f.names[t.ID], q[i])
	}
	f.queue[t.ID] = nil
	for _, k := range t.Threads {
		f.flush(k, final, done)
	}
	return false
}

// elderWaits reports whether a sibling spawned before t has printed
// nothing yet.
func (f *follower) elderWaits(t daemon.Tree) bool {
	for _, s := range f.nodes[t.Parent].Threads {
		if s.ID == t.ID {
			return false
		}
		if !f.started[s.ID] {
			return true
		}
	}
	return false
}

// reportFrom is the thread whose report (or other message) the first of
// lines brings in: an injected call naming a child, or a result that call
// cut short (an interrupted sleep, a pending call) just before it; ""
// when it brings in none.
func reportFrom(lines []daemon.ItemLine) infinity.ThreadID {
	for _, l := range lines {
		it := l.Item
		switch {
		case it == nil:
			return ""
		case it.Kind == infinity.KindToolResult && it.Result != nil && it.Result.State != infinity.ResultFinal:
			continue
		case it.Kind == infinity.KindToolCall && it.Call != nil && it.Call.Name == injectedTool:
			var a struct {
				Child infinity.ThreadID `json:"child_thread_id"`
				Event infinity.ThreadID `json:"event_thread_id"`
			}
			_ = json.Unmarshal(it.Call.Args, &a)
			return cmp.Or(a.Child, a.Event)
		}
		return ""
	}
	return ""
}

// errStop ends an item stream early.
var errStop = errors.New("stop")

// historyLookup names the calls a thread's transcript from position from
// does not show (transcript.lookup): those of its own items before from,
// then those of its ancestors' items, nearest first. Each is read when a
// call is first missing, and once.
func historyLookup(ctx context.Context, c *daemon.Client, id infinity.ThreadID, from int) func(string) (string, bool) {
	names := map[string]string{}
	add := func(l daemon.ItemLine) {
		if it := l.Item; it != nil && it.Kind == infinity.KindToolCall && it.Call != nil {
			if _, ok := names[it.Call.ID]; !ok {
				names[it.Call.ID] = it.Call.Name
			}
		}
	}
	own, cur := from > 0, id
	return func(call string) (string, bool) {
		for {
			if n, ok := names[call]; ok {
				return n, true
			}
			switch {
			case own:
				own = false
				_ = c.Items(ctx, id, 0, false, func(l daemon.ItemLine) error {
					if l.Item != nil && l.Index >= from {
						return errStop
					}
					add(l)
					return nil
				})
			case cur != "":
				v, err := c.Thread(ctx, cur)
				if cur = v.Parent; err != nil {
					cur = ""
				}
				if cur != "" {
					_ = c.Items(ctx, cur, 0, false, func(l daemon.ItemLine) error { add(l); return nil })
				}
			default:
				return "", false
			}
		}
	}
}
