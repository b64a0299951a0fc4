package actors

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// Compaction keeps a thread inside its model's context window. After a
// slice whose last model call used more than three quarters of the window,
// the thread spawns a compaction thread (ThreadCompaction) at a safe point
// of its history: before the model response that made its first still-open
// call, or its end. The compaction thread inherits the history up to there,
// asks the model for a summary with no tools, closes itself and sends the
// summary back (compaction_complete, with Covers). The thread commits it
// as a Summary; from then on its loads start with the summary and go on
// with its items from Covers, and so do children spawned later. Children
// spawned earlier keep their exact history (ConversationStore.Summary).
// Summarised calls that may still be answered (asynchronous calls answered
// with a placeholder, active subscriptions) travel with the summary, so
// their late results and events still reach the thread. One compaction
// runs at a time per thread; a compaction message (SyntheticCompaction)
// starts one whatever the usage.
const compactNum, compactDen = 3, 4

// compactionSystem is the system prompt of a compaction thread.
const compactionSystem = "You write summaries that let a long conversation between a user, an AI agent and its tools continue without its earlier messages. You never call tools."

// compactionTask is the compaction thread's instruction.
const compactionTask = "Compact the conversation above into a summary the agent can continue from without the earlier messages. Keep: the task and its goals; decisions and why they were made; facts and results learned, with exact names, ids, numbers, paths and URLs; what was done; what is still in progress (tool calls still running, child threads at work, subscriptions) and the next steps. Write plain prose and lists. Your reply is the summary, as it is."

// summaryPrefix introduces a summary to the model.
const summaryPrefix = "[Summary of the earlier conversation, which was compacted]\n"

// indexSummary records the summarised calls that may still be answered.
func (r *run) indexSummary() {
	s := r.hist.Summary
	if s == nil {
		return
	}
	own := r.hist.SummaryOf == r.self.ID
	for i := range s.Calls {
		c := s.Calls[i]
		call := c.Call
		r.calls[call.ID] = &callState{call: &call, own: own, answered: true, state: c.State, subscribed: c.Subscription}
	}
}

// maybeCompact starts a compaction thread when the slice's last model call
// came near the context window, or when asked to.
func (r *run) maybeCompact(ctx context.Context) error {
	if r.self.Kind == infinity.ThreadCompaction || r.closing || r.commit.Summary != nil || r.closed() != "" {
		return nil
	}
	if !r.compactNow {
		w := r.model.info.ContextWindow
		used := r.lastUsage.Input + r.lastUsage.Output
		if w <= 0 || r.completions == 0 || used*compactDen <= w*compactNum {
			return nil
		}
	}
	covers := r.safePoint()
	if s := r.hist.Summary; s != nil && r.hist.SummaryOf == r.self.ID && covers <= s.Position {
		// Nothing new to summarise beyond the summary in use.
		return nil
	}
	kids, err := r.e.cfg.Conversations.Children(ctx, r.self.ID)
	if err != nil {
		return fmt.Errorf("slice %s: compaction: %w", r.self.ID, err)
	}
	n := 0
	for _, k := range kids {
		if k.Kind == infinity.ThreadCompaction {
			if !k.Closed {
				return nil // one at a time
			}
			n++
		}
	}
	k := infinity.ThreadInfo{
		ID:         infinity.ThreadID(infinity.DeriveID("k", string(r.self.ID), strconv.Itoa(covers), strconv.Itoa(n))),
		Parent:     r.self.ID,
		Root:       r.hist.Lineage[0].ID,
		SpawnOrder: covers,
		Kind:       infinity.ThreadCompaction,
		Agent:      r.self.Agent,
		Model:      r.self.Model,
		Created:    r.e.cfg.Clock.Now(),
	}
	r.commit.Create = append(r.commit.Create, k)
	r.send("compact-"+string(k.ID), infinity.InputMessage{GroupID: k.ID, Content: infinity.TextContent(compactionTask)}, time.Time{})
	r.e.log.Info("compacting", "thread", r.self.ID, "compaction", k.ID, "covers", covers, "tokens", r.lastUsage.Input+r.lastUsage.Output, "window", r.model.info.ContextWindow)
	return nil
}

// safePoint returns the own position a compaction may cover up to: the
// start of the model response with the first still-open call, or the
// thread's length when no call is open.
func (r *run) safePoint() int {
	h := r.hist
	first := -1
	for i := h.Inherited; i < len(r.items) && first < 0; i++ {
		if it := &r.items[i]; it.Kind == infinity.KindToolCall && slices.Contains(r.open, it.Call.ID) {
			first = i
		}
	}
	if first < 0 {
		return r.ownLen()
	}
	for first > h.Inherited && (r.items[first-1].Kind == infinity.KindToolCall || r.items[first-1].Kind == infinity.KindAssistant) {
		first--
	}
	return h.Start + first - h.Inherited
}

