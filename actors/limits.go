package actors

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// ModelLimit bounds the calls to one provider ("openai") or one model
// ("openai/gpt-4.1"), shared by every thread of the runtime. A zero field
// sets no bound. A model with a limit of its own is bound by it instead of
// its provider's (the two are not added up). When calls queue for a
// limit, root threads take turns: the next call to go is the oldest
// waiting one of the tree after the one that went last, so a busy tree
// cannot starve the others. A call is charged against the rates when the
// limit lets it go, before it waits for a place under
// Config.MaxModelCalls.
type ModelLimit struct {
	// Concurrent bounds the calls in flight at once.
	Concurrent int `json:"concurrent,omitempty"`
	// RPM bounds the calls started per minute (spread evenly: a second's
	// worth may start at once).
	RPM int `json:"rpm,omitempty"`
	// TPM bounds the tokens per minute, input and output: a call is
	// charged an estimate before it starts (a quarter of the request's
	// characters, plus its output limit) and corrected from its usage
	// after.
	TPM int `json:"tpm,omitempty"`
}

func (l ModelLimit) zero() bool { return l == ModelLimit{} }

// String is the limit as the daemon's flag spells it.
func (l ModelLimit) String() string {
	var parts []string
	if l.Concurrent > 0 {
		parts = append(parts, fmt.Sprintf("concurrent=%d", l.Concurrent))
	}
	if l.RPM > 0 {
		parts = append(parts, fmt.Sprintf("rpm=%d", l.RPM))
	}
	if l.TPM > 0 {
		parts = append(parts, fmt.Sprintf("tpm=%d", l.TPM))
	}
	return strings.Join(parts, ",")
}

// limiter holds the runtime's model limits and the calls waiting for them.
type limiter struct {
	now func() time.Time
	mu  sync.Mutex
	// gates by key: "provider" or "provider/model".
	gates map[string]*gate
	// waiting maps the threads whose call waits to the key it waits for.
	waiting map[infinity.ThreadID]string
}

func newLimiter(now func() time.Time, limits map[string]ModelLimit) *limiter {
	l := &limiter{now: now, gates: map[string]*gate{}, waiting: map[infinity.ThreadID]string{}}
	for k, v := range limits {
		l.set(k, v)
	}
	return l
}

// set sets (or, with a zero limit, removes) the limit of key.
func (l *limiter) set(key string, lim ModelLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gates[key]
	if lim.zero() && (g == nil || !g.paused.After(l.now())) {
		if g != nil {
			g.lim = lim
			l.grantLocked(g) // let its waiters go
			delete(l.gates, key)
		}
		return
	}
	if g == nil {
		g = l.newGateLocked(key, lim)
	}
	g.lim = lim
	l.grantLocked(g)
}

func (l *limiter) newGateLocked(key string, lim ModelLimit) *gate {
	now := l.now()
	g := &gate{key: key, queues: map[infinity.ThreadID][]*waiter{}, reqAt: now, tokAt: now, lim: lim}
	g.req, g.tok = burst(lim.RPM), float64(lim.TPM)
	l.gates[key] = g
	return g
}

// pause holds every call to a provider, and to each of its limited
// models, for d: the provider is throttling.
func (l *limiter) pause(provider string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.now().Add(d)
	if l.gates[provider] == nil {
		l.newGateLocked(provider, ModelLimit{})
	}
	for key, g := range l.gates {
		if key == provider || strings.HasPrefix(key, provider+"/") {
			if until.After(g.paused) {
				g.paused = until
			}
			l.grantLocked(g)
		}
	}
}

// providerOf is the provider part of a model name ("openai/gpt-4.1" →
// "openai"); a bare model id is its own.
func providerOf(model string) string {
	p, _, _ := strings.Cut(model, "/")
	return p
}

// burst is how many calls of an RPM limit may start at once: a second's
// worth, at least one.
func burst(rpm int) float64 { return max(1, float64(rpm)/60) }

// gate is one limit's state.
type gate struct {
	key      string
	lim      ModelLimit
	inFlight int
	// req and tok are token buckets: calls and model tokens available now,
	// refilled since reqAt and tokAt.
	req, tok     float64
	reqAt, tokAt time.Time
	// queues are the waiting calls by root; order is the roots' turn.
	queues map[infinity.ThreadID][]*waiter
	order  []infinity.ThreadID
	timer  *time.Timer
	// paused holds every call until then: the provider said it is
	// throttling (HTTP 429).
	paused time.Time
}

type waiter struct {
	thread infinity.ThreadID
	root   infinity.ThreadID
	est    int
	ready  chan struct{}
}

// gateFor returns the gate of a model name ("provider/model"): the
// model's own, else its provider's; nil when neither is limited.
func (l *limiter) gateFor(model string) *gate {
	if g := l.gates[model]; g != nil {
		return g
	}
	if p, _, ok := strings.Cut(model, "/"); ok {
		return l.gates[p]
	}
	return nil
}

