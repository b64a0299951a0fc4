package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// engine runs slices. It holds no per-thread state between slices: all of
// it is in the stores, so a passivated thread costs nothing here.
type engine struct {
	cfg    Config
	sender infinity.InputSender
	amu    sync.RWMutex // guards agents (AddAgent adds to it)
	agents map[string]*Agent
	def    *Agent
	log    *slog.Logger
	// notes counts the Notifier calls in flight; idle is closed while
	// there are none (a WaitGroup would not do: a wait that gave up may
	// still be blocked when the next call starts).
	notes struct {
		sync.Mutex
		n    int
		idle chan struct{}
	}
	// models holds a value per model stream in flight (MaxModelCalls);
	// waiting counts the slices that wait for a place in it.
	models  chan struct{}
	waiting atomic.Int64
	// limits are the per-provider and per-model limits (ModelLimit).
	limits *limiter
	// budgets count what trees spend (budget.go).
	budgets ledgers
}

func newEngine(cfg Config, sender infinity.InputSender) *engine {
	e := &engine{cfg: cfg, sender: sender, agents: map[string]*Agent{}, log: cfg.Logger, models: make(chan struct{}, cfg.MaxModelCalls),
		limits: newLimiter(time.Now, cfg.ModelLimits)}
	for i := range cfg.Agents {
		a := &cfg.Agents[i]
		e.agents[a.Name] = a
	}
	e.def = &cfg.Agents[0]
	return e
}

// agent returns the named agent; "" is the default. A thread naming an
// agent the runtime does not know runs on no other agent's model: its
// completions fail with ErrNotFound, so its status says why.
func (e *engine) agent(name string) *Agent {
	e.amu.RLock()
	defer e.amu.RUnlock()
	if a, ok := e.agents[name]; ok {
		return a
	}
	if name == "" {
		return e.def
	}
	a := Agent{Name: name, Provider: unknownAgent(name)}.withDefaults()
	return &a
}

// unknownAgent is the model of an agent the runtime does not know.
type unknownAgent string

func (u unknownAgent) Models(context.Context) ([]infinity.ModelInfo, error) {
	return nil, fmt.Errorf("agent %q: %w", string(u), infinity.ErrNotFound)
}

func (u unknownAgent) Stream(context.Context, infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		yield(infinity.StreamEvent{}, fmt.Errorf("this thread's agent %q is not configured in this runtime: %w", string(u), infinity.ErrNotFound))
	}
}

// errCommitRetries is returned when a slice kept losing commit races.
var errCommitRetries = errors.New("commit kept conflicting")

// slice runs one slice of thread id over batch and returns nil once the
// batch is durably handled (applied, recorded as a no-op, or dropped for a
// closed or unknown thread). An error means the caller must deliver the
// batch again later; re-running is safe. drainFirst asks to send what an
// earlier, interrupted slice left in the outbox. asleep reports whether the
// slice left the thread waiting on open calls that are all passive (sleep,
// sleep_until, sleep_until_event_or_input): only a timer or an outside
// message can wake it, so its actor can stop at once.
func (e *engine) slice(ctx context.Context, id infinity.ThreadID, batch []infinity.InputMessage, drainFirst bool) (asleep bool, err error) {
	res := e.sliceDeferred(offHost(ctx), id, batch, drainFirst, false) // in the caller's goroutine: nothing suspends
	return res.asleep, res.err
}

// DeferredCommitter is a ConversationStore whose commit can return once the
// commit is checked, journalled and applied, before it is durable
// (persistence/disk). durable waits until it is, and returns the error that
// kept it from being. Until then the commit's effects must not be seen
// outside the store: the slice emits, sends and acknowledges nothing before
// durable returns (the store's reads already wait for it).
type DeferredCommitter interface {
	CommitDeferred(ctx context.Context, c infinity.Commit) (n int, durable func() error, err error)
}

