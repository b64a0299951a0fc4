package actors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// maxThrottled bounds how often one completion waits out a provider's
// throttling before it fails.
const maxThrottled = 20

// response is one whole model turn, buffered until the stream ended well.
type response struct {
	text  string
	calls []infinity.ToolCall
	usage infinity.Usage
	stop  infinity.StopReason
}

// pendingCall is the model call a slice stopped at (errSuspended): the
// runtime makes it on a goroutine of its own, without a worker, and the
// slice goes on with its answer on a worker.
type pendingCall struct {
	model threadModel
	req   infinity.CompletionRequest
}

// answer is a model call's outcome, kept for the slice that resumes.
type answer struct {
	resp response
	err  error
	// panicked says err is a panic of the call's (a provider's): the slice
	// fails, as a panic on its worker would fail it.
	panicked bool
}

// errSuspended is how a slice stops at a model call: the run keeps the call
// in pending and the slice returns a suspension (see engine.sliceDeferred).
var errSuspended = errors.New("slice suspended at a model call")

// prepare resolves the thread's model and builds the request of its next
// completion.
func (r *run) prepare(ctx context.Context) (threadModel, infinity.CompletionRequest, error) {
	tm, err := r.e.model(ctx, r.agent, r.self.Model)
	if err != nil {
		return threadModel{}, infinity.CompletionRequest{}, err
	}
	r.model = tm
	req := infinity.CompletionRequest{
		Model:     tm.id,
		System:    r.systemPrompt(),
		Items:     forModel(tm.info.Images, modelView(summaryView(r.items))),
		Tools:     r.toolSpecs(),
		MaxTokens: r.agent.MaxTokens,
		Thread:    r.self.ID,
		Stack:     r.hist.Stack(),
	}
	if r.self.Kind == infinity.ThreadCompaction {
		req.System, req.Tools = compactionSystem, nil
	}
	if tm.info.MaxOutput > 0 {
		req.MaxTokens = min(req.MaxTokens, tm.info.MaxOutput)
	}
	return tm, req, nil
}

