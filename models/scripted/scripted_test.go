package scripted

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

func TestMatch(t *testing.T) {
	child := func(items ...infinity.Item) infinity.CompletionRequest {
		return infinity.CompletionRequest{Thread: "kid", Stack: []infinity.ThreadID{"root", "kid"}, Items: items}
	}
	grandchild := infinity.CompletionRequest{Thread: "g", Stack: []infinity.ThreadID{"root", "kid", "g"}, Items: []infinity.Item{userItem("hi")}}
	sleepDone := []infinity.Item{userItem("go"), callItem("c1", "sleep", `{}`), resultItem("c1", "slept 2s")}
	twoReports := []infinity.Item{
		userItem("go"),
		callItem("i1", "receive_event__injected", `{}`), resultItem("i1", "report one"),
		callItem("s1", "sleep", `{}`), resultItem("s1", "slept"),
		callItem("i2", "receive_event__injected", `{}`), resultItem("i2", "pending"), resultItem("i2", "report two"),
	}
	tests := []struct {
		name  string
		match Match
		req   infinity.CompletionRequest
		want  bool
	}{
		{"empty match, empty request", Match{}, infinity.CompletionRequest{}, true},
		{"empty match", Match{}, rootReq(userItem("hi")), true},
		{"depth 0 root", Match{Depth: new(0)}, rootReq(userItem("hi")), true},
		{"depth 0 child", Match{Depth: new(0)}, child(userItem("hi")), false},
		{"depth 1 child", Match{Depth: new(1)}, child(userItem("hi")), true},
		{"depth 0 without stack", Match{Depth: new(0)}, infinity.CompletionRequest{Thread: "t", Items: []infinity.Item{userItem("hi")}}, true},
		{"min_depth 1 root", Match{MinDepth: new(1)}, rootReq(userItem("hi")), false},
		{"min_depth 1 child", Match{MinDepth: new(1)}, child(userItem("hi")), true},
		{"min_depth 1 grandchild", Match{MinDepth: new(1)}, grandchild, true},
		{"last user", Match{Last: "user"}, rootReq(userItem("hi")), true},
		{"last user, is result", Match{Last: "user"}, rootReq(sleepDone...), false},
		{"last tool_result", Match{Last: "tool_result"}, rootReq(sleepDone...), true},
		{"last assistant", Match{Last: "assistant"}, rootReq(userItem("hi"), assistantItem("yo")), true},
		{"last tool_call", Match{Last: "tool_call"}, rootReq(userItem("hi"), callItem("c", "x", `{}`)), true},
		{"last on empty history", Match{Last: "user"}, rootReq(), false},
		{"last_tool sleep", Match{LastTool: "sleep"}, rootReq(sleepDone...), true},
		{"last_tool other", Match{LastTool: "spawn_thread"}, rootReq(sleepDone...), false},
		{"last_tool on user", Match{LastTool: "sleep"}, rootReq(userItem("sleep")), false},
		{"last_tool unknown call", Match{LastTool: "sleep"}, rootReq(resultItem("nope", "x")), false},
		{"last_text in user", Match{LastText: "ell"}, rootReq(userItem("hello")), true},
		{"last_text in result", Match{LastText: "2s"}, rootReq(sleepDone...), true},
		{"last_text earlier only", Match{LastText: "go"}, rootReq(sleepDone...), false},
		{"contains earlier user", Match{Contains: "go"}, rootReq(sleepDone...), true},
		{"contains result", Match{Contains: "slept"}, rootReq(sleepDone...), true},
		{"contains assistant", Match{Contains: "yo"}, rootReq(userItem("hi"), assistantItem("yo")), true},
		{"contains skips call args", Match{Contains: "secret"}, rootReq(userItem("hi"), callItem("c", "x", `{"a":"secret"}`)), false},
		{"contains absent", Match{Contains: "zzz"}, rootReq(sleepDone...), false},
		{"count met", Match{Count: &Count{Tool: "receive_event__injected", Min: 2}}, rootReq(twoReports...), true},
		{"count not met", Match{Count: &Count{Tool: "receive_event__injected", Min: 3}}, rootReq(twoReports...), false},
		{"count other tool", Match{Count: &Count{Tool: "sleep", Min: 1}}, rootReq(twoReports...), true},
		{"count unanswered call", Match{Count: &Count{Tool: "x", Min: 1}}, rootReq(callItem("c", "x", `{}`)), false},
		{"count min 0", Match{Count: &Count{Tool: "x", Min: 0}}, rootReq(), true},
		{"system", Match{System: "pirate"}, infinity.CompletionRequest{System: "You are a pirate.", Items: []infinity.Item{userItem("hi")}}, true},
		{"system absent", Match{System: "pirate"}, rootReq(userItem("hi")), false},
		{"all fields", Match{Depth: new(0), MinDepth: new(0), Last: "tool_result", LastTool: "sleep", LastText: "slept", Contains: "go", Count: &Count{Tool: "sleep", Min: 1}}, rootReq(sleepDone...), true},
		{"all fields but one", Match{Depth: new(0), Last: "tool_result", LastTool: "sleep", LastText: "slept", Contains: "nope"}, rootReq(sleepDone...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, Script{Rules: []Rule{{When: tt.match, Reply: Reply{Text: "matched"}}}})
			r := collect(t, p.Stream(context.Background(), tt.req))
			if got := r.err == nil; got != tt.want {
				t.Fatalf("matched = %v, want %v (err %v)", got, tt.want, r.err)
			}
			if !tt.want && !errors.Is(r.err, ErrNoMatch) {
				t.Fatalf("err = %v, want ErrNoMatch", r.err)
			}
		})
	}
}