// sliceEnd is how a slice's run on a worker ended: with the slice
// (asleep, err), or with a part of it left for later, finish or susp.
type sliceEnd struct {
	asleep bool
	// finish is the rest of a slice whose commit is applied but not yet
	// durable: it waits until it is, then does the rest of the slice
	// (events, sends, acknowledgements) and returns what the slice returns.
	// The runtime runs it on a goroutine of its own so that its worker
	// takes other threads' slices while the disk syncs.
	finish func() (bool, error)
	// susp is a slice stopped at a model call.
	susp *suspension
	err  error
}

// suspension is a slice stopped at a model call. The runtime runs call on a
// goroutine of its own, which holds no worker while the model thinks, then
// resume on a worker: the slice goes on from the model's answer and ends,
// or stops again. The thread runs nothing else meanwhile.
type suspension struct {
	call   func()
	resume func() sliceEnd
	batch  []infinity.InputMessage // the slice's
}

// sliceDeferred runs a slice as far as it goes on one worker: when deferOK
// and the ConversationStore is a DeferredCommitter, it ends as soon as the
// commit is applied (sliceEnd.finish); on a host's worker, at a model call
// to a provider that does not answer at once (sliceEnd.susp).
func (e *engine) sliceDeferred(ctx context.Context, id infinity.ThreadID, batch []infinity.InputMessage, drainFirst, deferOK bool) sliceEnd {
	ctx, end := e.cfg.Probe.Begin(ctx, Step{Kind: StepSlice, Thread: id, Messages: len(batch)})
	st := &sliceStep{id: id, end: end}
	return st.run(func() sliceEnd { return e.runSteps(ctx, id, batch, drainFirst, deferOK, &st.out) })
}

// sliceStep is a slice's Probe step, which ends when the slice does,
// however many runs that takes.
type sliceStep struct {
	id  infinity.ThreadID
	end func(StepEnd)
	out sliceOutcome
}

// run runs one part of the slice and ends the step if the slice ended with
// it; the parts it leaves for later end the step in their turn.
func (st *sliceStep) run(part func() sliceEnd) sliceEnd {
	ended := false
	defer endOnPanic(st.id, st.end, &ended)
	res := part()
	ended = true
	switch {
	case res.susp != nil:
		resume := res.susp.resume
		res.susp.resume = func() sliceEnd { return st.run(resume) }
	case res.finish != nil:
		finish := res.finish
		res.finish = func() (bool, error) {
			res := st.run(func() sliceEnd {
				asleep, err := finish()
				return sliceEnd{asleep: asleep, err: err}
			})
			return res.asleep, res.err
		}
	default:
		st.end(st.out.end(res.err))
	}
	return res
}

// endOnPanic, deferred, ends a slice's probe step as failed when the slice
// panics before ending it, and lets the panic go on (the runtime turns it
// into the slice's error).
func endOnPanic(id infinity.ThreadID, end func(StepEnd), ended *bool) {
	if *ended {
		return
	}
	if p := recover(); p != nil {
		end(StepEnd{Outcome: OutcomeFailed, Err: fmt.Errorf("slice %s: %w: %v", id, errSlicePanic, p)})
		panic(p)
	}
}

// sliceOutcome is what a slice did, for its Probe step.
type sliceOutcome struct {
	outcome string // OutcomeNoop or OutcomeDropped; "" for a commit
	done    *run
}

func (o *sliceOutcome) end(err error) StepEnd {
	switch {
	case err != nil:
		return StepEnd{Outcome: OutcomeFailed, Err: err}
	case o.outcome != "":
		return StepEnd{Outcome: o.outcome}
	case o.done == nil || o.done.empty():
		return StepEnd{Outcome: OutcomeNoop}
	case o.done.modelErr != nil:
		return StepEnd{Outcome: OutcomeModelError, Err: o.done.modelErr, Items: len(o.done.commit.Items)}
	}
	return StepEnd{Outcome: OutcomeCommitted, Items: len(o.done.commit.Items)}
}

