package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// Forwarder sends a message body to a queue: the output queue, for
// display events. The SQS adapter provides one.
type Forwarder interface {
	Forward(ctx context.Context, body string) error
}

// DeadLetterer moves a record that cannot succeed to a dead-letter queue,
// saying why. The SQS adapter provides one; on a FIFO dead-letter queue the
// record keeps its message group.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, r DeadRecord) error
}

// DeadRecord is a record on its way to the dead-letter queue, with why.
// The SQS adapter sends Body unchanged, with the rest as the message
// attributes named Attr*.
type DeadRecord struct {
	Body string
	// Thread is the record's message group ("" on the relay queue).
	Thread infinity.ThreadID
	// MessageID is the record's SQS message id, ReceiveCount its
	// ApproximateReceiveCount.
	MessageID    string
	ReceiveCount string
	Err          error
}

// The message attributes a dead-lettered record carries.
const (
	AttrError        = "infinity.error"
	AttrThread       = "infinity.thread"
	AttrMessageID    = "infinity.message_id"
	AttrReceiveCount = "infinity.receive_count"
)

// Attributes returns the record's message attributes: why (cut to 1,000
// bytes, with the characters SQS refuses in a value replaced), which
// thread, which message, which receive.
func (r DeadRecord) Attributes() map[string]string {
	why := "unknown"
	if r.Err != nil {
		why = r.Err.Error()
	}
	if len(why) > 1000 {
		why = strings.ToValidUTF8(why[:1000], "") + "…"
	}
	why = strings.Map(func(c rune) rune {
		// SQS takes #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
		if c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) || c >= 0x10000 {
			return c
		}
		return '?'
	}, why)
	a := map[string]string{AttrError: why}
	for k, v := range map[string]string{AttrThread: string(r.Thread), AttrMessageID: r.MessageID, AttrReceiveCount: r.ReceiveCount} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

func deadRecord(r events.SQSMessage, why error) DeadRecord {
	return DeadRecord{Body: r.Body, Thread: infinity.ThreadID(r.Attributes["MessageGroupId"]), MessageID: r.MessageId,
		ReceiveCount: r.Attributes["ApproximateReceiveCount"], Err: why}
}

// AgentOptions configure the agent handler.
type AgentOptions struct {
	// Runtime runs the slices; its sender must be the cloud sender (SQS),
	// since nothing stays in this process between invocations.
	Runtime *actors.Runtime
	// Conversations is the runtime's conversation store; the handler
	// creates root threads in it for user text addressed to an unknown
	// thread, as the reference runtime's queue recipe expects.
	Conversations infinity.ConversationStore
	// Agent names the agent configuration new root threads run with (""
	// is the runtime's default).
	Agent string
	// Budget, when set, is the budget of a root whose first message
	// brings none (the agent file's budget block).
	Budget *infinity.Budget
	// DeadLetter, when set, receives records that can never succeed
	// (undecodable, or refused by the engine), so they neither block their
	// message group nor vanish, and records whose slice failed on their
	// last receive (MaxReceiveCount), with the failure attached. Without it
	// such records are reported failed and SQS's redrive policy moves them,
	// without a reason.
	DeadLetter DeadLetterer
	// MaxReceiveCount must be the input queue's redrive maxReceiveCount
	// (the CDK construct sets both from one prop): a failed slice's record
	// on that receive is dead-lettered here. 0 leaves every failed record
	// to the redrive policy.
	MaxReceiveCount int
	// Output, when set, receives what each slice committed, as display
	// events (see OutputEvent).
	Output Forwarder
	// Parallel bounds how many message groups run at once; default 16.
	Parallel int
	Clock    infinity.Clock
	Logger   *slog.Logger
}

// Agent is the handler of the agent function: it takes an SQS batch from
// the FIFO input queue, runs one slice per message group (thread) and
// reports the records that must come back.
type Agent struct {
	o AgentOptions

	mu     sync.Mutex
	events map[infinity.ThreadID][]actors.Event
}