// call runs one completion. A stream that fails is discarded whole and
// retried (retryable errors only, with backoff and jitter); nothing of a
// failed attempt reaches the history.
func (r *run) call(ctx context.Context, tm threadModel, req infinity.CompletionRequest) (response, error) {
	backoff := r.e.cfg.ModelBackoff
	throttled := 0
	var err error
	for attempt := 1; ; attempt++ {
		var resp response
		resp, err = r.stream(ctx, req)
		if err == nil {
			return resp, nil
		}
		var rl *infinity.RateLimitedError
		if errors.As(err, &rl) && throttled < maxThrottled && ctx.Err() == nil {
			// The provider is throttling: every call to it waits (the
			// limiter holds them), this one included, and it does not
			// count as an attempt.
			throttled++
			wait := rl.RetryAfter
			if wait <= 0 {
				wait = min(r.e.cfg.ModelBackoff<<min(throttled, 10), time.Minute)
			}
			r.e.limits.pause(providerOf(r.model.name), wait)
			r.e.log.Info("model provider is throttling; its calls wait", "thread", r.self.ID, "provider", providerOf(r.model.name), "wait", wait)
			attempt--
			continue
		}
		if !errors.Is(err, infinity.ErrRetryable) || errors.Is(err, infinity.ErrAwaitingUser) || attempt >= r.e.cfg.ModelAttempts || ctx.Err() != nil {
			break
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		r.e.log.Info("model stream failed; retrying", "thread", r.self.ID, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, ctx.Err()
		case <-t.C:
		}
		backoff *= 2
	}
	return response{}, fmt.Errorf("model: %w", err)
}

// stream runs one model stream, as a StepModel of the Probe, once the
// engine's bound of streams in flight (MaxModelCalls) lets it.
//
// A slice that still holds its worker (an instant provider's) steps out of
// the host's workers while it waits for a limit or a place (blocker).
func (r *run) stream(ctx context.Context, req infinity.CompletionRequest) (resp response, err error) {
	block := r.e.blocker(ctx)
	release, err := r.e.limits.acquire(ctx, r.model.name, r.self.ID, r.self.Root, estimate(&req), block)
	if err != nil {
		return response{}, err
	}
	defer func() { release(resp.usage) }() // a panicking provider too
	done, err := r.e.modelTurn(ctx, block)
	if err != nil {
		return response{}, err
	}
	defer done()
	ctx, end := r.e.cfg.Probe.Begin(ctx, Step{Kind: StepModel, Thread: r.self.ID, Agent: r.agent.Name, Model: r.model.name})
	defer func() { end(StepEnd{Err: err, Usage: resp.usage}) }()
	return r.streamOnce(ctx, req)
}

// blocker returns what steps a slice that holds its host worker out of
// the workers before it blocks for a limit or a place among the calls in
// flight, and back in after (nil: it holds no worker). Only an instant
// provider's slice holds one there: a call to any other is made off the
// workers (see suspends).
func (e *engine) blocker(ctx context.Context) func() func() {
	if h := hostOf(ctx); h != nil && h.y != nil {
		y := h.y
		return func() func() {
			y.Detach()
			return y.Attach
		}
	}
	return nil
}

// modelTurn waits for a place among the model streams in flight and
// returns the function that gives it back; block (when set) is called
// before it waits.
func (e *engine) modelTurn(ctx context.Context, block func() func()) (func(), error) {
	select {
	case e.models <- struct{}{}:
	default:
		e.waiting.Add(1)
		if block != nil {
			defer block()()
		}
		select {
		case e.models <- struct{}{}:
			e.waiting.Add(-1)
		case <-ctx.Done():
			e.waiting.Add(-1)
			return nil, ctx.Err()
		}
	}
	return func() { <-e.models }, nil
}

// ModelCalls says how many model streams are in flight and how many slices
// wait for a place among them (Config.MaxModelCalls).
type ModelCalls struct {
	InFlight int `json:"in_flight"`
	Waiting  int `json:"waiting"`
	Max      int `json:"max"`
}

// instant is a ModelProvider that answers without waiting (the scripted
// model): its slices keep their worker.
type instant interface{ Instant() bool }

func isInstant(p infinity.ModelProvider) bool {
	i, ok := p.(instant)
	return ok && i.Instant()
}

type hostKey struct{}

// sliceHost marks a slice's context as one that a host's worker runs: its
// model calls suspend it (see suspends), and y (nil when the host is not a
// Yielder) lets it step out of the workers while it waits.
type sliceHost struct{ y Yielder }

// onHost marks ctx as a slice's that a host's worker runs.
func onHost(ctx context.Context, y Yielder) context.Context {
	return context.WithValue(ctx, hostKey{}, &sliceHost{y: y})
}

// offHost is ctx for a suspended slice's model call, which runs on a
// goroutine of its own: no worker to step out of, nothing to suspend.
func offHost(ctx context.Context) context.Context {
	return context.WithValue(ctx, hostKey{}, (*sliceHost)(nil))
}

func hostOf(ctx context.Context) *sliceHost {
	h, _ := ctx.Value(hostKey{}).(*sliceHost)
	return h
}

// suspends says whether a slice stops at a call to p and gives its worker
// back until the answer comes (errSuspended), rather than wait for it: on
// a host's worker, for a provider that does not answer at once. A slice
// without a host (Step, on Lambda) waits in its caller's goroutine.
func (e *engine) suspends(ctx context.Context, p infinity.ModelProvider) bool {
	return hostOf(ctx) != nil && !isInstant(p)
}

func (r *run) streamOnce(ctx context.Context, req infinity.CompletionRequest) (response, error) {
	var (
		buf  strings.Builder
		resp response
	)
	for ev, err := range r.model.provider.Stream(ctx, req) {
		if err != nil {
			return response{}, err
		}
		switch ev.Kind {
		case infinity.StreamText:
			buf.WriteString(ev.Text)
		case infinity.StreamToolCall:
			if ev.Call != nil {
				resp.calls = append(resp.calls, *ev.Call)
			}
		case infinity.StreamDone:
			resp.text, resp.usage, resp.stop = buf.String(), ev.Usage, ev.Stop
			return resp, nil
		}
	}
	return response{}, fmt.Errorf("%w: %w", errStreamEnded, infinity.ErrRetryable)
}

func (r *run) systemPrompt() string {
	var b strings.Builder
	stack := r.hist.Stack()
	b.Grow(len(r.agent.System) + 160 + len(stack)*32)
	if r.agent.System != "" {
		b.WriteString(r.agent.System)
		b.WriteString("\n\n")
	}
	b.WriteString("Your thread ID is ")
	b.WriteString(string(r.self.ID))
	b.WriteString(". The root thread ID is ")
	b.WriteString(string(r.hist.Lineage[0].ID))
	b.WriteString(". Your thread stack (root first) is ")
	writeStack(&b, stack)
	b.WriteString(".")
	if !r.self.IsRoot() {
		b.WriteString(" You are a child thread: do the task you were given, send what you find with report_to_parent, and end with close_thread.")
	}
	return b.String()
}

func stackString(s []infinity.ThreadID) string {
	var b strings.Builder
	writeStack(&b, s)
	return b.String()
}

// writeStack writes ids as a list of quoted ids: ["a", "b"].
func writeStack(b *strings.Builder, ids []infinity.ThreadID) {
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('"')
		b.WriteString(string(id))
		b.WriteByte('"')
	}
	b.WriteByte(']')
}