// runSteps is sliceDeferred without its Probe step; out says what it did.
func (e *engine) runSteps(ctx context.Context, id infinity.ThreadID, batch []infinity.InputMessage, drainFirst, deferOK bool, out *sliceOutcome) sliceEnd {
	if drainFirst {
		err := e.drainStored(ctx, id)
		if errors.Is(err, infinity.ErrNotFound) {
			out.outcome = OutcomeDropped
			return sliceEnd{err: e.dropUnknown(ctx, id, batch)}
		}
		if err != nil {
			return sliceEnd{err: err}
		}
	}
	fresh, err := e.fresh(ctx, id, batch)
	if err != nil {
		return sliceEnd{err: err}
	}
	if drainFirst && len(fresh) > 0 {
		// After a crash or a failure past the commit, inputs may be applied
		// already: filter them before the model and tools run again.
		if fresh, err = e.unapplied(ctx, id, fresh); err != nil {
			return sliceEnd{err: err}
		}
	}
	if len(fresh) == 0 {
		out.outcome = OutcomeNoop
		return sliceEnd{err: e.markProcessed(ctx, id, batch)}
	}
	s := &sliceRun{e: e, ctx: ctx, id: id, batch: batch, fresh: fresh, out: out}
	if deferOK {
		s.deferred, _ = e.cfg.Conversations.(DeferredCommitter)
	}
	return s.attempts(nil)
}

// sliceRun is a slice past its input checks: its runs of the batch (a
// commit race re-runs it) and their commit.
type sliceRun struct {
	e        *engine
	ctx      context.Context
	id       infinity.ThreadID
	batch    []infinity.InputMessage
	fresh    []infinity.InputMessage // the batch's messages not applied yet
	out      *sliceOutcome
	deferred DeferredCommitter // nil: commit and wait until it is durable

	attempt   int
	done      *run
	durable   func() error
	commitEnd func(StepEnd)
}

// attempts runs the batch until a run of it commits; resumed, when set, is
// a run that stopped at a model call and has its answer.
func (s *sliceRun) attempts(resumed *run) sliceEnd {
	e, ctx, id := s.e, s.ctx, s.id
	for s.done == nil {
		r := resumed
		resumed = nil
		var err error
		if r != nil {
			err = r.conclude(ctx, s.fresh)
		} else {
			if s.attempt == 4 {
				return sliceEnd{err: fmt.Errorf("slice %s: %w", id, errCommitRetries)}
			}
			s.attempt++
			lctx, lend := e.cfg.Probe.Begin(ctx, Step{Kind: StepLoad, Thread: id})
			r, err = e.newRun(lctx, id)
			lend(StepEnd{Err: err})
			if errors.Is(err, infinity.ErrNotFound) {
				s.out.outcome = OutcomeDropped
				return sliceEnd{err: e.dropUnknown(ctx, id, s.batch)}
			}
			if err != nil {
				return sliceEnd{err: err}
			}
			if closed := r.closed(); closed != "" {
				e.log.Debug("input for a closed thread dropped", "thread", id, "closed", closed, "messages", len(s.fresh))
				s.out.outcome = OutcomeDropped
				return sliceEnd{err: e.markProcessed(ctx, id, s.batch)}
			}
			err = r.execute(ctx, s.fresh)
		}
		if errors.Is(err, errSuspended) {
			return s.suspend(r)
		}
		if err != nil {
			return sliceEnd{err: err}
		}
		if end, stop := s.commit(r); stop {
			return end
		}
	}
	if s.durable != nil {
		return sliceEnd{finish: s.finish}
	}
	asleep, err := s.finish()
	return sliceEnd{asleep: asleep, err: err}
}

