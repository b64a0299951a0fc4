package cloudctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/backoff"
)

// Line events: what a Line without an item says.
const (
	EventSpawned = "spawned" // the thread was created (At: its creation)
	EventClosed  = "closed"  // the thread closed (At: its last item's time)
	EventOAuth   = "oauth"   // a tool asks the user to authorize it (output queue only)
	EventView    = "view"    // a tool's view of the thread (output queue only)
)

// Ends of a followed transcript.
const (
	EndClosed  = "closed"  // the thread (and so its subtree) closed
	EndSettled = "settled" // every thread of the tree is closed or waits for input
)

// Line is one line of a tree's transcript: a history item of one of its
// threads, or an event about one.
type Line struct {
	Thread infinity.ThreadID `json:"thread"`
	// Name is the thread's place in the tree in spawn order ("root/2").
	Name string `json:"name"`
	// Index is the item's position in the thread's own history (-1 for
	// events).
	Index int            `json:"index"`
	Item  *infinity.Item `json:"item,omitempty"`
	Event string         `json:"event,omitempty"`
	At    time.Time      `json:"at"`
	OAuth *OAuthRequest  `json:"oauth,omitempty"`
	View  *View          `json:"view,omitempty"`
}

// OAuthRequest asks the user to open a URL to authorize a tool; the output
// queue is the only place it is shown (it is never stored).
type OAuthRequest struct {
	Tool string `json:"tool"`
	Call string `json:"call"`
	URL  string `json:"url"`
}

// View is a tool's view of a thread (a RAP view update).
type View struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// outputEvent is what the output queue carries: the agent function's
// display events ({"thread_id","text","items","oauth"}) and the receiver's
// view updates ({"thread_id","view_type","content"}).
type outputEvent struct {
	Thread   infinity.ThreadID `json:"thread_id"`
	OAuth    []OAuthRequest    `json:"oauth"`
	ViewType string            `json:"view_type"`
	Content  json.RawMessage   `json:"content"`
}

// LogOptions configure Logs.
type LogOptions struct {
	// Follow keeps printing new lines: until the thread closes, or with
	// UntilSettled until the whole tree is settled.
	Follow       bool
	UntilSettled bool
	// Starting says the thread's first message is on its way: wait for
	// the thread to exist rather than report it unknown.
	Starting bool
	// Poll is the longest wait between two reads of the store while
	// following (default 5 s with an output queue, which wakes the
	// follower as soon as the tree commits, and 1 s without one).
	Poll time.Duration
	// Skew is how long a new item is held back before it is shown
	// (default 250 ms): the allowance for the functions' clocks against
	// the database's.
	Skew time.Duration
}

// Logs writes the transcript of the tree below thread, every line in
// causal order, to emit; with o.Follow it goes on as the tree grows. It
// returns how a followed transcript ended (EndClosed, EndSettled), "" for
// one that was not followed, and ctx.Err() when ctx ends first.
//
// Why the store and not the output queue. The history in the conversation
// store is complete and ordered per thread, gives every thread's place in
// spawn order (ThreadInfo, Children), and is there for every reader. The
// output queue is none of these: a standard queue (no order), best effort
// (a display event lost after its commit is never sent again), and one
// queue for every thread of the deployment, read destructively by whoever
// receives first. So the lines come from the store, and the queue is only
// a wake-up: an event of this tree makes the follower read the store at
// once rather than at its next poll. Its own events are deleted once read;
// other trees' events are made visible again at once for their readers
// (and the follower backs off, rather than receiving them in a loop). What
// the store does not hold, OAuth requests and tool views, is shown from
// the events as they arrive.
//
// Causal order. Each read of the store starts with the database's clock,
// S, then reads every thread of the tree one after the other (each a
// transaction of its own). An item is shown only once its time is before
// S - Skew; newer ones wait for a later read. Anything that caused an item
// X (a child's report before its parent's answer, a spawn before the
// child's first item) was committed before X was even created, so before
// S, and the same read saw it. The lines that may be shown are merged by
// time, each thread's in history order: a child's lines come before its
// parent's line about it, whichever thread was read first.
func (c *Client) Logs(ctx context.Context, thread infinity.ThreadID, o LogOptions, emit func(Line) error) (string, error) {
	if err := c.needStore(); err != nil {
		return "", err
	}
	if o.Skew <= 0 {
		o.Skew = 250 * time.Millisecond
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
		if c.Config.OutputQueueURL != "" && c.SQS != nil {
			o.Poll = 5 * time.Second
		}
	}
	f := &follower{c: c, o: o, top: thread, states: map[infinity.ThreadID]*tstate{}, mine: map[infinity.ThreadID]bool{}, emit: emit}
	return f.run(ctx)
}

