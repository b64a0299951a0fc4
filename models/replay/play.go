package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// ErrNotRecorded is wrapped by the error of a request the recording does
// not hold (a *NotRecordedError, with a diff against the nearest recorded
// request), and of a provider whose model list it does not hold.
var ErrNotRecorded = errors.New("not in the recording")

// NotRecordedError is a request the recording does not hold, or holds
// fewer times than it was asked.
type NotRecordedError struct {
	// Provider is the provider name asked; Thread the asking thread.
	Provider string
	Thread   infinity.ThreadID
	// Why says what is missing, in a sentence.
	Why string
	// Nearest is the recorded call the request was compared with (nil:
	// the recording holds no call of Provider); Diff is the lines that
	// differ, "- " the recorded request's, "+ " the asked one's, in the
	// matching form (see the package documentation).
	Nearest *Call
	Diff    string
}

func (e *NotRecordedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay: provider %q, thread %s: %s", e.Provider, e.Thread, e.Why)
	if e.Diff != "" {
		fmt.Fprintf(&b, "\n--- recorded call %d (thread %s)\n+++ asked (thread %s)\n%s", e.Nearest.Seq, e.Nearest.Thread, e.Thread, strings.TrimSuffix(e.Diff, "\n"))
	}
	return b.String()
}

// Unwrap gives ErrNotRecorded.
func (e *NotRecordedError) Unwrap() error { return ErrNotRecorded }

// Player serves a recording to the providers it makes: each recorded call
// once, the same request asked again getting its next recording in
// recorded order. It is safe for concurrent use.
type Player struct {
	rec   *Recording
	forms []form // of rec.Calls
	nth   []int  // rec.Calls[i] is its thread's nth call (from 0)

	mu        sync.Mutex
	queues    map[string][]int // provider and key → calls not yet served, in order
	served    []bool
	asked     map[infinity.ThreadID]int // calls asked per thread
	providers map[string]*Provider
	missed    chan struct{}
	miss      error
}

// NewPlayer makes a player of rec, with every call unserved.
func NewPlayer(rec *Recording) *Player {
	pl := &Player{rec: rec, forms: make([]form, len(rec.Calls)), nth: make([]int, len(rec.Calls)),
		queues: map[string][]int{}, served: make([]bool, len(rec.Calls)), asked: map[infinity.ThreadID]int{},
		providers: map[string]*Provider{}, missed: make(chan struct{})}
	count := map[infinity.ThreadID]int{}
	for i := range rec.Calls {
		c := &rec.Calls[i]
		pl.forms[i] = matchForm(c.Provider, c.Stack, &c.Request)
		pl.nth[i] = count[c.Thread]
		count[c.Thread]++
		k := queueKey(c.Provider, pl.forms[i].key)
		pl.queues[k] = append(pl.queues[k], i)
	}
	return pl
}

// Open loads the recording at path and makes its player.
func Open(path string) (*Player, error) {
	rec, err := Load(path)
	if err != nil {
		return nil, err
	}
	return NewPlayer(rec), nil
}

func queueKey(provider, key string) string { return provider + "\x00" + key }

// Recording returns the recording played.
func (pl *Player) Recording() *Recording { return pl.rec }

// Provider returns the provider serving the calls recorded under name
// (DefaultName for Config.Model); the same name gives the same provider.
func (pl *Player) Provider(name string) *Provider {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p, ok := pl.providers[name]
	if !ok {
		p = &Provider{pl: pl, name: name}
		pl.providers[name] = p
	}
	return p
}

// ServeAgent replaces the agent's providers with the player's, by the
// names Recorder.WrapAgent records them under: Provider (when set, or
// when the recording holds its name) and every entry of Providers.
func (pl *Player) ServeAgent(a *actors.Agent) {
	if name := agentProvider(a); a.Provider != nil || pl.holds(name) {
		a.Provider = pl.Provider(name)
	}
	if len(a.Providers) > 0 {
		ps := make(map[string]infinity.ModelProvider, len(a.Providers))
		for name := range a.Providers {
			ps[name] = pl.Provider(name)
		}
		a.Providers = ps
	}
}

// holds reports whether the recording has calls or models of provider.
func (pl *Player) holds(provider string) bool {
	if _, ok := pl.rec.Models[provider]; ok {
		return true
	}
	return slices.ContainsFunc(pl.rec.Calls, func(c Call) bool { return c.Provider == provider })
}

// Unused returns the recorded calls not served yet, in recorded order: a
// replay that went as recorded leaves none.
func (pl *Player) Unused() []Call {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var out []Call
	for i, s := range pl.served {
		if !s {
			out = append(out, pl.rec.Calls[i])
		}
	}
	return out
}

// Missed is closed when a request is first found missing: a replay that
// waits for a tree can stop there (a child's miss never reaches the
// root's answer). Err returns that first miss.
func (pl *Player) Missed() <-chan struct{} { return pl.missed }

// Err returns the first request found missing (a *NotRecordedError), or
// nil.
func (pl *Player) Err() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.miss
}

