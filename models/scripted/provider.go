package scripted

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/infinity-runtime/infinity"
)

// ErrNoMatch is wrapped by the error of a request no rule answers.
var ErrNoMatch = errors.New("no rule matched")

// Provider is a deterministic infinity.ModelProvider that answers from a
// Script. It is safe for concurrent use.
type Provider struct {
	model  string
	window int
	rules  []compiled

	mu   sync.Mutex
	used []int // times each rule was chosen, for Times budgets
}

var _ infinity.ModelProvider = (*Provider)(nil)

// Instant reports whether every reply comes at once (no rule has a Delay):
// the runtime then keeps the slice on its worker instead of letting it wait
// for the answer without one.
func (p *Provider) Instant() bool {
	for _, r := range p.rules {
		if r.Reply.Delay > 0 {
			return false
		}
	}
	return true
}

type compiled struct {
	Rule
	calls []compiledCall
}

type compiledCall struct {
	name string
	args tmplArgs
}

// New validates s (see Script.Validate), applies the defaults and returns a
// provider serving it. The provider keeps its own copy of the rules.
func New(s Script) (*Provider, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{model: s.Model, window: s.ContextWindow, used: make([]int, len(s.Rules))}
	if p.model == "" {
		p.model = DefaultModel
	}
	if p.window == 0 {
		p.window = DefaultContextWindow
	}
	p.rules = make([]compiled, len(s.Rules))
	for i, r := range s.Rules {
		c := compiled{Rule: r}
		c.When = copyMatch(r.When)
		c.Reply.Calls = nil
		for _, cs := range r.Reply.Calls {
			a, err := parseArgs(cs.Args)
			if err != nil { // Validate checked it already
				return nil, invalidf("%s: reply.calls: %v", ruleLabel(i, r.Name), err)
			}
			c.calls = append(c.calls, compiledCall{name: cs.Name, args: a})
		}
		p.rules[i] = c
	}
	return p, nil
}

func copyMatch(m Match) Match {
	if m.Depth != nil {
		m.Depth = new(*m.Depth)
	}
	if m.MinDepth != nil {
		m.MinDepth = new(*m.MinDepth)
	}
	if m.Count != nil {
		m.Count = new(*m.Count)
	}
	return m
}

// Models returns the one model the script serves.
func (p *Provider) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return []infinity.ModelInfo{{ID: p.model, ContextWindow: p.window, MaxOutput: MaxOutput}}, nil
}

// Stream answers req with the first rule that matches it and whose Times
// budget is not used up. The rule is chosen (and its budget consumed) when
// the sequence is ranged over; ranging again runs another completion.
//
// A reply streams its text as word-sized StreamText deltas, then one
// StreamToolCall per call, then StreamDone with StopToolUse (calls) or
// StopEnd (none) and an estimated Usage. An Error reply yields its error
// first, or after the text with MidStream. A request no rule answers yields
// an error wrapping ErrNoMatch; a request for another model yields one
// wrapping infinity.ErrInvalid. A cancelled ctx yields ctx.Err().
func (p *Provider) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		if req.Model != "" && req.Model != p.model {
			yield(infinity.StreamEvent{}, fmt.Errorf("scripted: model %q is not served (this script serves %q): %w", req.Model, p.model, infinity.ErrInvalid))
			return
		}
		v := newView(&req)
		r, err := p.choose(v)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		if d := time.Duration(r.Reply.Delay); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				yield(infinity.StreamEvent{}, ctx.Err())
				return
			case <-t.C:
			}
		}
		// emit yields ev unless ctx is done, in which case it yields the
		// context's error; it reports whether to go on.
		emit := func(ev infinity.StreamEvent, err error) bool {
			if cerr := ctx.Err(); cerr != nil {
				yield(infinity.StreamEvent{}, cerr)
				return false
			}
			return yield(ev, err) && err == nil
		}
		var replyErr error
		if r.Reply.Error != "" {
			replyErr = &replyError{msg: r.Reply.Error, retryable: r.Reply.Retryable}
			if !r.Reply.MidStream {
				emit(infinity.StreamEvent{}, replyErr)
				return
			}
		}
		text := v.vars.expand(r.Reply.Text)
		for chunk := range chunks(text) {
			if !emit(infinity.StreamEvent{Kind: infinity.StreamText, Text: chunk}, nil) {
				return
			}
		}
		if replyErr != nil {
			emit(infinity.StreamEvent{}, replyErr)
			return
		}
		out := utf8.RuneCountInString(text)
		for i, c := range r.calls {
			call := &infinity.ToolCall{ID: CallID(req.Thread, len(req.Items), i), Name: c.name, Args: c.args.render(&v.vars)}
			out += utf8.RuneCountInString(call.Name) + utf8.RuneCount(call.Args)
			if !emit(infinity.StreamEvent{Kind: infinity.StreamToolCall, Call: call}, nil) {
				return
			}
		}
		stop := infinity.StopEnd
		if len(r.calls) > 0 {
			stop = infinity.StopToolUse
		}
		emit(infinity.StreamEvent{Kind: infinity.StreamDone, Stop: stop, Usage: infinity.Usage{Input: tokens(inputChars(&req)), Output: tokens(out)}}, nil)
	}
}

