package lambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// recorder is an InputSender and a Forwarder that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	sent   []infinity.InputMessage
	bodies []string
	dead   []lambda.DeadRecord
	refuse string // DeadLetter refuses this message id
}

func (r *recorder) DeadLetter(_ context.Context, d lambda.DeadRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.MessageID == r.refuse && r.refuse != "" {
		return errors.New("refused")
	}
	r.bodies = append(r.bodies, d.Body)
	r.dead = append(r.dead, d)
	return nil
}

func (r *recorder) Send(_ context.Context, msg infinity.InputMessage, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, msg)
	return nil
}

func (r *recorder) Forward(_ context.Context, body string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, body)
	return nil
}

func (r *recorder) forwarded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// failingConv fails commits of one thread while fail is set.
type failingConv struct {
	infinity.ConversationStore
	thread infinity.ThreadID
	fail   atomic.Bool
}

func (f *failingConv) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	if c.Thread == f.thread && f.fail.Load() {
		return 0, errors.New("store unreachable")
	}
	return f.ConversationStore.Commit(ctx, c)
}

type fixture struct {
	conv    *failingConv
	rt      *actors.Runtime
	agent   *lambda.Agent
	out     *recorder
	dead    *recorder
	sender  *recorder
	handler awslambda.Handler
}

func newFixture(t *testing.T, withDeadLetter bool, opts ...func(*lambda.AgentOptions)) *fixture {
	t.Helper()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Noted: $THREAD."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{conv: &failingConv{ConversationStore: memory.NewConversationStore()}, out: &recorder{}, dead: &recorder{}, sender: &recorder{}}
	sender := f.sender
	var agent *lambda.Agent
	f.rt, err = actors.New(actors.Config{
		StepOnly:      true,
		Conversations: f.conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(actors.Deliverer) infinity.InputSender { return sender },
		Agents:        []actors.Agent{{Name: "helper"}},
		Observer:      func(ev actors.Event) { agent.Observe(ev) },
		Idle:          50 * time.Millisecond,
		// As cloud.Open does: the invocation's deadline less a margin.
		Deadline: func(ctx context.Context) (time.Time, bool) {
			dl, ok := ctx.Deadline()
			return dl.Add(-time.Second), ok
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rt.Close(context.Background()) })
	o := lambda.AgentOptions{Runtime: f.rt, Conversations: f.conv, Output: f.out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if withDeadLetter {
		o.DeadLetter = f.dead
	}
	for _, opt := range opts {
		opt(&o)
	}
	agent, err = lambda.NewAgent(o)
	if err != nil {
		t.Fatal(err)
	}
	f.agent = agent
	f.handler = awslambda.NewHandler(agent.Handle)
	return f
}

// invoke calls the handler through aws-lambda-go's JSON path, with a
// Lambda context and a deadline, as lambda.Start does.
func (f *fixture) invoke(t *testing.T, payload []byte) events.SQSEventResponse {
	t.Helper()
	return f.invokeWithin(t, payload, 30*time.Second)
}

func (f *fixture) invokeWithin(t *testing.T, payload []byte, left time.Duration) events.SQSEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), left)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	out, err := f.handler.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