// take serves the next recording of the request whose matching form is f.
func (pl *Player) take(provider string, thread infinity.ThreadID, f form) (int, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	nth := pl.asked[thread]
	pl.asked[thread]++
	k := queueKey(provider, f.key)
	if q := pl.queues[k]; len(q) > 0 {
		pl.queues[k] = q[1:]
		pl.served[q[0]] = true
		return q[0], nil
	}
	e := &NotRecordedError{Provider: provider, Thread: thread}
	times := 0
	for i, c := range pl.rec.Calls {
		if c.Provider == provider && pl.forms[i].key == f.key {
			times++
			e.Nearest = &pl.rec.Calls[i]
		}
	}
	if times > 0 {
		e.Why = fmt.Sprintf("the recording holds this request %d %s and each was served; it was asked once more (the recorded run asked it fewer times)", times, plural(times, "time", "times"))
	} else if i := pl.nearest(provider, f, nth); i < 0 {
		e.Why = fmt.Sprintf("the recording holds no call of this provider (it holds %s)", strings.Join(pl.providerNames(), ", "))
	} else {
		e.Nearest = &pl.rec.Calls[i]
		e.Diff = lineDiff(pl.forms[i].lines, f.lines)
		e.Why = fmt.Sprintf("the recording does not hold this request (the thread's call %d); the nearest recorded request, call %d, differs in these lines", nth+1, e.Nearest.Seq)
	}
	if pl.miss == nil {
		pl.miss = e
		close(pl.missed)
	}
	return -1, e
}

// nearest returns the recorded call of provider most like f: of the same
// stack when there is one (same depth, same chosen ids), the most lines
// alike at its start and end; then unserved, then the asking thread's
// same call number, then the earliest. -1: none.
func (pl *Player) nearest(provider string, f form, nth int) int {
	best, bestScore := -1, [4]int{}
	for i, c := range pl.rec.Calls {
		if c.Provider != provider {
			continue
		}
		g := pl.forms[i]
		score := [4]int{b2i(g.lines[3] == f.lines[3]), commonEnds(g.lines, f.lines), b2i(!pl.served[i]), b2i(pl.nth[i] == nth)}
		if best < 0 || greater(score, bestScore) {
			best, bestScore = i, score
		}
	}
	return best
}

func greater(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// commonEnds counts the lines a and b share at their start and end.
func commonEnds(a, b []string) int {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	return pre + suf
}

func (pl *Player) providerNames() []string {
	seen := map[string]bool{}
	var names []string
	for _, c := range pl.rec.Calls {
		if !seen[c.Provider] {
			seen[c.Provider] = true
			names = append(names, strconv.Quote(c.Provider))
		}
	}
	if len(names) == 0 {
		return []string{"no calls"}
	}
	return names
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Provider is an infinity.ModelProvider that serves a recording's calls of
// one provider name, offline: a request whose matching form was recorded
// gets the recorded response (or error), with the names of the recorded
// run (thread and call ids) put back as the asking run's; any other
// request fails with a *NotRecordedError.
type Provider struct {
	pl   *Player
	name string
}

var _ infinity.ModelProvider = (*Provider)(nil)

// Models returns the model list recorded for the provider; an error
// wrapping ErrNotRecorded when there is none.
func (p *Provider) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ms, ok := p.pl.rec.Models[p.name]
	if !ok {
		return nil, fmt.Errorf("replay: provider %q: no model list recorded (the recording has lists for %q): %w", p.name, sortedKeys(p.pl.rec.Models), ErrNotRecorded)
	}
	return slices.Clone(ms), nil
}

// Instant reports true: a recorded answer comes at once.
func (p *Provider) Instant() bool { return true }

// Stream serves the recording of req: its text as one StreamText, its
// calls, then StreamDone with the recorded usage and stop reason; or the
// recorded error (matching infinity.ErrRetryable when the original did).
func (p *Provider) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		r := NewRequest(req)
		f := matchForm(p.name, req.Stack, &r)
		i, err := p.pl.take(p.name, req.Thread, f)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		c, from := &p.pl.rec.Calls[i], p.pl.forms[i].sym
		if c.Error != nil {
			yield(infinity.StreamEvent{}, c.Error.err())
			return
		}
		resp := c.Response
		if resp.Text != "" {
			if !yield(infinity.StreamEvent{Kind: infinity.StreamText, Text: translate(resp.Text, from, f.sym)}, nil) {
				return
			}
		}
		for _, rc := range resp.Calls {
			call := rc.toolCall()
			if len(call.Args) > 0 {
				call.Args = json.RawMessage(translate(string(call.Args), from, f.sym))
			}
			if !yield(infinity.StreamEvent{Kind: infinity.StreamToolCall, Call: call}, nil) {
				return
			}
		}
		yield(infinity.StreamEvent{Kind: infinity.StreamDone, Usage: resp.Usage, Stop: resp.Stop}, nil)
	}
}