func TestIfPredicate(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{
		{Name: "big", If: func(r infinity.CompletionRequest) bool { return r.MaxTokens > 100 }, Reply: Reply{Text: "big"}},
		{Name: "small", Reply: Reply{Text: "small"}},
	}})
	for _, tt := range []struct {
		max  int
		want string
	}{{1000, "big"}, {10, "small"}} {
		r := stream(t, p, infinity.CompletionRequest{MaxTokens: tt.max})
		if r.text != tt.want {
			t.Errorf("MaxTokens %d: text %q, want %q", tt.max, r.text, tt.want)
		}
	}
}

func TestTimes(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  []string // "text" or "err:retryable" / "err"
	}{
		{
			name: "retryable error once, then the next rule",
			rules: []Rule{
				{Name: "flaky", Times: 1, Reply: Reply{Error: "overloaded", Retryable: true}},
				{Name: "ok", Reply: Reply{Text: "fine"}},
			},
			want: []string{"err:retryable", "fine", "fine"},
		},
		{
			name: "twice then fallback",
			rules: []Rule{
				{Times: 2, Reply: Reply{Text: "one"}},
				{Reply: Reply{Text: "two"}},
			},
			want: []string{"one", "one", "two"},
		},
		{
			name: "budget used up and nothing else",
			rules: []Rule{
				{Times: 1, Reply: Reply{Text: "once"}},
			},
			want: []string{"once", "err", "err"},
		},
		{
			name: "budget only consumed when matched",
			rules: []Rule{
				{Times: 1, When: Match{Contains: "never"}, Reply: Reply{Text: "never"}},
				{Reply: Reply{Text: "always"}},
			},
			want: []string{"always", "always"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, Script{Rules: tt.rules})
			for i, want := range tt.want {
				r := stream(t, p, rootReq(userItem("hi")))
				got := r.text
				if r.err != nil {
					got = "err"
					if errors.Is(r.err, infinity.ErrRetryable) {
						got = "err:retryable"
					}
				}
				if got != want {
					t.Fatalf("request %d: got %q (err %v), want %q", i, got, r.err, want)
				}
			}
		})
	}
}

func TestTimesConcurrent(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{
		{Times: 5, Reply: Reply{Text: "limited"}},
		{Reply: Reply{Text: "rest"}},
	}})
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r := stream(t, p, rootReq(userItem("hi")))
			mu.Lock()
			counts[r.text]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["limited"] != 5 || counts["rest"] != 45 {
		t.Fatalf("counts = %v, want 5 limited and 45 rest", counts)
	}
}

