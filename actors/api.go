package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// StartOptions starts a root thread.
type StartOptions struct {
	// Agent names the agent configuration; "" is the first one.
	Agent string
	// Text is the first user message.
	Text string
	// Metadata is stored as the root's metadata (optional JSON).
	Metadata json.RawMessage
	// ID is the thread id to use; "" makes a new one.
	ID infinity.ThreadID
	// Model, when set, runs the thread (and the children that do not pick
	// another) on this model, "provider/model": the agent's default or one
	// of its Providers' models.
	Model string
	// Budget, when set, caps what the tree may spend (infinity.Budget); it
	// is stored on the root's first item and raised with RaiseBudget.
	Budget *infinity.Budget
}

// Start creates a root thread and sends it its first message. It returns
// ErrInvalid for empty text, a bad id or a malformed model, ErrNotFound for
// an unknown agent or a model the agent does not have, ErrNoHost for a
// step-only runtime and ErrStopped after Close; none of these leaves a
// thread behind.
//
// With a caller-given id a retried Start is harmless: when the thread
// exists with the same agent and model (and, once applied, the same first
// message), Start sends the first message again under the same stable id,
// which the thread applies once, and returns the id. So a Start cut short
// (a crash between creating the thread and queuing its message) is
// completed by its retry. A different request for a taken id is ErrExists.
func (rt *Runtime) Start(ctx context.Context, o StartOptions) (infinity.ThreadID, error) {
	if strings.TrimSpace(o.Text) == "" {
		return "", fmt.Errorf("start: the first message is empty: %w", infinity.ErrInvalid)
	}
	if err := rt.usable("start"); err != nil {
		return "", err
	}
	agent := rt.cfg.Agents[0].Name
	if o.Agent != "" {
		if !rt.HasAgent(o.Agent) {
			return "", fmt.Errorf("start: agent %q: %w", o.Agent, infinity.ErrNotFound)
		}
		agent = o.Agent
	}
	id := o.ID
	if id == "" {
		id = infinity.NewThreadID()
	}
	if !infinity.ValidThreadID(id) {
		return "", fmt.Errorf("start: thread id %q: %w", id, infinity.ErrInvalid)
	}
	if o.Model != "" {
		if _, err := rt.eng.model(ctx, rt.eng.agent(agent), o.Model); err != nil {
			return "", fmt.Errorf("start: %w", err)
		}
	}
	if o.Budget != nil {
		if err := o.Budget.Validate(); err != nil {
			return "", fmt.Errorf("start: %w", err)
		}
		if o.Budget.IsZero() {
			o.Budget = nil
		}
	}
	msg := infinity.InputMessage{ID: infinity.MessageID(infinity.DeriveID("start_", string(id))), GroupID: id,
		Content: infinity.TextContent(o.Text), Metadata: o.Metadata, Budget: o.Budget}
	info := infinity.ThreadInfo{ID: id, Root: id, Agent: agent, Model: o.Model, Created: rt.cfg.Clock.Now()}
	var err error
	if rs, ok := rt.cfg.Conversations.(RootStarter); ok && rt.cfg.AppliedOnly {
		// The thread and its first message in one write; the Send below
		// finds the message waiting, writes nothing and delivers it.
		err = rs.CreateRoot(ctx, info, msg)
	} else {
		err = rt.cfg.Conversations.CreateThread(ctx, info)
	}
	switch {
	case err == nil:
		if rt.host != nil {
			rt.mu.Lock()
			if rt.active[id] == nil {
				rt.newRoots[id] = struct{}{}
			}
			rt.mu.Unlock()
		}
		if obs := rt.cfg.Observer; obs != nil {
			obs(Event{Kind: EventThreadCreated, Thread: id, Info: info, At: info.Created})
		}
	case errors.Is(err, infinity.ErrExists) && o.ID != "":
		if err := rt.sameStart(ctx, info, msg); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("start: %w", err)
	}
	if err := rt.sender.Send(ctx, msg, time.Time{}); err != nil {
		rt.mu.Lock()
		delete(rt.newRoots, id) // activated later, if ever, like any thread
		rt.mu.Unlock()
		if stopped := rt.usable("start"); stopped != nil {
			return "", stopped
		}
		return "", fmt.Errorf("start %s: the thread exists but its first message was not queued (start it again with this id to finish): %w", id, err)
	}
	return id, nil
}