// acquire waits for model's limit to let a call of an estimated est tokens
// start, the roots taking turns, and returns the function that ends the
// call with its usage.
func (l *limiter) acquire(ctx context.Context, model string, thread, root infinity.ThreadID, est int, block func() func()) (func(infinity.Usage), error) {
	l.mu.Lock()
	g := l.gateFor(model)
	if g == nil {
		l.mu.Unlock()
		return func(infinity.Usage) {}, nil
	}
	w := &waiter{thread: thread, root: root, est: est, ready: make(chan struct{})}
	if len(g.queues[root]) == 0 {
		g.order = append(g.order, root)
	}
	g.queues[root] = append(g.queues[root], w)
	l.waiting[thread] = g.key
	l.grantLocked(g)
	l.mu.Unlock()
	if block != nil {
		select {
		case <-w.ready: // granted at once: no wait
		default:
			defer block()()
		}
	}
	select {
	case <-w.ready:
	case <-ctx.Done():
		l.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			l.endLocked(g, w.est, infinity.Usage{})
		default:
			l.dropLocked(g, w)
		}
		l.mu.Unlock()
		return nil, ctx.Err()
	}
	return func(u infinity.Usage) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.endLocked(g, est, u)
	}, nil
}

// endLocked ends a granted call: its place is free, and its token charge
// is corrected from what it used (an unused estimate is given back).
func (l *limiter) endLocked(g *gate, est int, u infinity.Usage) {
	g.inFlight--
	if g.lim.TPM > 0 {
		// A failed call reports no usage: its estimate is given back.
		g.tok += float64(est - (u.Input + u.Output))
	}
	l.grantLocked(g)
}

// dropLocked removes a waiter that gave up.
func (l *limiter) dropLocked(g *gate, w *waiter) {
	q := g.queues[w.root]
	for i, x := range q {
		if x == w {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(g.queues, w.root)
		for i, r := range g.order {
			if r == w.root {
				g.order = append(g.order[:i:i], g.order[i+1:]...)
				break
			}
		}
	} else {
		g.queues[w.root] = q
	}
	delete(l.waiting, w.thread)
	l.grantLocked(g) // the one behind may go now
}

// refill adds what the buckets earned since they were last read.
func (g *gate) refill(now time.Time) {
	if g.lim.RPM > 0 {
		g.req = min(burst(g.lim.RPM), g.req+now.Sub(g.reqAt).Minutes()*float64(g.lim.RPM))
	}
	if g.lim.TPM > 0 {
		g.tok = min(float64(g.lim.TPM), g.tok+now.Sub(g.tokAt).Minutes()*float64(g.lim.TPM))
	}
	g.reqAt, g.tokAt = now, now
}

// grantLocked lets waiting calls start while the limit allows, the roots
// in turn; when a rate stops them, a timer calls it again once the bucket
// has refilled enough.
func (l *limiter) grantLocked(g *gate) {
	now := l.now()
	g.refill(now)
	if len(g.order) > 0 && now.Before(g.paused) {
		l.retryLocked(g, g.paused.Sub(now))
		return
	}
	if g.lim.zero() && len(g.order) == 0 && !now.Before(g.paused) && l.gates[g.key] == g {
		delete(l.gates, g.key) // a pause that is over, with no limit: calls need not queue here
		return
	}
	for len(g.order) > 0 {
		root := g.order[0]
		w := g.queues[root][0]
		var wait time.Duration
		switch {
		case g.lim.Concurrent > 0 && g.inFlight >= g.lim.Concurrent:
			return // an ending call grants again
		case g.lim.RPM > 0 && g.req < 1:
			wait = time.Duration((1 - g.req) / float64(g.lim.RPM) * float64(time.Minute))
		case g.lim.TPM > 0 && g.tok < float64(min(w.est, g.lim.TPM)):
			wait = time.Duration((float64(min(w.est, g.lim.TPM)) - g.tok) / float64(g.lim.TPM) * float64(time.Minute))
		}
		if wait > 0 {
			l.retryLocked(g, wait)
			return
		}
		if g.lim.RPM > 0 {
			g.req--
		}
		if g.lim.TPM > 0 {
			g.tok -= float64(w.est)
		}
		g.inFlight++
		g.queues[root] = g.queues[root][1:]
		g.order = g.order[1:]
		if len(g.queues[root]) > 0 {
			g.order = append(g.order, root) // its next call goes after the others' turn
		} else {
			delete(g.queues, root)
		}
		delete(l.waiting, w.thread)
		close(w.ready)
	}
}

// retryLocked arms the gate's timer to grant again after wait.
func (l *limiter) retryLocked(g *gate, wait time.Duration) {
	wait = max(wait, time.Millisecond)
	if g.timer != nil {
		g.timer.Stop()
	}
	g.timer = time.AfterFunc(wait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.grantLocked(g)
	})
}

// current returns the limits set, by key.
func (l *limiter) current() map[string]ModelLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]ModelLimit{}
	for k, g := range l.gates {
		if !g.lim.zero() {
			out[k] = g.lim
		}
	}
	return out
}

// waitingFor returns the limit key a thread's call waits for, if it does.
func (l *limiter) waitingFor(id infinity.ThreadID) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, ok := l.waiting[id]
	return k, ok
}

// estimate is what a request is charged against a TPM limit before it
// runs: a quarter of its characters, plus its output limit.
func estimate(req *infinity.CompletionRequest) int {
	n := len(req.System)
	for _, it := range req.Items {
		n += len(it.Text)
		if it.Call != nil {
			n += len(it.Call.Args) + len(it.Call.Name)
		}
		if it.Result != nil {
			for _, p := range it.Result.Parts {
				n += len(p.Text)
			}
		}
	}
	for _, t := range req.Tools {
		n += len(t.Name) + len(t.Description) + len(t.Schema)
	}
	return n/4 + req.MaxTokens
}