// follower reads one tree's transcript.
type follower struct {
	c      *Client
	o      LogOptions
	top    infinity.ThreadID
	states map[infinity.ThreadID]*tstate
	order  []*tstate // discovery order: a parent before its children
	mine   map[infinity.ThreadID]bool
	emit   func(Line) error
	start  time.Time // the first read's clock
}

// tstate is what the follower knows of one thread.
type tstate struct {
	info    infinity.ThreadInfo
	name    string
	items   []infinity.Item // read so far
	pending []Line          // read, not shown yet, in history order
	closed  bool            // its closed line is queued: no more items
	done    bool            // closed, and its children read since: nothing more to read
}

func (f *follower) run(ctx context.Context) (string, error) {
	for first := true; ; first = false {
		now, found, err := f.read(ctx)
		if err != nil {
			return "", err
		}
		if first {
			f.start = now
			if !found && !f.o.Starting {
				return "", fmt.Errorf("thread %s: %w", f.top, infinity.ErrNotFound)
			}
		}
		cutoff := now.Add(-f.o.Skew)
		if !f.o.Follow && cutoff.After(f.start) {
			cutoff = f.start // the transcript as it was when the command started
		}
		if err := f.flush(cutoff); err != nil {
			return "", err
		}
		held := f.held()
		switch {
		case !f.o.Follow:
			if held.IsZero() || !held.Before(f.start) {
				return "", nil
			}
		case held.IsZero() && f.o.UntilSettled && found && f.allSettled():
			return EndSettled, nil
		case held.IsZero() && found && f.allClosed():
			return EndClosed, nil
		}
		if !held.IsZero() {
			// Lines wait for the clock to pass them: read again then.
			if err := backoff.Sleep(ctx, f.o.Skew+10*time.Millisecond); err != nil {
				return "", err
			}
			continue
		}
		if err := f.wait(ctx); err != nil {
			return "", err
		}
	}
}

// read reads the store once: the clock, then every thread of the tree
// that may still change, a parent before its children. found is false
// while the thread does not exist (a start whose first message is still
// queued).
func (f *follower) read(ctx context.Context) (now time.Time, found bool, err error) {
	conv := f.c.Conversations
	if now, err = f.c.Now(ctx); err != nil {
		return now, false, err
	}
	top := f.states[f.top]
	if top == nil || !top.closed {
		info, err := conv.Thread(ctx, f.top)
		if errors.Is(err, infinity.ErrNotFound) {
			return now, false, nil
		}
		if err != nil {
			return now, false, err
		}
		if top == nil {
			name, err := f.c.name(ctx, f.top)
			if err != nil {
				return now, false, err
			}
			top = f.add(info, name)
			top.pending = append(top.pending, Line{Thread: info.ID, Name: name, Index: -1, Event: EventSpawned, At: info.Created})
		}
		top.info = info
	}
	for i := 0; i < len(f.order); i++ {
		s := f.order[i]
		if s.done {
			continue
		}
		// A thread's info (from its parent's Children, or Thread for the
		// top) was read before its items: if it was closed then, the items
		// read now are all it will ever have (a close commits with them).
		if !s.closed {
			closed := s.info.Closed
			items, err := conv.Items(ctx, s.info.ID, len(s.items), -1)
			if err != nil {
				return now, true, err
			}
			for j := range items {
				it := &items[j]
				s.pending = append(s.pending, Line{Thread: s.info.ID, Name: s.name, Index: len(s.items) + j, Item: it, At: it.At})
			}
			s.items = append(s.items, items...)
			if closed {
				at := s.info.Created
				if n := len(s.items); n > 0 {
					at = s.items[n-1].At
				}
				s.pending = append(s.pending, Line{Thread: s.info.ID, Name: s.name, Index: -1, Event: EventClosed, At: at})
				s.closed = true
			}
		}
		kids, err := conv.Children(ctx, s.info.ID)
		if err != nil {
			return now, true, err
		}
		kinds := kindsOf(kids)
		for j, k := range kids {
			if ks := f.states[k.ID]; ks != nil {
				if !ks.closed {
					ks.info = k
				}
				continue
			}
			ks := f.add(k, infinity.ChildName(s.name, kinds, j))
			ks.pending = append(ks.pending, Line{Thread: k.ID, Name: ks.name, Index: -1, Event: EventSpawned, At: k.Created})
		}
		// Children read after the closure was seen are all there will be.
		s.done = s.closed
	}
	return now, true, nil
}