func TestReplyEvents(t *testing.T) {
	tests := []struct {
		name      string
		reply     Reply
		deltas    []string
		calls     string
		stop      infinity.StopReason
		err       string
		retryable bool
	}{
		{name: "text only", reply: Reply{Text: "Hello there, world."}, deltas: []string{"Hello ", "there, ", "world."}, stop: infinity.StopEnd},
		{name: "empty reply", reply: Reply{}, stop: infinity.StopEnd},
		{name: "one call", reply: Reply{Calls: []CallSpec{{Name: "sleep"}}}, calls: "sleep", stop: infinity.StopToolUse},
		{
			name:   "text and parallel calls",
			reply:  Reply{Text: "Working.", Calls: []CallSpec{{Name: "a"}, {Name: "b", Args: json.RawMessage(`{"x":1}`)}, {Name: "c"}}},
			deltas: []string{"Working."}, calls: "a,b,c", stop: infinity.StopToolUse,
		},
		{name: "error first", reply: Reply{Text: "never seen", Error: "boom"}, err: "boom"},
		{name: "retryable error", reply: Reply{Error: "throttled", Retryable: true}, err: "throttled", retryable: true},
		{name: "mid-stream error", reply: Reply{Text: "partial answer", Error: "connection reset", MidStream: true, Retryable: true}, deltas: []string{"partial ", "answer"}, err: "connection reset", retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, Script{Rules: []Rule{{Reply: tt.reply}}})
			r := stream(t, p, rootReq(userItem("hi")))
			if !reflect.DeepEqual(r.deltas, tt.deltas) {
				t.Errorf("deltas = %q, want %q", r.deltas, tt.deltas)
			}
			if got := callNames(r.calls); got != tt.calls {
				t.Errorf("calls = %q, want %q", got, tt.calls)
			}
			if tt.err != "" {
				if r.err == nil || r.err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", r.err, tt.err)
				}
				if errors.Is(r.err, infinity.ErrRetryable) != tt.retryable {
					t.Errorf("retryable = %v, want %v", !tt.retryable, tt.retryable)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("err = %v", r.err)
			}
			if r.done.Stop != tt.stop {
				t.Errorf("stop = %q, want %q", r.done.Stop, tt.stop)
			}
			if r.done.Usage.Input < 1 || r.done.Usage.Output < 1 {
				t.Errorf("usage = %+v, want at least 1 each", r.done.Usage)
			}
			ids := map[string]bool{}
			for _, c := range r.calls {
				if !strings.HasPrefix(c.ID, "call_") || len(c.ID) != len("call_")+16 || ids[c.ID] {
					t.Errorf("bad or repeated call id %q", c.ID)
				}
				ids[c.ID] = true
				if !json.Valid(c.Args) || c.Args[0] != '{' {
					t.Errorf("call %s args %s: not an object", c.Name, c.Args)
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{{Reply: Reply{Text: strings.Repeat("word ", 20)}}}})
	req := infinity.CompletionRequest{System: strings.Repeat("s", 400), Items: []infinity.Item{userItem(strings.Repeat("u", 400))}}
	r := stream(t, p, req)
	if want := (infinity.Usage{Input: 200, Output: 25}); r.done.Usage != want {
		t.Fatalf("usage = %+v, want %+v", r.done.Usage, want)
	}
	if again := stream(t, p, req); again.done.Usage != r.done.Usage {
		t.Fatalf("usage not deterministic: %+v then %+v", r.done.Usage, again.done.Usage)
	}
}

func TestChunks(t *testing.T) {
	for _, s := range []string{"", "one", "  lead", "trail  ", "a b  c\n\nd\te", "héllo wörld ☃ x", " "} {
		var got []string
		for c := range chunks(s) {
			got = append(got, c)
		}
		if strings.Join(got, "") != s {
			t.Errorf("chunks(%q) = %q: does not rebuild the text", s, got)
		}
		if want := len(strings.Fields(s)); len(got) != max(want, min(len(s), 1)) {
			t.Errorf("chunks(%q) = %q: want %d chunks", s, got, want)
		}
	}
}

func TestTemplating(t *testing.T) {
	args := `{"z":"$STACK","a":"thread $THREAD, parent $PARENT, root $ROOT, depth $DEPTH","nested":{"list":["$THREAD",1,true,null,"$STACK"],"n":2.5},"plain":"$5 <b>&","path":"at $STACK"}`
	p := mustNew(t, Script{Rules: []Rule{{Reply: Reply{
		Text:  "I am $THREAD at depth $DEPTH under $PARENT in $ROOT.",
		Calls: []CallSpec{{Name: "t", Args: json.RawMessage(args)}},
	}}}})
	tests := []struct {
		name     string
		req      infinity.CompletionRequest
		wantArgs string
		wantText string
	}{
		{
			name:     "grandchild",
			req:      infinity.CompletionRequest{Thread: "c2", Stack: []infinity.ThreadID{"r", "c1", "c2"}},
			wantArgs: `{"z":["r","c1","c2"],"a":"thread c2, parent c1, root r, depth 2","nested":{"list":["c2",1,true,null,["r","c1","c2"]],"n":2.5},"plain":"$5 <b>&","path":"at r/c1/c2"}`,
			wantText: "I am c2 at depth 2 under c1 in r.",
		},
		{
			name:     "root",
			req:      infinity.CompletionRequest{Thread: "r", Stack: []infinity.ThreadID{"r"}},
			wantArgs: `{"z":["r"],"a":"thread r, parent , root r, depth 0","nested":{"list":["r",1,true,null,["r"]],"n":2.5},"plain":"$5 <b>&","path":"at r"}`,
			wantText: "I am r at depth 0 under  in r.",
		},
		{
			name:     "no stack",
			req:      infinity.CompletionRequest{Thread: "solo"},
			wantArgs: `{"z":["solo"],"a":"thread solo, parent , root solo, depth 0","nested":{"list":["solo",1,true,null,["solo"]],"n":2.5},"plain":"$5 <b>&","path":"at solo"}`,
			wantText: "I am solo at depth 0 under  in solo.",
		},
		{
			name:     "nothing",
			req:      infinity.CompletionRequest{},
			wantArgs: `{"z":[],"a":"thread , parent , root , depth 0","nested":{"list":["",1,true,null,[]],"n":2.5},"plain":"$5 <b>&","path":"at "}`,
			wantText: "I am  at depth 0 under  in .",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := stream(t, p, tt.req)
			if got := string(r.calls[0].Args); got != tt.wantArgs {
				t.Errorf("args\n got %s\nwant %s", got, tt.wantArgs)
			}
			if r.text != tt.wantText {
				t.Errorf("text %q, want %q", r.text, tt.wantText)
			}
		})
	}
}

