package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// RecordOptions are what a recording's header says besides its format and
// time.
type RecordOptions struct {
	// Models names the models the program runs on, "provider/model", for
	// the header (people read it; replay does not).
	Models []string
	// Meta is free-form facts for the header: the agent, the command line.
	// Replay does not read it; never put secrets in it.
	Meta map[string]string
	// Clock dates the header; default infinity.SystemClock.
	Clock infinity.Clock
}

// Recorder writes every call of the providers it wraps to a recording:
// one line per call, written and synced (when the writer has a Sync
// method, as *os.File does) when the call ends, so a crash loses at most
// the calls in flight. It is safe for concurrent use.
//
// A call whose line cannot be written fails with the write's error, and
// every later call too: a recording with a silent gap would replay
// wrongly.
type Recorder struct {
	mu     sync.Mutex
	w      io.Writer
	file   *os.File // Create's, closed by Close
	seq    int
	models map[string][]infinity.ModelInfo // the last list written per provider
	err    error                           // the first write error: the recording ends there
	closed bool
}

// NewRecorder writes a recording's header to w and returns the recorder
// that appends calls to it. The caller closes w after Close.
func NewRecorder(w io.Writer, o RecordOptions) (*Recorder, error) {
	clock := o.Clock
	if clock == nil {
		clock = infinity.SystemClock{}
	}
	h := Header{Format: Format, Version: Version, Created: clock.Now().UTC(), Models: o.Models, Meta: o.Meta}
	r := &Recorder{w: w, models: map[string][]infinity.ModelInfo{}}
	if err := writeJSONLine(w, h); err != nil {
		return nil, fmt.Errorf("replay: write the header: %w", err)
	}
	if err := r.sync(); err != nil {
		return nil, fmt.Errorf("replay: write the header: %w", err)
	}
	return r, nil
}

// Create makes (or truncates) the file at path, readable by its owner
// only, and records to it; Close closes it.
func Create(path string, o RecordOptions) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	r, err := NewRecorder(f, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil { // the file's name survives a crash too
		dir.Sync()
		dir.Close()
	}
	r.file = f
	return r, nil
}

// Wrap returns p recording into r under name: the provider's id
// ("anthropic", "openai", "scripted") or DefaultName for Config.Model.
// Calls and model lists are kept per name; replay serves the same name
// (Player.Provider).
func (r *Recorder) Wrap(name string, p infinity.ModelProvider) infinity.ModelProvider {
	if w, ok := p.(*recorded); ok && w.sink == sink(r) && w.name == name {
		return p // wrapped already: its calls are not written twice
	}
	return &recorded{name: name, inner: p, sink: r}
}

// WrapAgent wraps the agent's providers (Provider, under ProviderName, or
// "agent:NAME" when it has none, and every entry of Providers under its
// key), as Player.ServeAgent replaces them. Call it before the runtime
// gets the agent (actors.Runtime.AddAgent).
func (r *Recorder) WrapAgent(a *actors.Agent) { wrapAgent(a, r.Wrap) }

func wrapAgent(a *actors.Agent, wrap func(string, infinity.ModelProvider) infinity.ModelProvider) {
	if a.Provider != nil {
		a.Provider = wrap(agentProvider(a), a.Provider)
	}
	if len(a.Providers) > 0 {
		ps := make(map[string]infinity.ModelProvider, len(a.Providers))
		for name, p := range a.Providers {
			ps[name] = wrap(name, p)
		}
		a.Providers = ps
	}
}

// agentProvider names an agent's own provider.
func agentProvider(a *actors.Agent) string {
	if a.ProviderName != "" {
		return a.ProviderName
	}
	return "agent:" + a.Name
}

// Calls returns how many calls r has written.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Close ends the recording (calls after it fail with os.ErrClosed) and
// closes the file Create made. Close the runtime first.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.file != nil {
		if err := r.file.Close(); err != nil {
			return fmt.Errorf("replay: close the recording: %w", err)
		}
	}
	return nil
}

// usable says why nothing more may be written (r.mu held).
func (r *Recorder) usable() error {
	switch {
	case r.closed:
		return fmt.Errorf("replay: the recorder is closed: %w", os.ErrClosed)
	case r.err != nil:
		return fmt.Errorf("replay: the recording failed earlier, at its call %d: %w", r.seq+1, r.err)
	}
	return nil
}

