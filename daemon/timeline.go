package daemon

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	infinity "github.com/infinity-runtime/infinity"
)

// Timeline is GET /v1/threads/{id}/timeline: one lane per thread of the
// tree under {id}, in tree order, showing when each thread ran and what it
// waited for, with its model and tool calls as marks. It is read from the
// threads' histories (each item's time), so it survives restarts: a span
// ends when the next item came, and the state of a gap is what the thread
// was waiting on at its start.
type Timeline struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Lanes []Lane    `json:"lanes"`
	// Truncated says the tree had more threads than one timeline shows
	// (maxLanes), or a lane more marks than maxMarks (its oldest are left
	// out).
	Truncated bool `json:"truncated,omitempty"`
}

// Lane is one thread's line.
type Lane struct {
	Thread infinity.ThreadID `json:"thread"`
	Parent infinity.ThreadID `json:"parent,omitempty"`
	Agent  string            `json:"agent"`
	Depth  int               `json:"depth"`
	Status string            `json:"status"`
	Spans  []Span            `json:"spans"`
	Marks  []Mark            `json:"marks"`
}

// Span states.
const (
	SpanRunning  = "running"  // a slice ran up to the model's answer
	SpanSleeping = "sleeping" // a sleep or sleep_until call
	SpanInput    = "input"    // waiting for user input
	SpanEvent    = "event"    // sleep_until_event_or_input
	SpanChild    = "child"    // waiting for a child's report
	SpanTool     = "tool"     // waiting for a tool's result (a synchronous tool's run too)
)

// Span is a stretch of time in one state.
type Span struct {
	State string    `json:"state"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Open says the span lasts until now (the thread is still in it).
	Open bool `json:"open,omitempty"`
}

// Mark kinds.
const (
	MarkInput  = "input"  // user text
	MarkModel  = "model"  // model text
	MarkTool   = "tool"   // a tool call
	MarkResult = "result" // a tool result, report or event
	MarkError  = "error"  // a tool result that is an error
)

// Mark is one item.
type Mark struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Label  string    `json:"label"`
	Detail string    `json:"detail,omitempty"`
	// Index is the item's position in the thread's history.
	Index int `json:"index"`
}

// Timeline bounds.
const (
	maxLanes   = 500
	maxMarks   = 2000
	markDetail = 240
)

func (d *Daemon) getTimeline(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	sn, err := d.snapshot(r.Context())
	if err != nil {
		return err
	}
	tl := Timeline{End: time.Now().UTC()}
	if err := d.addLanes(r.Context(), &tl, id, 0, sn); err != nil {
		return err
	}
	if len(tl.Lanes) > 0 {
		tl.Start = tl.Lanes[0].Spans[0].From
		for _, l := range tl.Lanes {
			if s := l.Spans[0].From; s.Before(tl.Start) {
				tl.Start = s
			}
			if e := l.Spans[len(l.Spans)-1].To; e.After(tl.End) {
				tl.End = e
			}
		}
	}
	writeJSON(w, http.StatusOK, tl)
	return nil
}

func (d *Daemon) addLanes(ctx context.Context, tl *Timeline, id infinity.ThreadID, depth int, sn timers) error {
	if len(tl.Lanes) >= maxLanes {
		tl.Truncated = true
		return nil
	}
	conv := d.store.Conversations()
	info, err := conv.Thread(ctx, id)
	if err != nil {
		return err
	}
	v, err := d.view(ctx, info, sn)
	if err != nil {
		return err
	}
	items, err := conv.Items(ctx, id, 0, -1)
	if err != nil {
		return err
	}
	lane, cut := laneOf(info, items, v.Status, tl.End)
	lane.Depth = depth
	tl.Truncated = tl.Truncated || cut
	tl.Lanes = append(tl.Lanes, lane)
	kids, err := conv.Children(ctx, id)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := d.addLanes(ctx, tl, k.ID, depth+1, sn); err != nil {
			return err
		}
	}
	return nil
}

// laneOf reads a thread's lane from its history; status is its current
// status (running, closed, ...), now ends an open span. cut says marks were
// left out.
func laneOf(info infinity.ThreadInfo, items []infinity.Item, status string, now time.Time) (Lane, bool) {
	l := Lane{Thread: info.ID, Parent: info.Parent, Agent: info.Agent, Status: status, Spans: []Span{}, Marks: []Mark{}}
	if l.Agent == "" {
		l.Agent = "demo"
	}
	names := map[string]string{} // call id → tool name
	var open []infinity.ToolCall // calls without a final result, oldest first
	waiting := func() string {
		for i := len(open) - 1; i >= 0; i-- {
			switch open[i].Name {
			case "sleep", "sleep_until":
				return SpanSleeping
			case "sleep_until_event_or_input":
				return SpanEvent
			case "spawn_thread":
				return SpanChild
			}
			return SpanTool
		}
		return SpanInput
	}
	add := func(state string, from, to time.Time) {
		if n := len(l.Spans); n > 0 && l.Spans[n-1].State == state {
			l.Spans[n-1].To = to
			return
		}
		l.Spans = append(l.Spans, Span{State: state, From: from, To: to})
	}
	last := info.Created
	for i, it := range items {
		at := it.At
		if at.Before(last) {
			at = last // clocks are not trusted to be monotonic across restarts
		}
		state := SpanRunning // what the gap before a model's item was
		if it.Kind == infinity.KindUser || it.Kind == infinity.KindToolResult {
			state = waiting()
			if i == 0 {
				state = SpanRunning
			}
		}
		add(state, last, at)
		last = at
		m := Mark{At: at, Index: i}
		switch it.Kind {
		case infinity.KindUser:
			m.Kind, m.Label, m.Detail = MarkInput, "input", clip(it.Text)
		case infinity.KindAssistant:
			m.Kind, m.Label, m.Detail = MarkModel, "model", clip(it.Text)
		case infinity.KindToolCall:
			names[it.Call.ID] = it.Call.Name
			open = append(open, *it.Call)
			m.Kind, m.Label, m.Detail = MarkTool, it.Call.Name, clip(string(it.Call.Args))
		case infinity.KindToolResult:
			if it.Result.State != infinity.ResultPending { // answered: no longer waited on
				open = slices.DeleteFunc(open, func(c infinity.ToolCall) bool { return c.ID == it.Result.CallID })
			}
			m.Kind, m.Label, m.Detail = MarkResult, names[it.Result.CallID], clip(it.Result.Text())
			if m.Label == "" {
				m.Label = "result"
			}
			if it.Result.IsError {
				m.Kind = MarkError
			}
		default:
			continue
		}
		if it.Usage != nil {
			model := it.Model
			if model == "" {
				model = "model"
			}
			m.Detail = fmt.Sprintf("%s · %s: %d in, %d out", m.Detail, model, it.Usage.Input, it.Usage.Output)
		}
		l.Marks = append(l.Marks, m)
	}
	switch {
	case status == StatusClosed:
		if len(l.Spans) == 0 {
			add(SpanRunning, last, last)
		}
	case status == StatusRunning:
		add(SpanRunning, last, now)
		l.Spans[len(l.Spans)-1].Open = true
	default:
		state := waiting()
		if status == StatusSleeping {
			state = SpanSleeping
		}
		add(state, last, now)
		l.Spans[len(l.Spans)-1].Open = true
	}
	cut := false
	if len(l.Marks) > maxMarks {
		l.Marks, cut = l.Marks[len(l.Marks)-maxMarks:], true
	}
	return l, cut
}

// clip shortens text for a mark's detail.
func clip(s string) string {
	if len(s) <= markDetail {
		return s
	}
	cut := markDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