func TestStaticArgs(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{{Reply: Reply{Calls: []CallSpec{
		{Name: "none"},
		{Name: "null", Args: json.RawMessage(`null`)},
		{Name: "spaced", Args: json.RawMessage(" {\n \"b\": 1, \"a\": [1, 2] }\n")},
		{Name: "escaped", Args: json.RawMessage(`{"t":"\u0024THREAD"}`)},
	}}}}})
	r := stream(t, p, infinity.CompletionRequest{Thread: "x"})
	want := []string{`{}`, `{}`, `{"b":1,"a":[1,2]}`, `{"t":"x"}`}
	for i, c := range r.calls {
		if string(c.Args) != want[i] {
			t.Errorf("call %s args %s, want %s", c.Name, c.Args, want[i])
		}
	}
	// Each event owns its args.
	r.calls[0].Args[0] = 'X'
	if again := stream(t, p, infinity.CompletionRequest{Thread: "x"}); string(again.calls[0].Args) != `{}` {
		t.Fatalf("args shared between responses: %s", again.calls[0].Args)
	}
}

func TestCallIDs(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{{Reply: Reply{Calls: []CallSpec{{Name: "a"}, {Name: "b"}}}}}})
	req := func(thread infinity.ThreadID, n int) infinity.CompletionRequest {
		items := make([]infinity.Item, n)
		for i := range items {
			items[i] = userItem(fmt.Sprint("message ", i))
		}
		return infinity.CompletionRequest{Thread: thread, Stack: []infinity.ThreadID{thread}, Items: items}
	}
	ids := func(r infinity.CompletionRequest) []string {
		res := stream(t, p, r)
		return []string{res.calls[0].ID, res.calls[1].ID}
	}
	first := ids(req("t1", 3))
	tests := []struct {
		name string
		req  infinity.CompletionRequest
		same bool
	}{
		{"same request", req("t1", 3), true},
		{"other thread", req("t2", 3), false},
		{"other history length", req("t1", 4), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(tt.req)
			if got[0] == got[1] {
				t.Fatalf("calls of one response share id %s", got[0])
			}
			if same := reflect.DeepEqual(got, first); same != tt.same {
				t.Fatalf("ids %v vs %v: same = %v, want %v", got, first, same, tt.same)
			}
		})
	}
	if got, want := CallID("t1", 3, 0), first[0]; got != want {
		t.Fatalf("CallID = %s, stream used %s", got, want)
	}
}

