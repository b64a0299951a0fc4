package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// Agent is the configuration a thread runs with: its model, prompt, tools and
// limits. Threads name their agent in ThreadInfo.Agent; children inherit it.
type Agent struct {
	// Name names the agent in ThreadInfo.Agent and StartOptions.Agent; it
	// is unique within Config.Agents (ErrInvalid otherwise).
	Name string
	// Model is the model id passed to the provider ("" lets the provider pick).
	Model string
	// Provider serves the agent's completions; nil means Config.Model.
	Provider infinity.ModelProvider
	// ProviderName is Provider's id ("anthropic", "openai", "bedrock",
	// "scripted"): responses record their model as ProviderName/Model
	// (Item.Model), and it is the default provider of thread models.
	ProviderName string
	// Providers serve threads that run on another model than the agent's
	// (ThreadInfo.Model, "provider/model"), by provider id. A thread that
	// names a provider missing here, or a model its provider does not
	// list, fails its slices with an error that names it (ErrNotFound).
	Providers map[string]infinity.ModelProvider
	// System is the agent's own system prompt; the engine appends the
	// thread's identity and the rules of the built-in tools.
	System string
	// Tools are the agent's tools beside the built-ins.
	Tools []infinity.Tool
	// Toolsets, when set, adds tools that depend on the session (the root
	// thread), such as RAP toolsets discovered per session. A failure to get
	// them is reported (EventSliceError) and the slice runs without the
	// tools that failed.
	Toolsets ToolSource
	// MaxDepth bounds the thread tree's depth (root = 0); default 8.
	MaxDepth int
	// MaxChildren bounds the children one thread may spawn; default 32.
	MaxChildren int
	// MaxSubscriptions bounds a thread's active subscriptions (RAP); a tool
	// result that would start one more is kept as a plain result and the
	// tool servers are told to cancel it; default 16.
	MaxSubscriptions int
	// MaxTokens bounds one model response; default 4096.
	MaxTokens int
	// Budget bounds one slice.
	Budget Budget
	// Gate, when set, is asked before each of the agent's model calls
	// (thread is the caller, root its session's root). An error ends the
	// slice before the call, which is then not made, counted or limited:
	// one wrapping ErrAwaitingUser leaves the thread waiting for the user
	// with its input queued (a wake runs it again), one wrapping
	// ErrRetryable retries the batch with backoff, as any slice error.
	// It runs on the slice's worker and must not block.
	Gate func(ctx context.Context, thread, root infinity.ThreadID) error

	specsOnce *sync.Once
	specs     []infinity.ToolSpec
	models    *modelCache
}

// ToolSource supplies the tools of one session (root thread). Calls for
// one root should be cheap after the first (cache them).
type ToolSource interface {
	// Tools returns the tools of the session rooted at root. With an
	// error, the tools it does return are still used.
	Tools(ctx context.Context, root infinity.ThreadID) ([]infinity.Tool, error)
}

// Budget bounds the work of one slice. When it runs out the thread sends
// itself a continue message and yields, so no thread hogs a worker and no
// Lambda hits its timeout mid-turn.
type Budget struct {
	// Completions is the most model calls per slice; default 16.
	Completions int
	// Wall is the most wall time per slice; default 5 minutes.
	Wall time.Duration
}

func (a Agent) withDefaults() Agent {
	if a.MaxDepth <= 0 {
		a.MaxDepth = 8
	}
	if a.MaxChildren <= 0 {
		a.MaxChildren = 32
	}
	if a.MaxSubscriptions <= 0 {
		a.MaxSubscriptions = 16
	}
	if a.MaxTokens <= 0 {
		a.MaxTokens = 4096
	}
	if a.Budget.Completions <= 0 {
		a.Budget.Completions = 16
	}
	if a.Budget.Wall <= 0 {
		a.Budget.Wall = 5 * time.Minute
	}
	a.specsOnce, a.specs = new(sync.Once), nil
	a.models = &modelCache{m: map[string]threadModel{}}
	return a
}