// RootStarter is a ConversationStore that keeps the runtime's durable
// inbox too (an AppliedKeeper whose commits consume from it) and creates a
// root thread and queues its first message in one write
// (persistence/disk): a crash between the two cannot leave a root that
// waits for ever for the message that starts it. Start uses it when the
// store is an AppliedKeeper.
type RootStarter interface {
	// CreateRoot is CreateThread that also puts first (due now) into the
	// inbox, in the same write.
	CreateRoot(ctx context.Context, info infinity.ThreadInfo, first infinity.InputMessage) error
}

// sameStart reports (ErrExists) whether an existing thread was started by
// another request than info and msg.
func (rt *Runtime) sameStart(ctx context.Context, info infinity.ThreadInfo, msg infinity.InputMessage) error {
	have, err := rt.cfg.Conversations.Thread(ctx, info.ID)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if !have.IsRoot() || have.Agent != info.Agent || have.Model != info.Model {
		return fmt.Errorf("start: thread %s exists, started otherwise (agent %q, model %q): %w", info.ID, have.Agent, have.Model, infinity.ErrExists)
	}
	items, err := rt.cfg.Conversations.Items(ctx, info.ID, 0, 1)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if len(items) > 0 && (items[0].ID != string(msg.ID) || items[0].Text != msg.Content.Text) {
		return fmt.Errorf("start: thread %s exists, started with another message: %w", info.ID, infinity.ErrExists)
	}
	if len(items) > 0 && !sameBudget(items[0].Budget, msg.Budget) {
		return fmt.Errorf("start: thread %s exists, started with another budget (%s; raise it with RaiseBudget): %w", info.ID, budgetString(items[0].Budget), infinity.ErrExists)
	}
	return nil
}

// usable returns ErrNoHost for a step-only runtime and ErrStopped after
// Close, for the calls that need the host.
func (rt *Runtime) usable(op string) error {
	if rt.host == nil {
		return fmt.Errorf("%s: %w", op, ErrNoHost)
	}
	if rt.isStopped() {
		return fmt.Errorf("%s: %w", op, ErrStopped)
	}
	return nil
}

func (rt *Runtime) isStopped() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.stopped
}

// Models lists the models threads of an agent ("" is the default agent)
// may run on, as "provider/model", the agent's default first (when its
// provider has a name). It returns ErrNotFound for an unknown agent.
func (rt *Runtime) Models(ctx context.Context, agent string) ([]string, error) {
	if agent != "" && !rt.HasAgent(agent) {
		return nil, fmt.Errorf("models of agent %q: %w", agent, infinity.ErrNotFound)
	}
	return rt.eng.choices(ctx, rt.eng.agent(agent)), nil
}

// Compact asks a thread to compact its history now, whatever its usage
// (an operator's request; threads also compact on their own near their
// model's context window). It returns the message id, ErrNotFound for an
// unknown thread and ErrClosed for a closed one.
func (rt *Runtime) Compact(ctx context.Context, id infinity.ThreadID) (infinity.MessageID, error) {
	msg := infinity.InputMessage{ID: infinity.NewMessageID(), GroupID: id, Content: infinity.TextContent(""),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompaction}}
	return msg.ID, rt.send(ctx, "compact", msg)
}

// Send sends user text to a thread and returns the message id. It returns
// ErrNotFound for an unknown thread, ErrClosed for a closed one and
// ErrInvalid for empty text.
func (rt *Runtime) Send(ctx context.Context, id infinity.ThreadID, text string) (infinity.MessageID, error) {
	if strings.TrimSpace(text) == "" {
		return "", fmt.Errorf("send to %s: empty message: %w", id, infinity.ErrInvalid)
	}
	msg := infinity.InputMessage{ID: infinity.NewMessageID(), GroupID: id, Content: infinity.TextContent(text)}
	return msg.ID, rt.SendMessage(ctx, msg)
}

// SendMessage sends any input message (a tool result, an event) to an
// existing, open thread. msg.ID is filled in when empty; keep it stable to
// make resends harmless.
func (rt *Runtime) SendMessage(ctx context.Context, msg infinity.InputMessage) error {
	return rt.send(ctx, "send to", msg)
}