func TestNoRuleMatched(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{{When: Match{Last: "user"}, Reply: Reply{Text: "hi"}}}})
	tests := []struct {
		name  string
		req   infinity.CompletionRequest
		wants []string
	}{
		{"tool result", infinity.CompletionRequest{Thread: "c", Stack: []infinity.ThreadID{"r", "c"}, Items: []infinity.Item{
			userItem("go"), callItem("s", "sleep", `{"seconds":3}`), resultItem("s", "Slept for 3 seconds."),
		}}, []string{"no rule matched", "depth 1", "3 items", "tool_result", `"sleep"`, "Slept for 3 seconds."}},
		{"empty", infinity.CompletionRequest{}, []string{"no rule matched", "0 items", "no last item"}},
		{"tool call", rootReq(callItem("x", "spawn_thread", `{}`)), []string{"tool_call", `"spawn_thread"`}},
		{"long text", rootReq(assistantItem(strings.Repeat("ab", 100))), []string{"assistant", "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := stream(t, p, tt.req)
			if !errors.Is(r.err, ErrNoMatch) || errors.Is(r.err, infinity.ErrRetryable) {
				t.Fatalf("err = %v, want ErrNoMatch, not retryable", r.err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q lacks %q", r.err, w)
				}
			}
			if len(r.events) != 0 {
				t.Errorf("events before the error: %v", r.events)
			}
		})
	}
}

func TestModels(t *testing.T) {
	for _, tt := range []struct {
		s    Script
		want infinity.ModelInfo
	}{
		{Script{Rules: []Rule{{}}}, infinity.ModelInfo{ID: "scripted", ContextWindow: 200000, MaxOutput: 8192}},
		{Script{Model: "m", ContextWindow: 1000, Rules: []Rule{{}}}, infinity.ModelInfo{ID: "m", ContextWindow: 1000, MaxOutput: 8192}},
	} {
		got, err := mustNew(t, tt.s).Models(context.Background())
		if err != nil || len(got) != 1 || got[0] != tt.want {
			t.Errorf("Models = %v, %v; want [%v]", got, err, tt.want)
		}
	}
}

func TestModelMismatch(t *testing.T) {
	p := mustNew(t, Script{Model: "m", Rules: []Rule{{Reply: Reply{Text: "ok"}}}})
	if r := stream(t, p, infinity.CompletionRequest{Model: "m"}); r.err != nil {
		t.Fatalf("own model: %v", r.err)
	}
	r := stream(t, p, infinity.CompletionRequest{Model: "gpt"})
	if !errors.Is(r.err, infinity.ErrInvalid) || !strings.Contains(r.err.Error(), `"gpt"`) {
		t.Fatalf("err = %v, want ErrInvalid naming the model", r.err)
	}
}