// write appends one line and syncs it (r.mu held). A failure ends the
// recording.
func (r *Recorder) write(v any) error {
	if err := r.usable(); err != nil {
		return err
	}
	err := writeJSONLine(r.w, v)
	if err == nil {
		err = r.sync()
	}
	if err != nil {
		r.err = err
		return fmt.Errorf("replay: write the recording: %w", err)
	}
	return nil
}

func (r *Recorder) sync() error {
	if s, ok := r.w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// recorderFor is the Recorder a call goes to: r.
func (r *Recorder) recorderFor(*infinity.CompletionRequest) *Recorder { return r }

// noteModels writes a provider's model list when it is not the last one
// written for that name.
func (r *Recorder) noteModels(name string, ms []infinity.ModelInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.models[name]; ok && slices.Equal(last, ms) {
		return nil
	}
	if err := r.write(modelsLine{"models", &Models{Provider: name, Models: ms}}); err != nil {
		return err
	}
	r.models[name] = slices.Clone(ms)
	return nil
}

// record numbers c and writes it.
func (r *Recorder) record(c *Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return err
	}
	c.Seq = r.seq + 1
	if err := r.write(callLine{"call", c}); err != nil {
		return err
	}
	r.seq++
	return nil
}

// sink is where a recorded provider's calls go: a Recorder, or a Tee.
type sink interface {
	recorderFor(req *infinity.CompletionRequest) *Recorder // nil: not recorded
	noteModels(name string, ms []infinity.ModelInfo) error
}

// recorded is a provider whose calls are recorded.
type recorded struct {
	name  string
	inner infinity.ModelProvider
	sink  sink
}