// suspend stops the slice at r's pending model call.
func (s *sliceRun) suspend(r *run) sliceEnd {
	p := r.pending
	r.pending = nil
	ctx := offHost(s.ctx)
	return sliceEnd{susp: &suspension{
		call: func() {
			var perr error
			defer func() {
				if perr != nil {
					r.answered = &answer{err: perr, panicked: true}
				}
			}()
			defer recoverSlice(s.id, &perr)
			resp, err := r.call(ctx, p.model, p.req)
			r.answered = &answer{resp: resp, err: err}
		},
		resume: func() sliceEnd { return s.attempts(r) },
		batch:  s.batch,
	}}
}

// commit commits run r of the batch: stop says the slice ends with end
// (a failure, or nothing left to apply); otherwise s.done is r, or r lost
// a race and the batch runs again.
func (s *sliceRun) commit(r *run) (end sliceEnd, stop bool) {
	e, ctx, id := s.e, s.ctx, s.id
	if r.metadata != nil {
		// Before the commit: an idempotent overwrite that a failure
		// past the commit must not lose.
		if err := e.saveMetadata(ctx, r.hist.Lineage[0].ID, r.metadata); err != nil {
			return sliceEnd{err: err}, true
		}
	}
	if r.empty() {
		s.done, s.out.done = r, r
		return sliceEnd{}, false
	}
	cctx, commitEnd := e.cfg.Probe.Begin(ctx, Step{Kind: StepCommit, Thread: id})
	var (
		durable func() error
		err     error
	)
	if s.deferred != nil {
		_, durable, err = s.deferred.CommitDeferred(cctx, r.commit)
	} else {
		_, err = e.cfg.Conversations.Commit(cctx, r.commit)
	}
	if err != nil {
		durable = nil // a failed commit has nothing to wait for
	}
	if durable == nil {
		commitEnd(StepEnd{Err: err})
	}
	switch {
	case err == nil:
		s.done, s.out.done = r, r
		s.durable, s.commitEnd = durable, commitEnd
	case errors.Is(err, infinity.ErrApplied):
		// An earlier run of this batch committed, then died before
		// finishing: replay its outbox and keep only what is new.
		if err := e.drainStored(ctx, id); err != nil {
			return sliceEnd{err: err}, true
		}
		if s.fresh, err = e.unapplied(ctx, id, s.fresh); err != nil {
			return sliceEnd{err: err}, true
		}
		if len(s.fresh) == 0 {
			s.out.outcome = OutcomeNoop
			return sliceEnd{err: e.markProcessed(ctx, id, s.batch)}, true
		}
	case errors.Is(err, infinity.ErrConflict):
		e.log.Info("slice lost a commit race; re-running", "thread", id)
	case errors.Is(err, infinity.ErrClosed):
		s.out.outcome = OutcomeDropped
		return sliceEnd{err: e.markProcessed(ctx, id, s.batch)}, true
	default:
		return sliceEnd{err: fmt.Errorf("slice %s: commit: %w", id, err)}, true
	}
	return sliceEnd{}, false
}

// finish waits until the commit is durable (when it was deferred), then
// lets the world see it: events, the outbox's sends, acknowledgements.
func (s *sliceRun) finish() (bool, error) {
	e, ctx, id, done := s.e, s.ctx, s.id, s.done
	if s.durable != nil {
		err := s.durable()
		s.commitEnd(StepEnd{Err: err})
		if err != nil {
			return false, fmt.Errorf("slice %s: commit: %w", id, err)
		}
	}
	for _, it := range done.commit.Items {
		if it.Budget != nil { // a root's first item or a raise: its tree has a budget now
			e.budgetCommitted(done.commit.Thread)
			break
		}
	}
	e.emit(done)
	e.notify(done)
	if err := e.drain(ctx, done.hist.Lineage, done.commit.Outbox); err != nil {
		return false, err
	}
	if done.modelErr != nil {
		e.emitErr(id, done.modelErr)
	}
	return done.asleep(), e.markProcessed(ctx, id, s.batch, done.commit.Applied...)
}