// CallID returns the id of the index-th call of the response to a request
// of thread with items history items: "call_" and 16 hex digits of a
// SHA-256 over the three, so a re-run of a request gets the same ids.
func CallID(thread infinity.ThreadID, items, index int) string {
	h := sha256.New()
	h.Write([]byte(thread))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(items), 10))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	var sum [sha256.Size]byte
	return "call_" + hex.EncodeToString(h.Sum(sum[:0])[:8])
}

// choose picks the rule answering v and consumes its budget.
func (p *Provider) choose(v *view) (*compiled, error) {
	for i := range p.rules {
		r := &p.rules[i]
		if r.Times > 0 && p.exhausted(i) {
			continue
		}
		if !v.matches(&r.When) || (r.If != nil && !r.If(*v.req)) {
			continue
		}
		if r.Times > 0 {
			p.mu.Lock()
			ok := p.used[i] < r.Times
			if ok {
				p.used[i]++
			}
			p.mu.Unlock()
			if !ok { // a concurrent request took the last use
				continue
			}
		}
		return r, nil
	}
	return nil, fmt.Errorf("scripted: %w for %s", ErrNoMatch, v.describe())
}

func (p *Provider) exhausted(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used[i] >= p.rules[i].Times
}

// replyError is a scripted failure; its message is the script's.
type replyError struct {
	msg       string
	retryable bool
}

func (e *replyError) Error() string { return e.msg }

func (e *replyError) Unwrap() error {
	if e.retryable {
		return infinity.ErrRetryable
	}
	return nil
}

// view is a request prepared for matching.
type view struct {
	req   *infinity.CompletionRequest
	vars  vars
	last  *infinity.Item
	names map[string]string // call id -> tool name, built on first use
}

func newView(req *infinity.CompletionRequest) *view {
	v := &view{req: req, vars: newVars(*req)}
	if n := len(req.Items); n > 0 {
		v.last = &req.Items[n-1]
	}
	return v
}

// callName returns the name of the call with id among the items.
func (v *view) callName(id string) string {
	if v.names == nil {
		v.names = make(map[string]string)
		for _, it := range v.req.Items {
			if it.Kind == infinity.KindToolCall && it.Call != nil {
				v.names[it.Call.ID] = it.Call.Name
			}
		}
	}
	return v.names[id]
}

// resultTool returns the tool name a tool-result item answers, or "".
func (v *view) resultTool(it *infinity.Item) string {
	if it.Kind != infinity.KindToolResult || it.Result == nil {
		return ""
	}
	return v.callName(it.Result.CallID)
}