// Models lists the inner provider's models and records the list.
func (p *recorded) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	ms, err := p.inner.Models(ctx)
	if err != nil {
		return nil, err // the provider's own error, as it gave it
	}
	if err := p.sink.noteModels(p.name, ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// Instant is the inner provider's (the engine lets an instant provider's
// slice keep its worker).
func (p *recorded) Instant() bool {
	i, ok := p.inner.(interface{ Instant() bool })
	return ok && i.Instant()
}

// Stream passes the inner stream through untouched and records the call
// when it ends: the response once its StreamDone came (before the caller
// sees it), or the error it failed with. A call its caller gave up on (a
// cancelled context, a loop left early) is not recorded.
func (p *recorded) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		rec := p.sink.recorderFor(&req)
		if rec == nil {
			for ev, err := range p.inner.Stream(ctx, req) {
				if !yield(ev, err) {
					return
				}
			}
			return
		}
		c := Call{Provider: p.name, Thread: req.Thread, Stack: slices.Clone(req.Stack), Request: NewRequest(req)}
		c.Key = matchForm(p.name, c.Stack, &c.Request).key
		var (
			text  strings.Builder
			calls []*ToolCall
		)
		for ev, err := range p.inner.Stream(ctx, req) {
			if err != nil {
				if ctx.Err() == nil {
					c.Error = newCallError(err)
					if rerr := rec.record(&c); rerr != nil {
						err = fmt.Errorf("%w (and recording the failure failed: %v)", err, rerr)
					}
				}
				yield(ev, err)
				return
			}
			switch ev.Kind {
			case infinity.StreamText:
				text.WriteString(ev.Text)
			case infinity.StreamToolCall:
				if ev.Call != nil {
					calls = append(calls, newCall(*ev.Call))
				}
			case infinity.StreamDone:
				c.Response = &Response{Text: text.String(), Calls: calls, Usage: ev.Usage, Stop: ev.Stop}
				if err := rec.record(&c); err != nil {
					yield(infinity.StreamEvent{}, err)
					return
				}
				yield(ev, nil)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
		if ctx.Err() == nil {
			// The engine takes a stream without its end for a broken one
			// and tries again; replay serves the same.
			c.Error = &CallError{Message: "the stream ended without its done event", Retryable: true}
			if err := rec.record(&c); err != nil {
				yield(infinity.StreamEvent{}, err)
			}
		}
	}
}

// newCallError keeps what the engine reads of a model error.
func newCallError(err error) *CallError {
	e := &CallError{Message: err.Error(), Retryable: errors.Is(err, infinity.ErrRetryable)}
	var rl *infinity.RateLimitedError
	if errors.As(err, &rl) {
		e.RateLimited, e.RetryAfterMS = true, rl.RetryAfter.Milliseconds()
	}
	return e
}

// Tee records each tree of threads to its own recording while it runs:
// wrap the providers once (Wrap, WrapAgent), then Attach a Recorder to a
// root thread for as long as its tree should be recorded (a daemon's
// `run --record FILE`), or AttachAll one for every other tree (the
// daemon's own `--record FILE`). Calls of trees with no recorder pass
// through. It is safe for concurrent use.
type Tee struct {
	mu      sync.Mutex
	roots   map[infinity.ThreadID]*Recorder
	all     *Recorder // AttachAll's: the trees without a recorder of their own
	wrapped []*recorded
}

// NewTee returns a Tee with no recorder attached.
func NewTee() *Tee { return &Tee{roots: map[infinity.ThreadID]*Recorder{}} }

// Wrap returns p, whose calls go to the recorder attached to the calling
// thread's root, under name (as Recorder.Wrap).
func (t *Tee) Wrap(name string, p infinity.ModelProvider) infinity.ModelProvider {
	if w, ok := p.(*recorded); ok && w.sink == sink(t) && w.name == name {
		return p // wrapped already: its calls are not written twice
	}
	w := &recorded{name: name, inner: p, sink: t}
	t.mu.Lock()
	t.wrapped = append(t.wrapped, w)
	t.mu.Unlock()
	return w
}

// WrapAgent wraps the agent's providers, as Recorder.WrapAgent.
func (t *Tee) WrapAgent(a *actors.Agent) { wrapAgent(a, t.Wrap) }

// Attach sends the calls of root's tree to rec from now on, and writes the
// model lists of the wrapped providers to it (replay needs them, and the
// engine asked for them long before). Attach before the root starts, to
// record its first call.
func (t *Tee) Attach(ctx context.Context, root infinity.ThreadID, rec *Recorder) error {
	t.mu.Lock()
	t.roots[root] = rec
	t.mu.Unlock()
	return t.listModels(ctx, rec)
}

// AttachAll sends the calls of every tree without a recorder of its own
// (Attach) to rec from now on, nil to stop (a daemon's `--record FILE`),
// and writes the model lists of the wrapped providers to it.
func (t *Tee) AttachAll(ctx context.Context, rec *Recorder) error {
	t.mu.Lock()
	t.all = rec
	t.mu.Unlock()
	if rec == nil {
		return nil
	}
	return t.listModels(ctx, rec)
}

// listModels writes the model lists of the wrapped providers to rec.
func (t *Tee) listModels(ctx context.Context, rec *Recorder) error {
	t.mu.Lock()
	wrapped := slices.Clone(t.wrapped)
	t.mu.Unlock()
	for _, w := range wrapped {
		ms, err := w.inner.Models(ctx)
		if err != nil {
			continue // the engine will not have a list either
		}
		if err := rec.noteModels(w.name, ms); err != nil {
			return err
		}
	}
	return nil
}

// Detach stops recording root's tree; close its Recorder after.
func (t *Tee) Detach(root infinity.ThreadID) {
	t.mu.Lock()
	delete(t.roots, root)
	t.mu.Unlock()
}

func (t *Tee) recorderFor(req *infinity.CompletionRequest) *Recorder {
	root := req.Thread
	if len(req.Stack) > 0 {
		root = req.Stack[0]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.roots[root]; ok {
		return r
	}
	return t.all
}

// noteModels gives the list to every attached recorder. A recorder that
// cannot write it fails its own tree's next call, not this listing, which
// every tree shares.
func (t *Tee) noteModels(name string, ms []infinity.ModelInfo) error {
	t.mu.Lock()
	recs := make([]*Recorder, 0, len(t.roots)+1)
	for _, r := range t.roots {
		recs = append(recs, r)
	}
	if t.all != nil {
		recs = append(recs, t.all)
	}
	t.mu.Unlock()
	for _, r := range recs {
		_ = r.noteModels(name, ms)
	}
	return nil
}