func (f *fixture) items(t *testing.T, id infinity.ThreadID) []infinity.Item {
	t.Helper()
	items, err := f.conv.Items(t.Context(), id, 0, -1)
	if err != nil {
		t.Fatalf("items of %s: %v", id, err)
	}
	return items
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestAgentBatchFromRealEvent(t *testing.T) {
	f := newFixture(t, false)
	payload, err := os.ReadFile("testdata/sqs-fifo-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	if resp := f.invoke(t, payload); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	alpha := f.items(t, "thread-alpha")
	// Both alpha records are one batch: two user items, one answer.
	if len(alpha) != 3 || alpha[0].Text != "Hello from the reference recipe" || alpha[1].Text != "And a second line" || alpha[2].Text != "Noted: thread-alpha." {
		t.Fatalf("alpha history: %+v", alpha)
	}
	if alpha[0].ID != "sqs-11d6ee51-4cc7-4302-9e22-7cd8afdaadf5" {
		t.Errorf("a body without an id takes the SQS message id: got %q", alpha[0].ID)
	}
	beta := f.items(t, "thread-beta")
	if len(beta) != 2 || beta[0].ID != "msg-beta-1" {
		t.Fatalf("beta history: %+v", beta)
	}
	info, err := f.conv.Thread(t.Context(), "thread-alpha")
	if err != nil || !info.IsRoot() {
		t.Fatalf("alpha was not created as a root: %+v %v", info, err)
	}
	// Output events carry each slice's text.
	outs := f.out.forwarded()
	if len(outs) != 2 {
		t.Fatalf("output events: %q", outs)
	}
	var ev lambda.OutputEvent
	for _, b := range outs {
		if err := json.Unmarshal([]byte(b), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Text != "Noted: "+string(ev.Thread)+"." {
			t.Errorf("output event: %+v", ev)
		}
	}

	// SQS delivers at least once: the same batch again changes nothing.
	if resp := f.invoke(t, payload); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures on redelivery: %v", failures(resp))
	}
	if got := len(f.items(t, "thread-alpha")); got != 3 {
		t.Fatalf("redelivery changed alpha's history: %d items", got)
	}
	if got := len(f.items(t, "thread-beta")); got != 2 {
		t.Fatalf("redelivery changed beta's history: %d items", got)
	}
}

// record builds a FIFO record the way the event source mapping does.
func record(id, group, seq, body string) events.SQSMessage {
	return events.SQSMessage{
		MessageId: id, ReceiptHandle: "rh-" + id, Body: body,
		Attributes: map[string]string{
			"MessageGroupId": group, "SequenceNumber": seq, "ApproximateReceiveCount": "1",
			"SentTimestamp": "1573251510774", "MessageDeduplicationId": id,
		},
		EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:in.fifo", AWSRegion: "us-east-1",
	}
}

func text(group, s string) string {
	b, _ := json.Marshal(infinity.InputMessage{GroupID: infinity.ThreadID(group), Content: infinity.TextContent(s)})
	return string(b)
}

func eventJSON(t *testing.T, recs ...events.SQSMessage) []byte {
	t.Helper()
	b, err := json.Marshal(events.SQSEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAgentUndecodableRecordFailsItsGroupTail(t *testing.T) {
	batch := func(t *testing.T) []byte {
		return eventJSON(t,
			record("a1", "ta", "100", text("ta", "first")),
			record("b1", "tb", "101", text("tb", "other thread")),
			record("a2", "ta", "102", `{"content": {"type": "text", "text": "cut`),
			record("a3", "ta", "103", text("ta", "after the broken one")),
			record("a4", "ta", "104", `{"group_id": "tz", "content": {"type": "text", "text": "wrong group"}}`),
		)
	}
	t.Run("without a dead-letter queue", func(t *testing.T) {
		f := newFixture(t, false)
		resp := f.invoke(t, batch(t))
		if got, want := failures(resp), []string{"a2", "a3", "a4"}; !slices.Equal(got, want) {
			t.Fatalf("failures = %v, want %v (the broken record and the rest of its group)", got, want)
		}
		if got := f.items(t, "ta"); len(got) != 2 || got[0].Text != "first" {
			t.Fatalf("ta ran what came before the broken record only: %+v", got)
		}
		if got := f.items(t, "tb"); len(got) != 2 {
			t.Fatalf("tb was held up by another group: %+v", got)
		}
	})
	t.Run("with a dead-letter queue", func(t *testing.T) {
		f := newFixture(t, true)
		resp := f.invoke(t, batch(t))
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures: %v", failures(resp))
		}
		if dead := f.dead.forwarded(); len(dead) != 2 {
			t.Fatalf("dead-lettered: %q", dead)
		}
		got := f.items(t, "ta")
		if len(got) != 3 || got[1].Text != "after the broken one" {
			t.Fatalf("ta history: %+v", got)
		}
	})
}

func TestAgentFailedSliceComesBack(t *testing.T) {
	f := newFixture(t, false)
	f.conv.thread = "tb"
	f.conv.fail.Store(true)
	payload := eventJSON(t,
		record("a1", "ta", "100", text("ta", "hello")),
		record("b1", "tb", "101", text("tb", "one")),
		record("b2", "tb", "102", text("tb", "two")),
	)
	resp := f.invoke(t, payload)
	if got, want := failures(resp), []string{"b1", "b2"}; !slices.Equal(got, want) {
		t.Fatalf("failures = %v, want %v", got, want)
	}
	if got := len(f.items(t, "ta")); got != 2 {
		t.Fatalf("ta: %d items", got)
	}
	// The store recovers; SQS redelivers the whole batch (ta's record too,
	// if its delete had been lost): each input is applied once.
	f.conv.fail.Store(false)
	if resp := f.invoke(t, payload); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures after recovery: %v", failures(resp))
	}
	if got := f.items(t, "tb"); len(got) != 3 || got[0].Text != "one" || got[1].Text != "two" {
		t.Fatalf("tb after recovery: %+v", got)
	}
	if got := len(f.items(t, "ta")); got != 2 {
		t.Fatalf("ta after redelivery: %d items", got)
	}
}

func TestAgentDropsToolResultForUnknownThread(t *testing.T) {
	f := newFixture(t, false)
	b, _ := json.Marshal(infinity.InputMessage{ID: "r1", GroupID: "ghost", Content: infinity.ResultContent("call-1", "late")})
	resp := f.invoke(t, eventJSON(t, record("g1", "ghost", "100", string(b))))
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	if _, err := f.conv.Thread(t.Context(), "ghost"); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("a tool result created a thread: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(`{"content":{"type":"text","text":"hi"},"group_id":"g"}`, "g", "m1")
	f.Add(`{"id":"x","content":{"type":"toolresult","id":"c","content":[{"type":"text","text":"r"}]},"group_id":"g","synthetic":"c"}`, "g", "m2")
	f.Add(`{"content":{"type":"text"},"group_id":"other"}`, "g", "")
	f.Add(`null`, "", "m3")
	f.Fuzz(func(t *testing.T, body, group, id string) {
		msg, err := lambda.DecodeRecord(events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"MessageGroupId": group}})
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if msg.ID == "" || msg.Validate() != nil || (group != "" && string(msg.GroupID) != group) {
			t.Fatalf("accepted a bad message: %+v", msg)
		}
	})
}

func TestAgentSliceStopsAtTheInvocationDeadline(t *testing.T) {
	f := newFixture(t, false)
	// 300 ms left, less than the 1 s margin: the slice commits its input,
	// starts no completion and sends itself a continue.
	resp := f.invokeWithin(t, eventJSON(t, record("a1", "ta", "100", text("ta", "hello"))), 300*time.Millisecond)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	items := f.items(t, "ta")
	if len(items) != 1 || items[0].Kind != infinity.KindUser {
		t.Fatalf("history: %+v", items)
	}
	f.sender.mu.Lock()
	sent := slices.Clone(f.sender.sent)
	f.sender.mu.Unlock()
	if len(sent) != 1 || sent[0].GroupID != "ta" || sent[0].Synthetic == nil || sent[0].Synthetic.Type != infinity.SyntheticContinue {
		t.Fatalf("sent %+v, want one continue to ta", sent)
	}
	// SQS delivers the continue to a later invocation with time to spare.
	body, _ := json.Marshal(sent[0])
	if resp := f.invoke(t, eventJSON(t, record("c1", "ta", "101", string(body)))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	if items := f.items(t, "ta"); len(items) != 2 || items[1].Text != "Noted: ta." {
		t.Fatalf("history after the continue: %+v", items)
	}
}

// A compaction request (an operator's, or a thread's own) is applied in
// the cloud as in the daemon: the thread spawns a compaction thread, whose
// seed is sent with the rest of the slice's outbox.
func TestAgentCompactionRequest(t *testing.T) {
	compaction, _ := json.Marshal(infinity.InputMessage{ID: "cmp-1", GroupID: "ta", Content: infinity.TextContent(""),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticCompaction}})
	f := newFixture(t, true)
	payload := eventJSON(t, record("a1", "ta", "100", text("ta", "hello")), record("a2", "ta", "101", string(compaction)))
	if resp := f.invoke(t, payload); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", failures(resp))
	}
	if dead := f.dead.forwarded(); len(dead) != 0 {
		t.Fatalf("dead-lettered %q", dead)
	}
	kids, err := f.conv.Children(t.Context(), "ta")
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 1 || kids[0].Kind != infinity.ThreadCompaction || kids[0].SpawnOrder != 2 {
		t.Fatalf("children of ta = %+v, want one compaction thread covering its 2 items", kids)
	}
	if items := f.items(t, "ta"); len(items) != 2 || items[0].Text != "hello" {
		t.Fatalf("history %+v", items)
	}
}