// modelView returns the history as a model may see it: every call answered
// before the conversation moves on. A child inherits its parent's history up
// to its own spawn call, so calls made next to it in the same response have
// no result in the child's view; they get a short synthetic one.
func modelView(items []infinity.Item) []infinity.Item {
	answered := make(map[string]bool)
	for _, it := range items {
		if it.Kind == infinity.KindToolResult {
			answered[it.Result.CallID] = true
		}
	}
	var out []infinity.Item
	var group []string // unanswered calls of the current run of calls
	flush := func() {
		for _, id := range group {
			out = append(out, infinity.Item{ID: id + "/elsewhere", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{
				CallID: id, Parts: []infinity.Part{{Type: "text", Text: "This call belongs to another thread; its result is not part of this thread."}},
			}})
		}
		group = group[:0]
	}
	for i, it := range items {
		if it.Kind == infinity.KindToolCall && !answered[it.Call.ID] {
			if out == nil {
				out = append(make([]infinity.Item, 0, len(items)+2), items[:i]...)
			}
			group = append(group, it.Call.ID)
		}
		if out != nil {
			if it.Kind != infinity.KindToolCall && len(group) > 0 {
				flush()
			}
			out = append(out, it)
		}
	}
	if out == nil {
		return items // the common case: nothing to repair, no copy
	}
	flush()
	return out
}

func (e *engine) provider(a *Agent) infinity.ModelProvider {
	if a.Provider != nil {
		return a.Provider
	}
	return e.cfg.Model
}

// imageOmitted replaces an image for a model without image input.
const imageOmitted = "[an image was here; this model does not take images]"

// forModel replaces the images in tool results with a text placeholder
// when the thread's model does not take images (RAP: never send image data
// to such a model). items is not modified.
func forModel(images bool, items []infinity.Item) []infinity.Item {
	if images {
		return items
	}
	var out []infinity.Item
	for i, it := range items {
		if it.Result == nil || !slices.ContainsFunc(it.Result.Parts, isImage) {
			if out != nil {
				out = append(out, it)
			}
			continue
		}
		if out == nil {
			out = append(make([]infinity.Item, 0, len(items)), items[:i]...)
		}
		res := *it.Result
		res.Parts = make([]infinity.Part, len(it.Result.Parts))
		for j, p := range it.Result.Parts {
			if isImage(p) {
				p = infinity.Part{Type: "text", Text: imageOmitted}
			}
			res.Parts[j] = p
		}
		it.Result = &res
		out = append(out, it)
	}
	if out == nil {
		return items
	}
	return out
}

func isImage(p infinity.Part) bool { return p.Type == "image" }