// checkAgent checks an agent's tools and that it has a model provider.
func checkAgent(a Agent, model infinity.ModelProvider) error {
	if a.Provider == nil && model == nil {
		return fmt.Errorf("agent %q has no model provider (set Agent.Provider or Config.Model): %w", a.Name, infinity.ErrInvalid)
	}
	for _, t := range a.Tools {
		if builtinNames[t.Spec().Name] {
			return fmt.Errorf("agent %q: tool %q shadows a built-in: %w", a.Name, t.Spec().Name, infinity.ErrInvalid)
		}
	}
	return nil
}

// Deliverer puts a message into a thread's mailbox. The Runtime is one; a
// local InputSender delivers through it.
type Deliverer interface {
	// Deliver queues msg for the thread msg.GroupID and returns without
	// waiting for it to be handled (Runtime.Deliver lists its errors).
	Deliver(msg infinity.InputMessage) error
}

// Config is everything the engine runs on.
type Config struct {
	// Conversations keeps thread trees and history; required (ErrInvalid).
	Conversations infinity.ConversationStore
	// State keeps processed message ids and each root's metadata;
	// required (ErrInvalid).
	State infinity.StateStore
	// Model serves agents without a Provider of their own.
	Model infinity.ModelProvider
	// Sender builds the InputSender the engine sends with, given the
	// runtime's own Deliverer (a local sender delivers through it; an SQS
	// sender ignores it).
	Sender func(Deliverer) infinity.InputSender
	// Agents are the agent configurations; the first is the default.
	Agents []Agent
	// Clock is the engine's time: when items, threads, summaries and
	// events are stamped, when sleeps end, and the slice's wall budget;
	// default infinity.SystemClock.
	Clock infinity.Clock
	// Logger receives the engine's logs; default slog.Default().
	Logger *slog.Logger
	// Observer, when set, receives every committed change, in commit order
	// per thread. It must not block for long.
	Observer func(Event)
	// Probe, when set, sees every step of every slice as it begins and
	// ends (for metrics and traces; package telemetry has one).
	Probe Probe
	// Host builds the actor host that runs threads on their own:
	// protohost.New (package actors/protohost, on protoactor-go). It is
	// required unless StepOnly is set.
	Host func(HostOptions) Host
	// StepOnly makes a Runtime without a Host: it runs slices only through
	// Step, in the caller's goroutine (the Lambda handler), and Start,
	// Send, Deliver and Wake return ErrNoHost.
	StepOnly bool
	// MaxConcurrentSlices bounds how many slices do work on the host at
	// once (others wait their turn); default 256. A slice waiting for a
	// model, a rate limit or a place under MaxModelCalls is not counted:
	// it keeps only its goroutine and its loaded history.
	MaxConcurrentSlices int
	// Idle is how long an active thread that is not asleep keeps its actor
	// after a slice, for input that follows in a burst (tool results,
	// children's reports); default 100 ms. The actor holds nothing the
	// stores do not, so a later message only spawns it again. A thread
	// left asleep (waiting on passive calls only) passivates at once.
	Idle time.Duration
	// ProcessedTTL is how long processed message ids are remembered by the
	// StateStore fast path; default 7 days. (The ConversationStore's applied
	// records are the record of truth.)
	ProcessedTTL time.Duration
	// AppliedOnly skips the StateStore's processed mark for the messages a
	// slice's commit applied: repeats of them are recognised by the
	// ConversationStore's applied records alone. Set it when reading those
	// costs no more than reading the marks and the store's commit consumes
	// the applied messages from its durable inbox, as persistence/disk's
	// does: it saves a durable write per slice. The other messages of a
	// batch (repeats, input for a closed or unknown thread, a wake-up that
	// changed nothing) are still marked, which takes them out of the inbox.
	AppliedOnly bool
	// MaxModelCalls bounds the model streams in flight at once across every
	// thread (default 1024). With a host, a slice waits for its model
	// without holding one of the MaxConcurrentSlices workers (it stops at
	// the call and resumes on a worker with the answer), so many slow model
	// calls do not stop other threads' work; slices beyond the bound wait
	// for a turn, holding no worker either.
	MaxModelCalls int
	// ModelLimits bound the calls to providers ("openai") and models
	// ("openai/gpt-4.1"), shared by every thread; Runtime.SetModelLimit
	// changes them later.
	ModelLimits map[string]ModelLimit
	// ModelAttempts is how many times a completion is tried when it fails
	// with an error wrapping ErrRetryable; default 4.
	ModelAttempts int
	// ModelBackoff is the wait before the first retry (jittered between
	// half and all of it), doubled each retry; default 200 ms.
	ModelBackoff time.Duration
	// ToolTimeout bounds a synchronous tool call and an asynchronous tool's
	// start (a tool that is a TimedTool gets its own bound instead);
	// dispatch; default 30 s.
	ToolTimeout time.Duration
	// Prices, when set, gives the USD cost of a model response of a
	// thread of agent (model as Item.Model records it), for the trees'
	// budgets; ok false for a model without a price, which then counts as
	// free.
	Prices func(agent, model string, u infinity.Usage) (usd float64, ok bool)
	// Notifier, when set, is told about closed threads and cancelled
	// subscriptions.
	Notifier Notifier
	// Deadline, when it returns ok, is a hard deadline for every slice (on
	// Lambda: the invocation's end minus a margin).
	Deadline func(ctx context.Context) (time.Time, bool)
}