// fresh drops repeats within the batch and ids the StateStore fast path
// already knows. It returns batch itself when nothing is dropped.
func (e *engine) fresh(ctx context.Context, id infinity.ThreadID, batch []infinity.InputMessage) ([]infinity.InputMessage, error) {
	return filter(batch, func(i int) (bool, error) {
		m := &batch[i]
		if slices.ContainsFunc(batch[:i], func(p infinity.InputMessage) bool { return p.ID == m.ID }) {
			return false, nil
		}
		var seen bool
		var err error
		if e.cfg.AppliedOnly {
			seen, err = e.cfg.Conversations.Applied(ctx, id, m.ID)
		} else {
			seen, err = e.cfg.State.Processed(ctx, id, m.ID)
		}
		if errors.Is(err, infinity.ErrNotFound) {
			return true, nil // the slice drops it, and says so
		}
		if err != nil {
			return false, fmt.Errorf("slice %s: processed %s: %w", id, m.ID, err)
		}
		return !seen, nil
	})
}

// unapplied drops the messages the ConversationStore records as applied.
func (e *engine) unapplied(ctx context.Context, id infinity.ThreadID, msgs []infinity.InputMessage) ([]infinity.InputMessage, error) {
	return filter(msgs, func(i int) (bool, error) {
		ok, err := e.cfg.Conversations.Applied(ctx, id, msgs[i].ID)
		if err != nil {
			return false, fmt.Errorf("slice %s: applied %s: %w", id, msgs[i].ID, err)
		}
		return !ok, nil
	})
}

// filter returns the messages keep accepts, without copying when it
// accepts them all.
func filter(msgs []infinity.InputMessage, keep func(i int) (bool, error)) ([]infinity.InputMessage, error) {
	var out []infinity.InputMessage
	for i := range msgs {
		ok, err := keep(i)
		if err != nil {
			return nil, err
		}
		switch {
		case ok && out != nil:
			out = append(out, msgs[i])
		case !ok && out == nil:
			out = append(make([]infinity.InputMessage, 0, len(msgs)), msgs[:i]...)
		}
	}
	if out == nil {
		return msgs, nil
	}
	return out, nil
}

// markProcessed records msgs as processed in the StateStore (the fast path
// for repeats; a durable inbox lets them go in the same write). With
// AppliedOnly the ids in applied are skipped: the slice's commit recorded
// them.
// dropUnknown drops input for a thread that does not exist, marking it
// processed so that a durable inbox lets it go (it can never apply).
func (e *engine) dropUnknown(ctx context.Context, id infinity.ThreadID, batch []infinity.InputMessage) error {
	e.log.Warn("input for an unknown thread dropped", "thread", id, "messages", len(batch))
	return e.markProcessed(ctx, id, batch)
}