// NewAgent checks the options and returns the handler. Pass its Observe
// method as the runtime's Config.Observer to get display events.
func NewAgent(o AgentOptions) (*Agent, error) {
	if o.Runtime == nil || o.Conversations == nil {
		return nil, fmt.Errorf("lambda: the agent handler needs a runtime and its conversation store: %w", infinity.ErrInvalid)
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Clock == nil {
		o.Clock = infinity.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Agent{o: o, events: map[infinity.ThreadID][]actors.Event{}}, nil
}

// Observe collects committed items and OAuth requests for the output
// queue; it is the runtime's Config.Observer.
func (a *Agent) Observe(ev actors.Event) {
	if ev.Kind != actors.EventItem && ev.Kind != actors.EventOAuth {
		return
	}
	a.mu.Lock()
	a.events[ev.Thread] = append(a.events[ev.Thread], ev)
	a.mu.Unlock()
}

// notifyMargin is kept free before the invocation's deadline when waiting
// for tool-server notifications.
const notifyMargin = 2 * time.Second

// group is one message group's records in arrival order.
type group struct {
	id      infinity.ThreadID
	records []events.SQSMessage
	msgs    []infinity.InputMessage
}

// Handle runs the batch. A record fails (and comes back after the
// visibility timeout) when its thread's slice failed; every later record of
// the same message group fails with it, so per-thread order holds. Records
// of other groups are unaffected. The error return is reserved for
// failures that concern the whole invocation.
func (a *Agent) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	groups, order := map[infinity.ThreadID]*group{}, []*group(nil)
	failed := map[string]bool{}
	for _, r := range ev.Records {
		msg, err := DecodeRecord(r)
		if err != nil {
			if a.deadLetter(ctx, r, err) {
				continue
			}
			failed[r.MessageId] = true
			continue
		}
		g := groups[msg.GroupID]
		if g == nil {
			g = &group{id: msg.GroupID}
			groups[msg.GroupID] = g
			order = append(order, g)
		}
		g.records = append(g.records, r)
		g.msgs = append(g.msgs, msg)
	}
	// A record that failed to decode and could not be dead-lettered fails
	// every later record of its group.
	for _, r := range ev.Records {
		if failed[r.MessageId] {
			gid := infinity.ThreadID(r.Attributes["MessageGroupId"])
			if g := groups[gid]; g != nil {
				a.failFrom(g, r, failed)
			}
		}
	}

	sem := make(chan struct{}, a.o.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, g := range order {
		if len(g.msgs) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := a.step(ctx, g); err != nil {
				a.o.Logger.Error("slice failed; its records come back", "thread", g.id, "records", len(g.records), "err", err)
				back := a.lastReceives(ctx, g, err)
				mu.Lock()
				for _, r := range g.records {
					if !back[r.MessageId] {
						failed[r.MessageId] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Notifications to tool servers (closed threads, cancelled calls) are
	// sent before the invocation ends (a frozen container would cut them
	// short), but never past the deadline less a margin: an invocation
	// that times out brings its whole batch back.
	wctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, dl.Add(-notifyMargin))
		defer cancel()
	}
	if err := a.o.Runtime.WaitNotifications(wctx); err != nil {
		a.o.Logger.Warn("tool-server notifications still in flight near the deadline; they are given up", "err", err)
	}
	for _, r := range ev.Records {
		if failed[r.MessageId] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

// lastReceives dead-letters the leading records of a failed group that
// were on their last receive, with the failure, and returns their ids
// (done: SQS deletes them). It stops at the first record that was not, or
// that could not be moved: a later record must never leave before an
// earlier one of its thread, in the input queue or the dead-letter queue.
// The group's other records come back and run without the moved ones.
func (a *Agent) lastReceives(ctx context.Context, g *group, why error) map[string]bool {
	done := map[string]bool{}
	if a.o.MaxReceiveCount <= 0 {
		return done
	}
	for _, r := range g.records {
		n, err := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
		if err != nil || n < a.o.MaxReceiveCount {
			break
		}
		if !a.deadLetter(ctx, r, fmt.Errorf("slice failed on receive %d of %d: %w", n, a.o.MaxReceiveCount, why)) {
			break
		}
		done[r.MessageId] = true
	}
	return done
}

// failFrom drops from g the record r's successors (r itself was never in
// g) and marks them failed.
func (a *Agent) failFrom(g *group, r events.SQSMessage, failed map[string]bool) {
	seq := r.Attributes["SequenceNumber"]
	keep := 0
	for i, rec := range g.records {
		if seq != "" && sequenceLess(rec.Attributes["SequenceNumber"], seq) {
			g.records[keep], g.msgs[keep] = rec, g.msgs[i]
			keep++
			continue
		}
		failed[rec.MessageId] = true
	}
	g.records, g.msgs = g.records[:keep], g.msgs[:keep]
}

// sequenceLess compares SQS FIFO sequence numbers (decimal strings of up
// to 128 bits).
func sequenceLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// step runs one group's slice, creating the root thread first when the
// batch opens a conversation. A message the engine refuses (a kind it does
// not handle) can never succeed: it goes to the dead-letter queue, and the
// rest of the batch runs; without a dead-letter queue (or if forwarding
// fails) the group fails, for the redrive policy.
func (a *Agent) step(ctx context.Context, g *group) error {
	// Whatever the outcome, what the slice committed is sent and released
	// now: a slice can fail after its commit (sending its outbox, say), and
	// its retry finds the items applied and shows nothing again.
	defer a.output(ctx, g.id)
	msgs := g.msgs[:0:0]
	for i, m := range g.msgs {
		if err := actors.Supported(m); err != nil {
			a.o.Logger.Error("message refused", "thread", g.id, "message", m.ID, "err", err)
			if !a.deadLetter(ctx, g.records[i], err) {
				return fmt.Errorf("message %s refused and not dead-lettered: %w", m.ID, err)
			}
			continue
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil
	}
	g.msgs = msgs
	if err := a.ensureRoot(ctx, g); err != nil {
		return err
	}
	return a.o.Runtime.Step(ctx, msgs)
}

// ensureRoot creates a root thread for a batch that starts with user text
// addressed to a thread that does not exist: the reference runtime's
// recipe (aws sqs send-message with a new group id) starts conversations
// that way. Other messages for unknown threads are dropped by the slice.
func (a *Agent) ensureRoot(ctx context.Context, g *group) error {
	first := g.msgs[0]
	if first.Synthetic != nil || first.Content.Type != infinity.ContentText {
		return nil
	}
	withBudget := func() {
		if first.Budget == nil && a.o.Budget != nil {
			g.msgs[0].Budget = a.o.Budget // applied with the first message, into the root's first item
		}
	}
	info, err := a.o.Conversations.Thread(ctx, g.id)
	if err == nil {
		// Created by an earlier delivery whose slice failed: its first
		// message is not applied yet and still takes the agent's budget
		// (a read only when there is a budget to give).
		if info.IsRoot() && first.Budget == nil && a.o.Budget != nil {
			if n, err := a.o.Conversations.Len(ctx, g.id); err != nil {
				return fmt.Errorf("look up %s: %w", g.id, err)
			} else if n == 0 {
				withBudget()
			}
		}
		return nil
	}
	if !errors.Is(err, infinity.ErrNotFound) {
		return fmt.Errorf("look up %s: %w", g.id, err)
	}
	withBudget()
	info = infinity.ThreadInfo{ID: g.id, Root: g.id, Agent: a.o.Agent, Created: a.o.Clock.Now().UTC().Truncate(time.Microsecond)}
	if err := a.o.Conversations.CreateThread(ctx, info); err != nil && !errors.Is(err, infinity.ErrExists) {
		return fmt.Errorf("create root %s: %w", g.id, err)
	}
	a.o.Logger.Info("root thread created by its first message", "thread", g.id)
	return nil
}

// deadLetter forwards an unusable record to the dead-letter queue and
// reports whether it did.
func (a *Agent) deadLetter(ctx context.Context, r events.SQSMessage, why error) bool {
	if a.o.DeadLetter == nil {
		a.o.Logger.Error("unusable record left to the redrive policy", "thread", r.Attributes["MessageGroupId"], "message_id", r.MessageId, "err", why)
		return false
	}
	if err := a.o.DeadLetter.DeadLetter(ctx, deadRecord(r, why)); err != nil {
		// Once more with a short reason, in case the full one made the
		// message too large: the record must move, the log keeps why.
		short := deadRecord(r, errors.New("the full reason made the message too large or was refused; see the agent function's log"))
		if err2 := a.o.DeadLetter.DeadLetter(ctx, short); err2 != nil {
			a.o.Logger.Error("dead-letter forward failed", "thread", r.Attributes["MessageGroupId"], "message_id", r.MessageId, "err", errors.Join(err, err2), "why", why)
			return false
		}
	}
	a.o.Logger.Error("record moved to the dead-letter queue", "thread", r.Attributes["MessageGroupId"], "message_id", r.MessageId, "err", why)
	return true
}

// OutputEvent is what the output queue receives after a slice: the text the
// thread's new items show (the reference runtime's {"text","metadata"}
// shape) and the items themselves.
type OutputEvent struct {
	Thread   infinity.ThreadID `json:"thread_id"`
	Text     string            `json:"text"`
	Metadata json.RawMessage   `json:"metadata,omitempty"`
	Items    []infinity.Item   `json:"items"`
	// OAuth are tools' requests that the user open a URL and authorize
	// them; the URL is shown here only (never stored).
	OAuth []OAuthRequest `json:"oauth,omitempty"`
}

// OAuthRequest asks the user to authorize a tool.
type OAuthRequest struct {
	Tool string `json:"tool"`
	Call string `json:"call"`
	URL  string `json:"url"`
}

// output sends what the thread committed during the step.
func (a *Agent) output(ctx context.Context, id infinity.ThreadID) {
	a.mu.Lock()
	evs := a.events[id]
	delete(a.events, id)
	a.mu.Unlock()
	if a.o.Output == nil || len(evs) == 0 {
		return
	}
	out := OutputEvent{Thread: id}
	for _, ev := range evs {
		if ev.Kind == actors.EventOAuth {
			out.OAuth = append(out.OAuth, OAuthRequest{Tool: ev.Tool, Call: ev.Call, URL: ev.URL})
			continue
		}
		out.Items = append(out.Items, ev.Item)
		if ev.Item.Kind == infinity.KindAssistant && ev.Item.Text != "" {
			if out.Text != "" {
				out.Text += "\n"
			}
			out.Text += ev.Item.Text
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		a.o.Logger.Error("output event", "thread", id, "err", err)
		return
	}
	// Display events are best effort: the history is committed, and a
	// client can always read it from the store.
	if err := a.o.Output.Forward(ctx, string(b)); err != nil {
		a.o.Logger.Warn("output event not sent", "thread", id, "err", err)
	}
}