func (c Config) validate() (Config, error) {
	switch {
	case c.Conversations == nil:
		return c, fmt.Errorf("actors config: Conversations is required: %w", infinity.ErrInvalid)
	case c.State == nil:
		return c, fmt.Errorf("actors config: State is required: %w", infinity.ErrInvalid)
	case c.Sender == nil:
		return c, fmt.Errorf("actors config: Sender is required: %w", infinity.ErrInvalid)
	case c.Host == nil && !c.StepOnly:
		return c, fmt.Errorf("actors config: Host is required: pass protohost.New (package actors/protohost) for threads that run on their own, or set StepOnly for a runtime driven by Step alone (Lambda): %w", infinity.ErrInvalid)
	case c.Host != nil && c.StepOnly:
		return c, fmt.Errorf("actors config: StepOnly with a Host: a step-only runtime has none: %w", infinity.ErrInvalid)
	}
	if len(c.Agents) == 0 {
		c.Agents = []Agent{{Name: "default"}}
	}
	seen := map[string]bool{}
	for i, a := range c.Agents {
		if seen[a.Name] {
			return c, fmt.Errorf("actors config: agent %q defined twice: %w", a.Name, infinity.ErrInvalid)
		}
		seen[a.Name] = true
		if err := checkAgent(a, c.Model); err != nil {
			return c, fmt.Errorf("actors config: %w", err)
		}
		c.Agents[i] = a.withDefaults()
	}
	if c.Clock == nil {
		c.Clock = infinity.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxConcurrentSlices <= 0 {
		c.MaxConcurrentSlices = 256
	}
	if c.Idle <= 0 {
		c.Idle = 100 * time.Millisecond
	}
	if c.ProcessedTTL <= 0 {
		c.ProcessedTTL = 7 * 24 * time.Hour
	}
	if c.MaxModelCalls <= 0 {
		c.MaxModelCalls = 1024
	}
	if c.ModelAttempts <= 0 {
		c.ModelAttempts = 4
	}
	if c.ModelBackoff <= 0 {
		c.ModelBackoff = 200 * time.Millisecond
	}
	if c.ToolTimeout <= 0 {
		c.ToolTimeout = 30 * time.Second
	}
	if c.Probe == nil {
		c.Probe = noProbe{}
	}
	return c, nil
}

// EventKind tells observer events apart.
type EventKind uint8

// Observer event kinds.
const (
	// EventItem: an item was committed to Thread's history.
	EventItem EventKind = iota + 1
	// EventThreadCreated: Info was created (a root or a child).
	EventThreadCreated
	// EventThreadClosed: Thread was closed.
	EventThreadClosed
	// EventSliceError: a slice failed (Err); its input stays queued and is
	// retried, or, for a model failure, the thread waits for new input.
	EventSliceError
	// EventOAuth: the tool Tool, called as Call, needs the user to open URL
	// and authorize it. The URL is never stored: show it now.
	EventOAuth
	// EventSlice: a slice of Thread committed; Usage is what its model
	// responses used (zero when it ran none), Items how many items it
	// added. It follows the slice's other events.
	EventSlice
	// EventCompacted: Thread's history was compacted: Summary is the new
	// summary (its Covers items and everything inherited are summarised).
	EventCompacted
)

var eventKindNames = [...]string{
	EventItem: "item", EventThreadCreated: "thread_created", EventThreadClosed: "thread_closed",
	EventSliceError: "slice_error", EventOAuth: "oauth", EventSlice: "slice", EventCompacted: "compacted",
}

// String returns the kind's lowercase name ("item", "thread_created",
// "thread_closed", "slice_error", "oauth", "slice", "compacted"), or
// "EventKind(N)" for a value outside the constants.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a committed change, for transcripts and UIs.
type Event struct {
	// Kind says what happened, and so which other fields are set.
	Kind EventKind
	// Thread is the thread concerned: the one whose slice it was, or the
	// thread created or closed.
	Thread infinity.ThreadID
	// Item is the committed item, on EventItem.
	Item infinity.Item
	// Info is the new thread's info, on EventThreadCreated.
	Info infinity.ThreadInfo
	// Err is why the slice failed, on EventSliceError.
	Err error
	// At is when the event was emitted, on Config.Clock (a root's
	// EventThreadCreated from Start: its Created time).
	At time.Time
	// Call (the call's id), Tool (its tool's name) and URL (where the user
	// authorizes it) describe an EventOAuth.
	Call, Tool, URL string
	// Usage is the tokens the slice's model responses used, on
	// EventSlice.
	Usage infinity.Usage
	// Items is how many items the slice added, on EventSlice.
	Items int
	// Summary is set on EventCompacted.
	Summary *infinity.Summary
}

// Notifier tells tool servers what became of threads and calls, best
// effort: the engine calls it after the commit, on a goroutine of its own,
// does not wait for it and never depends on it (RAP's /close_thread and
// /cancel_tool_call; tools/rap provides one). Runtime.WaitNotifications
// waits for the calls in flight.
type Notifier interface {
	// ThreadClosed says thread was closed (and takes no more input).
	ThreadClosed(ctx context.Context, thread infinity.ThreadID)
	// CallCancelled says call callID of thread was cancelled: a
	// cancel_subscription, or a subscription refused for the cap.
	CallCancelled(ctx context.Context, thread infinity.ThreadID, callID string)
}

// ToolSources joins tool sources into one: the tools of each, in order. A
// tool name offered by two of them is left out of both and reported; the
// sources' errors are joined, and what did load is returned with them. Nil
// sources are skipped; with none left it returns nil.
func ToolSources(srcs ...ToolSource) ToolSource {
	return join(srcs, func(j []ToolSource) ToolSource { return joined(j) })
}

// join is the joined form of the non-nil values of xs: nil with none, the
// value itself with one, else many of them.
func join[T comparable](xs []T, many func([]T) T) T {
	var zero T
	var j []T
	for _, x := range xs {
		if x != zero {
			j = append(j, x)
		}
	}
	switch len(j) {
	case 0:
		return zero
	case 1:
		return j[0]
	}
	return many(j)
}

type joined []ToolSource

func (j joined) Tools(ctx context.Context, root infinity.ThreadID) ([]infinity.Tool, error) {
	var (
		all  []infinity.Tool
		errs []error
	)
	count := make(map[string]int)
	for _, s := range j {
		tools, err := s.Tools(ctx, root)
		if err != nil {
			errs = append(errs, err)
		}
		for _, t := range tools {
			count[t.Spec().Name]++
		}
		all = append(all, tools...)
	}
	out := all[:0:0]
	for _, t := range all {
		switch name := t.Spec().Name; {
		case count[name] > 1:
			errs = append(errs, fmt.Errorf("tool %q is offered by more than one tool source; none is used: %w", name, infinity.ErrInvalid))
			count[name] = -1 // reported once
			continue
		case count[name] < 0:
			continue
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}