func TestContext(t *testing.T) {
	p := mustNew(t, Script{Rules: []Rule{{Reply: Reply{Text: "slow", Delay: Duration(time.Hour)}}}})
	t.Run("cancel during delay", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		r := collect(t, p.Stream(ctx, rootReq(userItem("hi"))))
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", r.err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v to notice the cancellation", d)
		}
	})
	t.Run("deadline during delay", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		r := collect(t, p.Stream(ctx, rootReq(userItem("hi"))))
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", r.err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		q := mustNew(t, Script{Rules: []Rule{{Times: 1, Reply: Reply{Text: "once"}}}})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if r := collect(t, q.Stream(ctx, rootReq())); !errors.Is(r.err, context.Canceled) || len(r.events) != 0 {
			t.Fatalf("got %d events, err %v; want only context.Canceled", len(r.events), r.err)
		}
		if r := stream(t, q, rootReq()); r.text != "once" {
			t.Fatalf("the cancelled request used the budget: %q, %v", r.text, r.err)
		}
	})
	t.Run("cancel while streaming", func(t *testing.T) {
		q := mustNew(t, Script{Rules: []Rule{{Reply: Reply{Text: "one two three four", Calls: []CallSpec{{Name: "x"}}}}}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got []infinity.StreamEvent
		var last error
		for ev, err := range q.Stream(ctx, rootReq()) {
			if err != nil {
				last = err
				continue
			}
			got = append(got, ev)
			cancel()
		}
		if len(got) != 1 || !errors.Is(last, context.Canceled) {
			t.Fatalf("got %d events then %v; want 1 event then context.Canceled", len(got), last)
		}
	})
}

func TestEarlyStop(t *testing.T) {
	replies := []Reply{
		{Text: "several words of text", Calls: []CallSpec{{Name: "a"}, {Name: "b"}}},
		{Text: "some text", Error: "boom", MidStream: true},
		{Error: "boom"},
		{},
	}
	for i, reply := range replies {
		p := mustNew(t, Script{Rules: []Rule{{Reply: reply}}})
		all := collect(t, p.Stream(context.Background(), rootReq()))
		total := len(all.events)
		if all.err != nil {
			total++
		}
		for stopAt := 1; stopAt <= total; stopAt++ {
			n := 0
			for range p.Stream(context.Background(), rootReq()) { // panics if yield is called after break
				n++
				if n == stopAt {
					break
				}
			}
			if n != stopAt {
				t.Errorf("reply %d: stopped at %d, want %d", i, n, stopAt)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		wants []string
	}{
		{"empty", ``, []string{"empty input"}},
		{"syntax", "{\n\"rules\": [\n{,]}", []string{"line 3"}},
		{"trailing", `{"rules":[{}]} {}`, []string{"trailing data"}},
		{"null", `null`, []string{"null"}},
		{"not an object", `[]`, []string{"want an object", "got an array"}},
		{"unknown top-level", `{"rules":[{}],"modle":"x"}`, []string{`unknown field "modle"`, "the script", "context_window, model, rules"}},
		{"unknown rule field", `{"rules":[{},{"whn":{}}]}`, []string{`rules[1]: unknown field "whn"`}},
		{"unknown match field", `{"rules":[{"when":{"dept":1}}]}`, []string{`rules[0].when: unknown field "dept"`}},
		{"wrong case", `{"rules":[{"when":{"Depth":1}}]}`, []string{`rules[0].when: unknown field "Depth"`}},
		{"unknown count field", `{"rules":[{"when":{"count":{"tool":"x","max":1}}}]}`, []string{`rules[0].when.count: unknown field "max"`}},
		{"unknown reply field", `{"rules":[{"reply":{"txt":"hi"}}]}`, []string{`rules[0].reply: unknown field "txt"`}},
		{"unknown call field", `{"rules":[{"reply":{"calls":[{"name":"a"},{"name":"b","arguments":{}}]}}]}`, []string{`rules[0].reply.calls[1]: unknown field "arguments"`}},
		{"depth type", `{"rules":[{"when":{"depth":"1"}}]}`, []string{"rules[0].when.depth", "want an integer", "got a string"}},
		{"depth fraction", `{"rules":[{"when":{"depth":1.5}}]}`, []string{"rules[0].when.depth", "1.5"}},
		{"rules type", `{"rules":{}}`, []string{"rules: want an array"}},
		{"text type", `{"rules":[{"reply":{"text":1}}]}`, []string{"rules[0].reply.text: want a string"}},
		{"bool type", `{"rules":[{"reply":{"error":"x","retryable":"yes"}}]}`, []string{"rules[0].reply.retryable: want true or false"}},
		{"delay number", `{"rules":[{"reply":{"delay":150}}]}`, []string{"rules[0].reply.delay", "duration string"}},
		{"delay bad", `{"rules":[{"reply":{"delay":"soon"}}]}`, []string{"rules[0].reply.delay", `"soon"`}},
		{"no rules", `{}`, []string{"at least one rule"}},
		{"empty rules", `{"rules":[]}`, []string{"at least one rule"}},
		{"call without name", `{"rules":[{"name":"r","reply":{"calls":[{"args":{}}]}}]}`, []string{`rules[0] ("r")`, "reply.calls[0].name: empty"}},
		{"args array", `{"rules":[{},{"reply":{"calls":[{"name":"a","args":[1]}]}}]}`, []string{"rules[1]", "reply.calls[0].args", "JSON object"}},
		{"args string", `{"rules":[{"reply":{"calls":[{"name":"a","args":"{}"}]}}]}`, []string{"reply.calls[0].args", "JSON object"}},
		{"negative depth", `{"rules":[{"when":{"depth":-1}}]}`, []string{"rules[0]", "when.depth", "negative"}},
		{"negative min_depth", `{"rules":[{"when":{"min_depth":-2}}]}`, []string{"when.min_depth", "negative"}},
		{"negative count", `{"rules":[{"when":{"count":{"tool":"x","min":-1}}}]}`, []string{"when.count.min", "negative"}},
		{"count without tool", `{"rules":[{"when":{"count":{"min":1}}}]}`, []string{"when.count.tool: empty"}},
		{"negative times", `{"rules":[{"times":-1}]}`, []string{"times", "negative"}},
		{"negative delay", `{"rules":[{"reply":{"delay":"-1s"}}]}`, []string{"reply.delay", "negative"}},
		{"bad last", `{"rules":[{"when":{"last":"tool"}}]}`, []string{"when.last", `"tool"`, "tool_result"}},
		{"retryable without error", `{"rules":[{"reply":{"retryable":true}}]}`, []string{"reply.retryable"}},
		{"mid_stream without error", `{"rules":[{"reply":{"mid_stream":true}}]}`, []string{"reply.mid_stream"}},
		{"error with calls", `{"rules":[{"reply":{"error":"x","calls":[{"name":"a"}]}}]}`, []string{"reply.calls", "reply.error"}},
		{"negative window", `{"context_window":-1,"rules":[{}]}`, []string{"context_window"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	in := `{
	  "model": "m", "context_window": 1000,
	  "rules": [
	    {"name": "r", "times": 2,
	     "when": {"depth": 0, "min_depth": 0, "last": "user", "last_tool": "t", "last_text": "a", "contains": "b",
	              "count": {"tool": "t", "min": 1}, "system": "s"},
	     "reply": {"text": "hi", "calls": [{"name": "t", "args": {"k": "$THREAD"}}, {"name": "u"}], "delay": "1.5s"}},
	    {"when": {"depth": null}, "reply": {"error": "x", "retryable": true, "mid_stream": true}}
	  ]
	}`
	s, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Script{Model: "m", ContextWindow: 1000, Rules: []Rule{
		{Name: "r", Times: 2,
			When:  Match{Depth: new(0), MinDepth: new(0), Last: "user", LastTool: "t", LastText: "a", Contains: "b", Count: &Count{Tool: "t", Min: 1}, System: "s"},
			Reply: Reply{Text: "hi", Calls: []CallSpec{{Name: "t", Args: json.RawMessage(`{"k": "$THREAD"}`)}, {Name: "u"}}, Delay: Duration(1500 * time.Millisecond)}},
		{Reply: Reply{Error: "x", Retryable: true, MidStream: true}},
	}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", s, want)
	}
	// A script survives a JSON round trip.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delay":"1.5s"`) {
		t.Errorf("marshalled delay: %s", b)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal): %v\n%s", err, b)
	}
	if b2, _ := json.Marshal(again); string(b2) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", b, b2)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, DemoJSON(), 0o600)
	os.WriteFile(bad, []byte(`{"rules":[{"when":{"deep":1}}]}`), 0o600)
	if s, err := Load(good); err != nil || !reflect.DeepEqual(s, Demo()) {
		t.Fatalf("Load(good) = %v", err)
	}
	if _, err := Load(bad); !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `"deep"`) {
		t.Fatalf("Load(bad) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

func TestNewCopiesScript(t *testing.T) {
	s := Script{Rules: []Rule{{When: Match{Depth: new(0)}, Reply: Reply{Text: "a", Calls: []CallSpec{{Name: "x", Args: json.RawMessage(`{"k":1}`)}}}}}}
	p := mustNew(t, s)
	*s.Rules[0].When.Depth = 5
	s.Rules[0].Reply.Text = "b"
	s.Rules[0].Reply.Calls[0].Args[5] = '2'
	r := stream(t, p, rootReq())
	if r.err != nil || r.text != "a" || string(r.calls[0].Args) != `{"k":1}` {
		t.Fatalf("provider changed with its script: %q %v %v", r.text, r.calls, r.err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DemoJSON())
	f.Add([]byte(`{"rules":[{"when":{"depth":0,"count":{"tool":"x","min":1}},"reply":{"calls":[{"name":"a","args":{"s":"$STACK","t":["$THREAD"]}}],"delay":"1ms"}}]}`))
	f.Add([]byte(`{"rules":[{"reply":{"calls":[{"name":"a","args":{"x":"\u0024STACK"}}]}}]}`))
	f.Add([]byte(`{"rules":{}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"rules":[null,{"when":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		p, err := New(s)
		if err != nil {
			t.Fatalf("Parse accepted a script New rejects: %v", err)
		}
		req := infinity.CompletionRequest{Thread: "c", Stack: []infinity.ThreadID{"r", "c"}, Items: []infinity.Item{userItem("hi")}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // never wait for a delay
		for range p.Stream(ctx, req) {
		}
		for _, r := range p.rules { // every reply renders valid JSON args
			for _, c := range r.calls {
				if a := c.args.render(new(newVars(req))); !json.Valid(a) {
					t.Fatalf("rendered invalid args %s", a)
				}
			}
		}
	})
}

func BenchmarkStream(b *testing.B) {
	p := mustNew(b, Script{Rules: []Rule{
		{When: Match{Last: "assistant"}, Reply: Reply{Text: "never"}},
		{When: Match{Depth: new(1), LastTool: "spawn_thread"}, Reply: Reply{Calls: []CallSpec{{Name: "sleep", Args: json.RawMessage(`{"seconds":2,"reason":"working in $THREAD"}`)}}}},
	}})
	req := infinity.CompletionRequest{Thread: "child", Stack: []infinity.ThreadID{"root", "child"}, Items: []infinity.Item{
		userItem("Run the demo."), assistantItem("Spawning."), callItem("c1", "spawn_thread", `{"instructions":"task A"}`),
		resultItem("c1", "You are now inside thread child. Your task: task A"),
	}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range p.Stream(ctx, req) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func TestWriteString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "nl\n cr\r tab\t bell\a nul\x00 \x1f", "<b>&amp;</b>", "héllo ☃ 🎉", "bad \xff utf8 \xe2\x82", "sep \u2028 \u2029"} {
		var b bytes.Buffer
		writeString(&b, s)
		var got string
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("writeString(%q) = %s: %v", s, b.Bytes(), err)
		}
		var want string
		std, _ := json.Marshal(s)
		json.Unmarshal(std, &want)
		if got != want {
			t.Errorf("writeString(%q) decodes to %q, want %q", s, got, want)
		}
		if strings.Contains(s, "<") && !strings.Contains(b.String(), "<b>&amp;") {
			t.Errorf("writeString(%q) = %s: HTML escaped", s, b.Bytes())
		}
	}
}

// TestTemplateFunctions: $CALL_ID names the newest call of a tool in the
// history; $DATE and $TIME give a wall clock some time from now in a zone;
// an argument they cannot read stays as written.
func TestTemplateFunctions(t *testing.T) {
	at := time.Date(2026, 12, 6, 23, 59, 30, 0, time.UTC)
	v := vars{now: at, items: []infinity.Item{
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c1", Name: "watch_webhook"}},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c2", Name: "watch_webhook"}},
		{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c3", Name: "sleep"}},
	}}
	for in, want := range map[string]string{
		"$CALL_ID(watch_webhook)":                           "c2",
		"$CALL_ID(nothing)":                                 "$CALL_ID(nothing)",
		"$DATE(+45s,Europe/Paris) $TIME(+45s,Europe/Paris)": "2026-12-07 01:00:15",
		"$TIME(+1h, UTC)":                                   "00:59:30",
		"$TIME(soon,UTC)":                                   "$TIME(soon,UTC)",
		"$DATE(+1s,Nowhere/Land)":                           "$DATE(+1s,Nowhere/Land)",
		"$TIME(+1s":                                         "$TIME(+1s",
	} {
		if got := v.expand(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