// send is SendMessage with the operation its errors name ("send to",
// "close", "compact").
func (rt *Runtime) send(ctx context.Context, op string, msg infinity.InputMessage) error {
	if rt.isStopped() {
		return fmt.Errorf("%s %s: %w", op, msg.GroupID, ErrStopped)
	}
	info, err := rt.cfg.Conversations.Thread(ctx, msg.GroupID)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, msg.GroupID, err)
	}
	if info.Closed {
		return fmt.Errorf("%s %s: %w", op, msg.GroupID, infinity.ErrClosed)
	}
	if msg.ID == "" {
		msg.ID = infinity.NewMessageID()
	}
	if err := supported(msg); err != nil {
		return err
	}
	if err := rt.sender.Send(ctx, msg, time.Time{}); err != nil {
		return fmt.Errorf("%s %s: %w", op, msg.GroupID, err)
	}
	return nil
}

// History returns a thread's reconstructed history.
func (rt *Runtime) History(ctx context.Context, id infinity.ThreadID) (infinity.History, error) {
	return infinity.LoadHistory(ctx, rt.cfg.Conversations, id)
}

// Usage returns the tokens a thread's own model responses used, and with
// subtree those of every thread below it too. It returns ErrNotFound for an
// unknown thread.
func (rt *Runtime) Usage(ctx context.Context, id infinity.ThreadID, subtree bool) (infinity.Usage, error) {
	conv := rt.cfg.Conversations
	var total infinity.Usage
	for queue := []infinity.ThreadID{id}; len(queue) > 0; queue = queue[1:] {
		items, err := conv.Items(ctx, queue[0], 0, -1)
		if err != nil {
			return infinity.Usage{}, fmt.Errorf("usage of %s: %w", queue[0], err)
		}
		total = total.Add(infinity.SumUsage(items))
		if !subtree {
			break
		}
		kids, err := conv.Children(ctx, queue[0])
		if err != nil {
			return infinity.Usage{}, fmt.Errorf("usage of %s: %w", queue[0], err)
		}
		for _, k := range kids {
			queue = append(queue, k.ID)
		}
	}
	return total, nil
}

// AddAgent adds an agent configuration to a running runtime. It returns
// ErrExists for a taken name and ErrInvalid for a bad configuration.
func (rt *Runtime) AddAgent(a Agent) error {
	if err := checkAgent(a, rt.cfg.Model); err != nil {
		return fmt.Errorf("add agent: %w", err)
	}
	a = a.withDefaults()
	e := rt.eng
	e.amu.Lock()
	defer e.amu.Unlock()
	if _, ok := e.agents[a.Name]; ok {
		return fmt.Errorf("add agent %q: %w", a.Name, infinity.ErrExists)
	}
	e.agents[a.Name] = &a
	return nil
}

// HasAgent reports whether the runtime knows the agent.
func (rt *Runtime) HasAgent(name string) bool {
	rt.eng.amu.RLock()
	defer rt.eng.amu.RUnlock()
	_, ok := rt.eng.agents[name]
	return ok
}

// Wake activates a thread with no new input, so that it sends what its
// outbox still holds (after a crash between a commit and its sends). It
// returns ErrNoHost for a runtime without a Host and ErrStopped after Close.
func (rt *Runtime) Wake(id infinity.ThreadID) error {
	if rt.host == nil {
		return fmt.Errorf("wake %s: %w", id, ErrNoHost)
	}
	rt.mu.Lock()
	if rt.stopped {
		rt.mu.Unlock()
		return fmt.Errorf("wake %s: %w", id, ErrStopped)
	}
	mb := rt.activate(id)
	mb.drain = true
	a := rt.signal(mb)
	rt.mu.Unlock()
	wake(a)
	return nil
}

// CloseThread asks a thread to close itself and every thread below it, and
// returns the request's message id. The request is an input like any other:
// it is applied in order after what the thread already received, so a slice
// that is running finishes first. A child's parent is told. It returns
// ErrNotFound for an unknown thread and ErrClosed for a closed one.
func (rt *Runtime) CloseThread(ctx context.Context, id infinity.ThreadID) (infinity.MessageID, error) {
	msg := infinity.InputMessage{
		ID: infinity.NewMessageID(), GroupID: id, Content: infinity.TextContent(""),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticClose},
	}
	return msg.ID, rt.send(ctx, "close", msg)
}

// Busy reports whether the thread has input waiting in its mailbox or a
// slice running.
func (rt *Runtime) Busy(id infinity.ThreadID) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	mb := rt.active[id]
	return mb != nil && (mb.running || len(mb.queue) > 0 || mb.signaled)
}