func (f *follower) add(info infinity.ThreadInfo, name string) *tstate {
	s := &tstate{info: info, name: name}
	f.states[info.ID] = s
	f.order = append(f.order, s)
	f.mine[info.ID] = true
	return s
}

// flush shows the lines older than cutoff, merged by time, each thread's
// in history order (ties: the thread found first).
func (f *follower) flush(cutoff time.Time) error {
	for {
		var next *tstate
		for _, s := range f.order {
			if len(s.pending) == 0 || !s.pending[0].At.Before(cutoff) {
				continue
			}
			if next == nil || s.pending[0].At.Before(next.pending[0].At) {
				next = s
			}
		}
		if next == nil {
			return nil
		}
		l := next.pending[0]
		next.pending = next.pending[1:]
		if err := f.emit(l); err != nil {
			return err
		}
	}
}

// held returns the time of the oldest line not shown yet (zero: none).
func (f *follower) held() time.Time {
	var t time.Time
	for _, s := range f.order {
		if len(s.pending) > 0 && (t.IsZero() || s.pending[0].At.Before(t)) {
			t = s.pending[0].At
		}
	}
	return t
}

func (f *follower) allSettled() bool {
	for _, s := range f.order {
		if !settled(s.info, s.items) {
			return false
		}
	}
	return len(f.order) > 0
}

func (f *follower) allClosed() bool {
	for _, s := range f.order {
		if !s.closed {
			return false
		}
	}
	return len(f.order) > 0
}

// wait returns when the output queue brings an event of this tree, or
// after o.Poll. Without an output queue it sleeps.
func (f *follower) wait(ctx context.Context) error {
	q := f.c.Config.OutputQueueURL
	if q == "" || f.c.SQS == nil {
		return backoff.Sleep(ctx, f.o.Poll)
	}
	deadline := time.Now().Add(f.o.Poll)
	secs := int32(f.o.Poll / time.Second)
	secs = min(max(secs, 1), 20)
	out, err := f.c.SQS.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: secs, VisibilityTimeout: 30,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("output queue: %w", err)
	}
	var own []sqstypes.DeleteMessageBatchRequestEntry
	var other []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	for i, m := range out.Messages {
		id := aws.String(strconv.Itoa(i))
		var ev outputEvent
		if json.Unmarshal([]byte(aws.ToString(m.Body)), &ev) != nil || !f.ours(ctx, ev.Thread) {
			other = append(other, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: id, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
			continue
		}
		own = append(own, sqstypes.DeleteMessageBatchRequestEntry{Id: id, ReceiptHandle: m.ReceiptHandle})
		if err := f.live(ev); err != nil {
			return err
		}
	}
	// Best effort both: an event left behind comes back after its
	// visibility timeout, and the store is read anyway.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if len(own) > 0 {
		f.c.SQS.DeleteMessageBatch(bg, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: own})
	}
	if len(other) > 0 {
		f.c.SQS.ChangeMessageVisibilityBatch(bg, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q), Entries: other})
		if len(own) == 0 {
			// Only other trees' events: do not take them again at once.
			return backoff.Sleep(ctx, min(time.Until(deadline), time.Second))
		}
	}
	return nil
}

// ours reports whether thread is in the followed tree (asking the store
// about threads it has not seen yet: a child spawned since the last read).
func (f *follower) ours(ctx context.Context, thread infinity.ThreadID) bool {
	if thread == "" {
		return false
	}
	if m, ok := f.mine[thread]; ok {
		return m
	}
	line, err := f.c.Conversations.Lineage(ctx, thread)
	if err != nil {
		return false // unknown yet, or gone: not ours to delete
	}
	m := false
	for _, t := range line {
		m = m || t.ID == f.top
	}
	f.mine[thread] = m
	return m
}

// live shows what an output event carries beyond the store's history.
func (f *follower) live(ev outputEvent) error {
	name := string(ev.Thread)
	if s := f.states[ev.Thread]; s != nil {
		name = s.name
	}
	now := time.Now()
	for i := range ev.OAuth {
		if err := f.emit(Line{Thread: ev.Thread, Name: name, Index: -1, Event: EventOAuth, At: now, OAuth: &ev.OAuth[i]}); err != nil {
			return err
		}
	}
	if ev.ViewType != "" {
		return f.emit(Line{Thread: ev.Thread, Name: name, Index: -1, Event: EventView, At: now, View: &View{Type: ev.ViewType, Content: ev.Content}})
	}
	return nil
}