// itemText is the text Match looks at: a result's text for tool results,
// Item.Text otherwise.
func itemText(it *infinity.Item) string {
	if it.Kind == infinity.KindToolResult && it.Result != nil {
		return it.Result.Text()
	}
	return it.Text
}

func (v *view) matches(m *Match) bool {
	d := v.vars.depth
	if m.Depth != nil && d != *m.Depth || m.MinDepth != nil && d < *m.MinDepth {
		return false
	}
	if m.System != "" && !strings.Contains(v.req.System, m.System) {
		return false
	}
	if m.Last != "" || m.LastTool != "" || m.LastText != "" {
		if v.last == nil ||
			m.Last != "" && v.last.Kind.String() != m.Last ||
			m.LastTool != "" && v.resultTool(v.last) != m.LastTool ||
			m.LastText != "" && !strings.Contains(itemText(v.last), m.LastText) {
			return false
		}
	}
	if m.Contains != "" && !v.contains(m.Contains) {
		return false
	}
	if m.Count != nil && m.Count.Min > 0 && !v.answered(m.Count.Tool, m.Count.Min) {
		return false
	}
	return true
}

func (v *view) contains(s string) bool {
	for i := range v.req.Items {
		it := &v.req.Items[i]
		switch it.Kind {
		case infinity.KindUser, infinity.KindAssistant, infinity.KindToolResult:
			if strings.Contains(itemText(it), s) {
				return true
			}
		}
	}
	return false
}

// answered reports whether at least min distinct calls named tool have a
// result among the items.
func (v *view) answered(tool string, min int) bool {
	seen := make(map[string]bool)
	for i := range v.req.Items {
		it := &v.req.Items[i]
		if v.resultTool(it) == tool && !seen[it.Result.CallID] {
			seen[it.Result.CallID] = true
			if len(seen) >= min {
				return true
			}
		}
	}
	return false
}

// describe summarises the request for the no-match error.
func (v *view) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "depth %d, %d items, ", v.vars.depth, len(v.req.Items))
	if v.last == nil {
		b.WriteString("no last item")
		return b.String()
	}
	fmt.Fprintf(&b, "last item %s", v.last.Kind)
	switch {
	case v.last.Kind == infinity.KindToolCall && v.last.Call != nil:
		fmt.Fprintf(&b, " %q", v.last.Call.Name)
	case v.last.Kind == infinity.KindToolResult:
		if name := v.resultTool(v.last); name != "" {
			fmt.Fprintf(&b, " for %q", name)
		} else {
			b.WriteString(" for an unknown call")
		}
	}
	fmt.Fprintf(&b, ": %q", clip(itemText(v.last), 80))
	return b.String()
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// chunks splits s into word-sized pieces (a word and the space after it)
// whose concatenation is s. An empty s yields nothing.
func chunks(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start, inWord, sawWord := 0, false, false
		for i, r := range s {
			space := unicode.IsSpace(r)
			if !space && !inWord && sawWord {
				if !yield(s[start:i]) {
					return
				}
				start = i
			}
			sawWord = sawWord || !space
			inWord = !space
		}
		if start < len(s) {
			yield(s[start:])
		}
	}
}

// inputChars counts the characters of the system prompt and the items.
func inputChars(req *infinity.CompletionRequest) int {
	n := utf8.RuneCountInString(req.System)
	for i := range req.Items {
		it := &req.Items[i]
		n += utf8.RuneCountInString(it.Text)
		if it.Call != nil {
			n += utf8.RuneCountInString(it.Call.Name) + utf8.RuneCount(it.Call.Args)
		}
		if it.Result != nil {
			n += utf8.RuneCountInString(it.Result.Text())
		}
	}
	return n
}

// tokens estimates tokens as a quarter of the characters, at least 1.
func tokens(chars int) int { return max(chars/4, 1) }