// finishCompaction closes the compaction thread and sends its summary to
// the thread it compacts ("" when the model failed: nothing is replaced).
func (r *run) finishCompaction(text string) {
	if r.closing {
		return
	}
	r.closing = true
	r.commit.Close = append(r.commit.Close, r.self.ID)
	r.send(infinity.DeriveID("cmp_", string(r.self.ID)), infinity.InputMessage{
		GroupID:   r.self.Parent,
		Content:   infinity.TextContent(strings.TrimSpace(text)),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompactionComplete, ChildThreadID: r.self.ID, Covers: r.self.SpawnOrder},
	}, time.Time{})
}

// fromCompaction reports whether a compaction_complete message comes from
// one of this thread's compaction threads, and covers what it inherited:
// nothing else may replace a thread's history.
func (r *run) fromCompaction(ctx context.Context, s *infinity.Synthetic) bool {
	k, err := r.e.cfg.Conversations.Thread(ctx, s.ChildThreadID)
	if err != nil || k.Kind != infinity.ThreadCompaction || k.Parent != r.self.ID || k.SpawnOrder != s.Covers {
		r.e.log.Warn("compaction summary not from a compaction thread of this thread; dropped", "thread", r.self.ID, "from", s.ChildThreadID, "err", err)
		return false
	}
	return true
}

// applySummary commits a compaction thread's summary, and switches the rest
// of the slice to the compacted history.
func (r *run) applySummary(m infinity.InputMessage) {
	s := m.Synthetic
	text, covers := strings.TrimSpace(m.Content.Text), s.Covers
	h := &r.hist
	var why string
	switch {
	case text == "":
		why = "the compaction produced no summary"
	case r.commit.Summary != nil:
		why = "a summary was applied earlier in this slice"
	case covers < h.Start || covers > r.commit.Expected:
		why = fmt.Sprintf("it covers %d items; the history in use starts at %d and has %d", covers, h.Start, r.commit.Expected)
	case h.Summary != nil && h.SummaryOf == r.self.ID && covers <= h.Summary.Covers:
		why = "a summary covering as much is in use"
	}
	if why != "" {
		r.e.log.Warn("compaction summary not applied; history kept", "thread", r.self.ID, "compaction", s.ChildThreadID, "why", why)
		return
	}
	tailAt := h.Inherited + covers - h.Start // index in r.items of own position covers
	tail := make(map[string]bool)
	for _, it := range r.items[tailAt:] {
		if it.Kind == infinity.KindToolCall {
			tail[it.Call.ID] = true
		}
	}
	var carried []infinity.SummaryCall
	for id, cs := range r.calls {
		if cs.own && !tail[id] && (cs.subscribed || cs.answered && cs.state == infinity.ResultPending) {
			carried = append(carried, infinity.SummaryCall{Call: *cs.call, State: cs.state, Subscription: cs.subscribed})
		}
	}
	slices.SortFunc(carried, func(a, b infinity.SummaryCall) int { return strings.Compare(a.Call.ID, b.Call.ID) })
	sum := &infinity.Summary{Position: r.commit.Expected, Covers: covers, Text: text, Calls: carried, Thread: s.ChildThreadID, At: r.e.cfg.Clock.Now()}
	r.commit.Summary = sum
	items := make([]infinity.Item, 0, 1+len(r.items)-tailAt+3)
	items = append(append(items, infinity.SummaryItem(r.self.ID, sum)), r.items[tailAt:]...)
	r.items = items
	h.Inherited, h.Start, h.Summary, h.SummaryOf = 1, covers, sum, r.self.ID
}

// summaryView shows a history's leading summary to the model as user text
// and leaves out results whose calls the summary replaced. items is not
// modified.
func summaryView(items []infinity.Item) []infinity.Item {
	if len(items) == 0 || items[0].Kind != infinity.KindSummary {
		return items
	}
	calls := make(map[string]bool)
	for _, it := range items {
		if it.Kind == infinity.KindToolCall {
			calls[it.Call.ID] = true
		}
	}
	out := make([]infinity.Item, 0, len(items))
	s := items[0]
	s.Kind, s.Text = infinity.KindUser, summaryPrefix+s.Text
	out = append(out, s)
	for _, it := range items[1:] {
		if it.Kind == infinity.KindToolResult && !calls[it.Result.CallID] {
			continue
		}
		out = append(out, it)
	}
	return out
}