// A record whose slice fails on its last receive goes to the dead-letter
// queue with why (the error, its thread, its message id and receive
// count) and is reported done, so its group moves on; the group's other
// records come back. Before the last receive, it comes back too.
func TestAgentDeadLettersTheLastReceiveWithWhy(t *testing.T) {
	f := newFixture(t, true, func(o *lambda.AgentOptions) { o.MaxReceiveCount = 3 })
	f.conv.thread = "tb"
	f.conv.fail.Store(true)
	last := record("b1", "tb", "101", text("tb", "poison"))
	last.Attributes["ApproximateReceiveCount"] = "3"
	payload := eventJSON(t, last, record("b2", "tb", "102", text("tb", "next")), record("a1", "ta", "100", text("ta", "hello")))
	resp := f.invoke(t, payload)
	if got, want := failures(resp), []string{"b2"}; !slices.Equal(got, want) {
		t.Fatalf("failures = %v, want %v", got, want)
	}
	f.dead.mu.Lock()
	dead := slices.Clone(f.dead.dead)
	f.dead.mu.Unlock()
	if len(dead) != 1 {
		t.Fatalf("dead-lettered %+v", dead)
	}
	attrs := dead[0].Attributes()
	if dead[0].Body != last.Body || attrs[lambda.AttrThread] != "tb" || attrs[lambda.AttrMessageID] != "b1" || attrs[lambda.AttrReceiveCount] != "3" ||
		!strings.Contains(attrs[lambda.AttrError], "slice failed on receive 3 of 3") || !strings.Contains(attrs[lambda.AttrError], "store unreachable") {
		t.Fatalf("dead record %+v, attributes %v", dead[0], attrs)
	}
	// Two records on their last receive, the first of which cannot be
	// moved: neither leaves (a later record never leaves before an
	// earlier one of its thread).
	first, second := record("b3", "tb", "103", text("tb", "x")), record("b4", "tb", "104", text("tb", "y"))
	first.Attributes["ApproximateReceiveCount"], second.Attributes["ApproximateReceiveCount"] = "3", "3"
	f.dead.mu.Lock()
	f.dead.refuse = "b3"
	f.dead.mu.Unlock()
	if got, want := failures(f.invoke(t, eventJSON(t, first, second))), []string{"b3", "b4"}; !slices.Equal(got, want) {
		t.Fatalf("failures = %v, want %v", got, want)
	}
	f.dead.mu.Lock()
	moved := len(f.dead.dead)
	f.dead.mu.Unlock()
	if moved != 1 {
		t.Fatalf("%d records dead-lettered in all, want the first test's one", moved)
	}
	// The store recovers: the next record runs without the poison one.
	f.conv.fail.Store(false)
	if resp := f.invoke(t, eventJSON(t, record("b2", "tb", "102", text("tb", "next")))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	if got := f.items(t, "tb"); len(got) != 2 || got[0].Text != "next" {
		t.Fatalf("tb: %+v", got)
	}
}

// A reason SQS would refuse as an attribute value is made acceptable.
func TestDeadRecordAttributesAreValidForSQS(t *testing.T) {
	a := lambda.DeadRecord{Err: errors.New("bad\x00byte\x1b[31m and\ttab"), Thread: "t", MessageID: "m"}.Attributes()
	if a[lambda.AttrError] != "bad?byte?[31m and\ttab" || a[lambda.AttrThread] != "t" || a[lambda.AttrMessageID] != "m" {
		t.Fatalf("attributes %q", a)
	}
	if _, ok := a[lambda.AttrReceiveCount]; ok {
		t.Fatal("an empty receive count is not an attribute")
	}
}

// A root started with a budget through the queue (the first message's
// "budget") stops at its cap across invocations: the next user message
// gets a notice instead of a model call; a raise (a "budget" synthetic
// message, as infinity budget --add sends it) lets it answer again.
func TestAgentBudgetAcrossInvocations(t *testing.T) {
	f := newFixture(t, false, func(o *lambda.AgentOptions) { o.Budget = &infinity.Budget{Tokens: 1 << 30} })
	first := `{"id":"m1","group_id":"capped","content":{"type":"text","text":"one"},"budget":{"model_calls":2}}`
	bodies := []string{first, text("capped", "two"), text("capped", "three")}
	for i, b := range bodies {
		if resp := f.invoke(t, eventJSON(t, record(fmt.Sprintf("r%d", i), "capped", fmt.Sprint(i+1), b))); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("invocation %d: failures %v", i, failures(resp))
		}
	}
	items := f.items(t, "capped")
	last := items[len(items)-1]
	if last.Notice != infinity.NoticeBudgetSpent || !strings.Contains(last.Text, "model calls: 2 of 2") {
		t.Fatalf("the third message was answered over the cap: %+v", items)
	}
	calls := 0
	for _, it := range items {
		if it.Usage != nil {
			calls++
		}
	}
	if calls != 2 {
		t.Fatalf("%d model calls under a cap of 2", calls)
	}
	raise := `{"id":"raise-1","group_id":"capped","content":{"type":"text","text":""},"synthetic":{"type":"budget"},"budget":{"model_calls":1}}`
	if resp := f.invoke(t, eventJSON(t, record("r9", "capped", "9", raise))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("raise: failures %v", failures(resp))
	}
	items = f.items(t, "capped")
	if last := items[len(items)-1]; last.Kind != infinity.KindAssistant || items[len(items)-2].Notice != infinity.NoticeBudgetRaised {
		t.Fatalf("the raise did not let the thread answer: %+v", items[len(items)-3:])
	}
	if tb, err := f.rt.TreeBudget(t.Context(), "capped"); err != nil || tb.Budget.ModelCalls != 3 || tb.Budget.Tokens != 0 || tb.Spend.ModelCalls != 3 || tb.Spent == "" {
		t.Fatalf("TreeBudget = %+v, %v (the message's budget wins over the agent file's)", tb, err)
	}
	// A root whose first message brings no budget gets the agent file's.
	if resp := f.invoke(t, eventJSON(t, record("s1", "plain", "1", text("plain", "hi")))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", failures(resp))
	}
	if tb, err := f.rt.TreeBudget(t.Context(), "plain"); err != nil || tb.Budget.Tokens != 1<<30 {
		t.Fatalf("TreeBudget of a root without a budget of its own = %+v, %v", tb, err)
	}
}

// The agent file's budget reaches a root whose first delivery failed
// after the root was created: the redelivered first message still brings
// it.
func TestAgentBudgetAfterAFailedFirstSlice(t *testing.T) {
	f := newFixture(t, false, func(o *lambda.AgentOptions) { o.Budget = &infinity.Budget{ModelCalls: 7} })
	f.conv.thread = "flaky"
	f.conv.fail.Store(true)
	if resp := f.invoke(t, eventJSON(t, record("f1", "flaky", "1", text("flaky", "hi")))); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("the first delivery did not fail: %v", failures(resp))
	}
	f.conv.fail.Store(false)
	if resp := f.invoke(t, eventJSON(t, record("f1", "flaky", "1", text("flaky", "hi")))); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("the redelivery failed: %v", failures(resp))
	}
	if tb, err := f.rt.TreeBudget(t.Context(), "flaky"); err != nil || tb.Budget.ModelCalls != 7 {
		t.Fatalf("TreeBudget after a failed first slice = %+v, %v", tb, err)
	}
}