func (e *engine) markProcessed(ctx context.Context, id infinity.ThreadID, msgs []infinity.InputMessage, applied ...infinity.MessageID) error {
	ids := make([]infinity.MessageID, 0, len(msgs))
	for _, m := range msgs {
		// With AppliedOnly, the messages this slice's commit applied are
		// recorded (and consumed from a durable inbox) by the commit
		// itself; the others (repeats, input for a closed or unknown
		// thread, a wake-up that changed nothing) are marked so that a
		// durable inbox lets them go.
		if e.cfg.AppliedOnly && slices.Contains(applied, m.ID) {
			continue
		}
		ids = append(ids, m.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	if err := e.cfg.State.MarkProcessed(ctx, id, ids, e.cfg.ProcessedTTL); err != nil {
		return fmt.Errorf("slice %s: mark processed: %w", id, err)
	}
	return nil
}

func (e *engine) saveMetadata(ctx context.Context, root infinity.ThreadID, md []byte) error {
	for range 5 {
		st, v, err := e.cfg.State.Load(ctx, root)
		if err != nil && !errors.Is(err, infinity.ErrNotFound) {
			return fmt.Errorf("save metadata of %s: %w", root, err)
		}
		st.Metadata = md
		if _, err = e.cfg.State.Save(ctx, root, st, v); err == nil || !errors.Is(err, infinity.ErrConflict) {
			if err != nil {
				return fmt.Errorf("save metadata of %s: %w", root, err)
			}
			return nil
		}
	}
	return fmt.Errorf("save metadata of %s: %w", root, infinity.ErrConflict)
}

// drainStored sends whatever the thread's outbox still holds.
func (e *engine) drainStored(ctx context.Context, id infinity.ThreadID) error {
	out, err := e.cfg.Conversations.Outbox(ctx, id)
	if err != nil {
		return fmt.Errorf("slice %s: outbox: %w", id, err)
	}
	if len(out) == 0 {
		return nil
	}
	lin, err := e.cfg.Conversations.Lineage(ctx, id)
	if err != nil {
		return fmt.Errorf("slice %s: lineage: %w", id, err)
	}
	return e.drain(ctx, lin, out)
}

// drain hands committed outgoing entries on and removes them from the
// outbox. Every entry carries a stable id, so a repeat after a crash is
// harmless.
func (e *engine) drain(ctx context.Context, lin []infinity.ThreadInfo, out []infinity.Outgoing) error {
	if len(out) == 0 {
		return nil
	}
	self := lin[len(lin)-1]
	sent := make([]string, 0, len(out))
	var err error
	for _, o := range out {
		switch {
		case o.Message != nil:
			err = e.sender.Send(ctx, *o.Message, o.At)
		case o.Invoke != nil:
			err = e.invokeAsync(ctx, lin, o.Invoke)
		}
		if err != nil {
			err = fmt.Errorf("slice %s: send %s: %w", self.ID, o.ID, err)
			break
		}
		sent = append(sent, o.ID)
	}
	if len(sent) > 0 {
		if merr := e.cfg.Conversations.MarkSent(ctx, self.ID, sent...); merr != nil && err == nil {
			err = fmt.Errorf("slice %s: mark sent: %w", self.ID, merr)
		}
	}
	return err
}

// invokeAsync starts an asynchronous agent tool. A failure becomes an error
// result sent to the thread, so the call never stays unanswered.
func (e *engine) invokeAsync(ctx context.Context, lin []infinity.ThreadInfo, inv *infinity.Invocation) error {
	self := lin[len(lin)-1]
	a := e.agent(self.Agent)
	tool := findTool(inv.Tool, a.Tools)
	if tool == nil && a.Toolsets != nil {
		tool = findTool(inv.Tool, e.sessionTools(ctx, a, lin[0].ID))
	}
	var ierr error
	if tool == nil {
		ierr = fmt.Errorf("tool %q is no longer configured", inv.Tool)
	} else {
		env := e.toolEnv(lin)
		env.UserID = e.userID(ctx, lin[0].ID)
		tctx, end := e.cfg.Probe.Begin(ctx, Step{Kind: StepTool, Thread: self.ID, Tool: inv.Tool, ToolKind: ToolAsync, Call: inv.Call.ID})
		tctx, cancel := context.WithTimeout(tctx, toolTimeout(tool, e.cfg.ToolTimeout))
		_, ierr = tool.Invoke(tctx, env, inv.Call)
		cancel()
		end(StepEnd{Err: ierr})
	}
	if ierr == nil {
		return nil
	}
	e.log.Warn("asynchronous tool failed to start", "thread", self.ID, "tool", inv.Tool, "call", inv.Call.ID, "err", ierr)
	msg := infinity.InputMessage{
		ID:      infinity.MessageID("err-" + inv.Call.ID),
		GroupID: self.ID,
		Content: infinity.ResultContent(inv.Call.ID, "Error: the tool "+inv.Tool+" could not be started: "+ierr.Error()),
	}
	return e.sender.Send(ctx, msg, time.Time{})
}

// userID is metadata.user_id of the root thread (RAP's user_id), or "".
func (e *engine) userID(ctx context.Context, root infinity.ThreadID) string {
	st, _, err := e.cfg.State.Load(ctx, root)
	if err != nil || len(st.Metadata) == 0 {
		return ""
	}
	var m struct {
		UserID any `json:"user_id"`
	}
	if json.Unmarshal(st.Metadata, &m) != nil || m.UserID == nil {
		return ""
	}
	if s, ok := m.UserID.(string); ok {
		return s
	}
	b, _ := json.Marshal(m.UserID) // a decoded JSON value always marshals
	return string(b)
}

func (e *engine) toolEnv(lin []infinity.ThreadInfo) infinity.ToolEnv {
	stack := infinity.History{Lineage: lin}.Stack()
	return infinity.ToolEnv{Thread: stack[len(stack)-1], Stack: stack, Sender: e.sender}
}

func (e *engine) emit(r *run) {
	obs := e.cfg.Observer
	if obs == nil {
		return
	}
	now := e.cfg.Clock.Now()
	id := r.commit.Thread
	for _, it := range r.commit.Items {
		obs(Event{Kind: EventItem, Thread: id, Item: it, At: now})
	}
	for _, c := range r.commit.Create {
		obs(Event{Kind: EventThreadCreated, Thread: c.ID, Info: c, At: now})
	}
	for _, c := range r.commit.Close {
		obs(Event{Kind: EventThreadClosed, Thread: c, At: now})
	}
	for _, o := range r.oauthURLs {
		obs(Event{Kind: EventOAuth, Thread: id, Call: o.call, Tool: o.tool, URL: o.url, At: now})
	}
	if r.commit.Summary != nil {
		obs(Event{Kind: EventCompacted, Thread: id, Summary: r.commit.Summary, At: now})
	}
	obs(Event{Kind: EventSlice, Thread: id, Usage: infinity.SumUsage(r.commit.Items), Items: len(r.commit.Items), At: now})
}

// notify tells the tool servers about closed threads and cancelled
// subscriptions, on a goroutine of its own: the slice does not wait for
// it. Runtime.WaitNotifications waits for those in flight (the Lambda
// handler does, before it returns: a frozen container would cut them
// short).
func (e *engine) notify(r *run) {
	n := e.cfg.Notifier
	if n == nil || (len(r.commit.Close) == 0 && len(r.cancelled) == 0) {
		return
	}
	closed, cancelled, self := slices.Clone(r.commit.Close), slices.Clone(r.cancelled), r.self.ID
	e.notes.Lock()
	if e.notes.n == 0 {
		e.notes.idle = make(chan struct{})
	}
	e.notes.n++
	e.notes.Unlock()
	go func() {
		defer func() {
			e.notes.Lock()
			if e.notes.n--; e.notes.n == 0 {
				close(e.notes.idle)
			}
			e.notes.Unlock()
		}()
		// One bound for them all; each notification goes out on its own.
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.ToolTimeout)
		defer cancel()
		var wg sync.WaitGroup
		for _, id := range closed {
			wg.Go(func() { n.ThreadClosed(ctx, id) })
		}
		for _, c := range cancelled {
			wg.Go(func() { n.CallCancelled(ctx, self, c) })
		}
		wg.Wait()
	}()
}

// notified returns a channel closed when no Notifier call is in flight.
func (e *engine) notified() <-chan struct{} {
	e.notes.Lock()
	defer e.notes.Unlock()
	if e.notes.n == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	return e.notes.idle
}

func (e *engine) emitErr(id infinity.ThreadID, err error) {
	e.log.Error("slice failed", "thread", id, "err", err)
	if e.cfg.Observer != nil {
		e.cfg.Observer(Event{Kind: EventSliceError, Thread: id, Err: err, At: e.cfg.Clock.Now()})
	}
}

// positionID returns a stable id for the item at own position n of thread
// id: unique within the thread and its descendants' views.
func positionID(prefix string, id infinity.ThreadID, n int) string {
	return prefix + string(id) + "." + strconv.Itoa(n)
}
