package cloudlocal_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloudlocal"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
	"github.com/infinity-runtime/infinity/tools/rap/raptest"
)

func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// faults fails the agent function's SendMessage calls while armed: the
// function dies, as far as the thread can tell, between its history write
// and its dispatch.
type faults struct{ armed atomic.Bool }

func (f *faults) wrap(next http.RoundTripper) http.RoundTripper {
	return rt(func(r *http.Request) (*http.Response, error) {
		if f.armed.Load() && cloudlocal.Operation(r) == "sqs.SendMessage" {
			return nil, errors.New("injected: the function died before its dispatch")
		}
		return next.RoundTrip(r)
	})
}

type rt func(*http.Request) (*http.Response, error)

func (f rt) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type stackFixture struct {
	*cloudlocal.Stack
	counter *cloudlocal.Counter
	faults  *faults
	failed  atomic.Int64 // invocations that reported failures
	invoked atomic.Int64
}

func startStack(t *testing.T, agentFile string, opts ...func(*cloudlocal.Options)) *stackFixture {
	t.Helper()
	emutest.AWSEnv(t)
	f := &stackFixture{counter: cloudlocal.NewCounter(), faults: &faults{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	o := cloudlocal.Options{
		PostgresURL:      emutest.Postgres(t),
		DynamoDBEndpoint: emutest.DynamoDB(t),
		SQSEndpoint:      emutest.SQS(t),
		AgentFile:        agentFile,
		TimeScale:        0.001,
		Visibility:       4 * time.Second,
		FunctionTimeout:  3 * time.Second,
		SliceMargin:      500 * time.Millisecond,
		Concurrency:      4,
		Logger:           log,
		Transport: func(next http.RoundTripper) http.RoundTripper {
			return f.counter.Transport(f.faults.wrap(next))
		},
		Tracer: f.counter,
		OnInvoke: func(inv cloudlocal.Invocation) {
			f.invoked.Add(1)
			if inv.Failures > 0 {
				f.failed.Add(1)
			}
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := cloudlocal.Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f.Stack = s
	return f
}

// writeAgent writes an agent file (a.yaml) whose scripted model's script
// (s.json) is script, and returns its path.
func writeAgent(t *testing.T, agent, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(agent), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "a.yaml")
}

// tree returns the thread and its descendants.
func (f *stackFixture) tree(t *testing.T, root infinity.ThreadID) []infinity.ThreadInfo {
	t.Helper()
	info, err := f.Conversations.Thread(t.Context(), root)
	if err != nil {
		t.Fatalf("thread %s: %v", root, err)
	}
	out := []infinity.ThreadInfo{info}
	for i := 0; i < len(out); i++ {
		kids, err := f.Conversations.Children(t.Context(), out[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kids...)
	}
	return out
}

// waitText waits until the thread's history has an assistant item
// containing text, and returns the history.
func (f *stackFixture) waitText(t *testing.T, id infinity.ThreadID, text string, within time.Duration) []infinity.Item {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		items, err := f.Conversations.Items(t.Context(), id, 0, -1)
		if err != nil && !errors.Is(err, infinity.ErrNotFound) {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Kind == infinity.KindAssistant && strings.Contains(it.Text, text) {
				return items
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %q within %v; history:\n%s", id, text, within, dump(items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dump(items []infinity.Item) string {
	var b strings.Builder
	for i, it := range items {
		fmt.Fprintf(&b, "  %d %s %s", i, it.Kind, it.Text)
		if it.Call != nil {
			fmt.Fprintf(&b, " call %s(%s)", it.Call.Name, it.Call.Args)
		}
		if it.Result != nil {
			fmt.Fprintf(&b, " result %s: %s", it.Result.CallID, it.Result.Text())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// checkTree checks that every child closed and that no history holds an
// item twice.
func (f *stackFixture) checkTree(t *testing.T, root infinity.ThreadID, children int) {
	t.Helper()
	tree := f.tree(t, root)
	if len(tree) != 1+children {
		t.Fatalf("tree of %s has %d threads, want %d", root, len(tree), 1+children)
	}
	for _, th := range tree {
		if !th.IsRoot() && !th.Closed {
			t.Errorf("child %s is not closed", th.ID)
		}
		items, err := f.Conversations.Items(t.Context(), th.ID, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it.ID] {
				t.Errorf("%s holds item %s twice:\n%s", th.ID, it.ID, dump(items))
			}
			seen[it.ID] = true
		}
	}
}

func TestCloudEndToEnd(t *testing.T) {
	f := startStack(t, "testdata/sleepy.yaml")
	ctx := t.Context()

	// A multi-thread example through SQS: a 5 s sleep through the relay
	// queue, a 20-minute one through the Scheduler (its clock runs 1000
	// times fast here; the code path is the real one), a 2 s one.
	start := time.Now()
	if _, err := f.Send(ctx, "cloud-root", "Run the children."); err != nil {
		t.Fatal(err)
	}
	f.waitText(t, "cloud-root", "All three children reported back.", 90*time.Second)
	took := time.Since(start)
	f.checkTree(t, "cloud-root", 3)
	if took < 5*time.Second {
		t.Errorf("finished in %v: the 5 s relay sleep did not wait", took)
	}
	created := f.Scheduler.Created()
	if len(created) != 1 {
		t.Fatalf("schedules created: %+v", created)
	}
	sc := created[0]
	if sc.ActionAfterCompletion != "DELETE" || sc.FlexibleTimeWindow.Mode != "OFF" || !strings.HasPrefix(sc.ScheduleExpression, "at(") ||
		sc.Target.Arn != f.Queues.Input.ARN || sc.Target.SqsParameters == nil || sc.Target.SqsParameters.MessageGroupId == "" {
		t.Errorf("schedule: %+v", sc)
	}
	if f.Scheduler.Len() != 0 {
		t.Errorf("%d schedules left after firing", f.Scheduler.Len())
	}
	t.Logf("tree finished in %v over %d invocations", took, f.invoked.Load())

	t.Run("duplicate delivery", func(t *testing.T) {
		// The same logical message twice on SQS (past the five-minute
		// dedup window, SQS gives it a second life; here a different
		// dedup id does the same): the thread applies it once.
		before := len(f.waitText(t, "cloud-root", "All three", time.Second))
		msg := infinity.InputMessage{ID: "dup-1", GroupID: "cloud-root", Content: infinity.TextContent("Are you done?")}
		body, _ := json.Marshal(msg)
		for i := range 2 {
			if _, err := f.SQS.SendMessage(ctx, &awssqs.SendMessageInput{
				QueueUrl: aws.String(f.Queues.Input.URL), MessageBody: aws.String(string(body)),
				MessageGroupId: aws.String("cloud-root"), MessageDeduplicationId: aws.String(fmt.Sprintf("dup-copy-%d", i)),
			}); err != nil {
				t.Fatal(err)
			}
		}
		// A later message in the same group is applied after both copies.
		if _, err := f.Send(ctx, "cloud-root", "Last question."); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			items, err := f.Conversations.Items(ctx, "cloud-root", 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			if n := count(items, "Still done"); n == 2 {
				if got := len(items) - before; got != 4 {
					t.Fatalf("two questions added %d items, want 4:\n%s", got, dump(items[before:]))
				}
				if n := countID(items, "dup-1"); n != 1 {
					t.Fatalf("dup-1 applied %d times", n)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the questions were not answered:\n%s", dump(items[before:]))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("crash between history write and dispatch", func(t *testing.T) {
		// Every SendMessage of the functions fails until an invocation has
		// failed: the root's first slice commits its spawn calls, then
		// cannot dispatch them. SQS redelivers the input after the
		// visibility timeout; the next slice sends what the outbox holds.
		failedBefore := f.failed.Load()
		f.faults.armed.Store(true)
		if _, err := f.Send(ctx, "crash-root", "Run the children."); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for f.failed.Load() == failedBefore {
			if time.Now().After(deadline) {
				t.Fatal("no invocation failed while the fault was armed")
			}
			time.Sleep(20 * time.Millisecond)
		}
		f.faults.armed.Store(false)
		items, err := f.Conversations.Items(ctx, "crash-root", 0, -1)
		if err != nil || count(items, "Spawning.") != 1 {
			t.Fatalf("the slice should have committed before the failed dispatch: %v\n%s", err, dump(items))
		}
		f.waitText(t, "crash-root", "All three children reported back.", 90*time.Second)
		f.checkTree(t, "crash-root", 3)
	})
}

func count(items []infinity.Item, text string) int {
	n := 0
	for _, it := range items {
		if it.Kind == infinity.KindAssistant && strings.Contains(it.Text, text) {
			n++
		}
	}
	return n
}

func countID(items []infinity.Item, id string) int {
	n := 0
	for _, it := range items {
		if it.ID == id {
			n++
		}
	}
	return n
}

// TestAPICallsPerSlice measures what one slice costs in AWS calls and
// database work on the emulators: the figure the cloud issue asks for.
func TestAPICallsPerSlice(t *testing.T) {
	f := startStack(t, "testdata/sleepy.yaml")
	ctx := t.Context()
	// Warm up (the thread is created by its first message).
	if _, err := f.Send(ctx, "calls-root", "hello"); err != nil {
		t.Fatal(err)
	}
	f.waitText(t, "calls-root", "Spawning.", 30*time.Second)
	f.waitText(t, "calls-root", "All three children reported back.", 90*time.Second)
	time.Sleep(500 * time.Millisecond)

	// One user message to a settled root: exactly one slice, one model
	// turn, one dispatch-free answer.
	f.counter.Reset()
	before := f.invoked.Load()
	if _, err := f.Send(ctx, "calls-root", "one more"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		items, _ := f.Conversations.Items(ctx, "calls-root", 0, -1)
		if count(items, "Still done") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the poller's delete land
	got := f.counter.Snapshot()
	var keys []string
	for k := range got {
		if !strings.HasPrefix(k, "sqs.ReceiveMessage") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, got[k])
	}
	t.Logf("one slice (%d invocation(s)): %s", f.invoked.Load()-before, b.String())
	if got["db.transaction"] != 1 {
		t.Errorf("a slice should be one database transaction, got %d", got["db.transaction"])
	}
	if n := got["dynamodb.TransactWriteItems"] + got["dynamodb.PutItem"] + got["dynamodb.UpdateItem"]; n > 1 {
		t.Errorf("a slice should make at most one conditional DynamoDB write, got %d", n)
	}
}

// RAP tools in the cloud: the agent function invokes a slow tool and the
// thread's invocation ends; the tool calls back through the receiver's
// Function URL, which puts the result on the thread's message group; the
// thread wakes in a new invocation and goes on. A subscription's events run
// in event threads that report back.
func TestCloudRAPTools(t *testing.T) {
	srv := raptest.New(t, raptest.WithDelay(time.Second), raptest.WithTicks(2))
	script := `{"rules": [
  {"when": {"depth": 0, "last": "user", "last_text": "echo"}, "reply": {"calls": [{"name": "slow_echo", "args": {"text": "hello from the cloud"}}]}},
  {"when": {"depth": 0, "last_tool": "slow_echo"}, "reply": {"text": "echoed"}},
  {"when": {"depth": 0, "last": "user", "last_text": "watch"}, "reply": {"calls": [{"name": "subscribe_ticks", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "subscribe_ticks"}, "reply": {"text": "watching"}},
  {"when": {"depth": 1, "last_tool": "receive_event__injected"}, "reply": {"calls": [{"name": "close_thread", "args": {"thread_id": "$THREAD", "report_to_parent": "tick handled"}}]}},
  {"when": {"depth": 1, "last_tool": "close_thread"}, "reply": {"text": "event done"}},
  {"when": {"depth": 0, "last_tool": "receive_event__injected"}, "reply": {"text": "noted"}}
]}`
	agent := fmt.Sprintf("name: cloudtools\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  rap: [%q]\n", srv.URL)
	f := startStack(t, writeAgent(t, agent, script))
	ctx := t.Context()

	if _, err := f.Send(ctx, "rap-echo", "echo please"); err != nil {
		t.Fatal(err)
	}
	f.waitText(t, "rap-echo", "echoed", 60*time.Second)
	inv := srv.Invocations()[0]
	if !strings.HasPrefix(inv.CallbackURL, f.ReceiverURL+"/rap/callback/") || inv.GroupID != "rap-echo" {
		t.Fatalf("invocation %+v (receiver %s)", inv, f.ReceiverURL)
	}
	items, _ := f.Conversations.Items(ctx, "rap-echo", 0, -1)
	if !strings.Contains(dump(items), "hello from the cloud") {
		t.Fatalf("the tool's result is missing:\n%s", dump(items))
	}

	if _, err := f.Send(ctx, "rap-watch", "watch the ticks"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		items, err := f.Conversations.Items(ctx, "rap-watch", 0, -1)
		if err != nil && !errors.Is(err, infinity.ErrNotFound) {
			t.Fatal(err)
		}
		h := dump(items)
		if strings.Count(h, "tick handled") == 2 && strings.Contains(h, "no more events will come") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the events never came back:\n%s", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.checkTree(t, "rap-watch", 2)
}

// Compaction in the cloud: a thread on a model with a small context window
// compacts across Lambda invocations (its compaction thread runs in its
// own message group, the summary lands in DSQL) and keeps working from the
// summary.
func TestCloudCompaction(t *testing.T) {
	script := `{"context_window": 2000, "rules": [
  {"when": {"system": "You write summaries"}, "reply": {"text": "SUMMARY: the user sent long notes about the sea."}},
  {"when": {"depth": 0, "last": "user", "contains": "SUMMARY:"}, "reply": {"text": "continuing from the summary"}},
  {"when": {"depth": 0, "last": "user"}, "reply": {"text": "noted"}}
]}`
	agent := "name: compacting\nmodel:\n  provider: scripted\n  script: s.json\n"
	f := startStack(t, writeAgent(t, agent, script))
	ctx := t.Context()
	const id = "cmp"
	note := strings.Repeat("a long note about the weather and the sea. ", 45)
	compacted := func() bool {
		info, err := f.Conversations.Thread(ctx, id)
		return err == nil && info.Compacted
	}
	for i := 0; i < 8 && !compacted(); i++ {
		if _, err := f.Send(ctx, id, fmt.Sprintf("note %d: %s", i, note)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for n := i + 1; ; time.Sleep(50 * time.Millisecond) {
			items, _ := f.Conversations.Items(ctx, id, 0, -1)
			if count := strings.Count(dump(items), " assistant "); count >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no reply to note %d:\n%s", i, dump(items))
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !compacted() {
		if time.Now().After(deadline) {
			items, _ := f.Conversations.Items(ctx, id, 0, -1)
			t.Fatalf("the thread never compacted:\n%s", dump(items))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := f.Send(ctx, id, "Where are we?"); err != nil {
		t.Fatal(err)
	}
	f.waitText(t, id, "continuing from the summary", 30*time.Second)
	h, err := infinity.LoadHistory(ctx, f.Conversations, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Summary == nil || !strings.HasPrefix(h.Summary.Text, "SUMMARY:") || h.Items[0].Kind != infinity.KindSummary {
		t.Fatalf("history after compaction starts with %+v (summary %+v)", h.Items[0], h.Summary)
	}
	// One compaction thread or more (notes kept coming while the first
	// ran), each closed once it is done.
	tree := f.tree(t, id)
	open := func(th infinity.ThreadInfo) bool { return !th.Closed }
	for deadline := time.Now().Add(30 * time.Second); slices.ContainsFunc(tree[1:], open); tree = f.tree(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("a compaction thread never finished: %+v", tree)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, th := range tree[1:] {
		if th.Kind != infinity.ThreadCompaction {
			t.Errorf("thread %s of kind %d under the root, want only compaction threads", th.ID, th.Kind)
		}
	}
	f.checkTree(t, id, len(tree)-1)
}

// MCP tools in the cloud: the agent function connects the agent file's MCP
// server when a slice first needs its tools, and the thread calls one.
func TestCloudMCPTools(t *testing.T) {
	srv, stop := mcptest.New()
	defer stop()
	script := `{"rules": [
  {"when": {"depth": 0, "last": "user"}, "reply": {"calls": [{"name": "add", "args": {"a": 2, "b": 3}}]}},
  {"when": {"depth": 0, "last_tool": "add"}, "reply": {"text": "added"}}
]}`
	agent := fmt.Sprintf("name: cloudmcp\nmodel:\n  provider: scripted\n  script: s.json\ntools:\n  mcp: [%q]\n", srv)
	f := startStack(t, writeAgent(t, agent, script))
	if _, err := f.Send(t.Context(), "mcp-add", "add two and three"); err != nil {
		t.Fatal(err)
	}
	items := f.waitText(t, "mcp-add", "added", 60*time.Second)
	if h := dump(items); !strings.Contains(h, "result") || !strings.Contains(h, ": 5") {
		t.Fatalf("the MCP tool's result is missing:\n%s", h)
	}
}

// A record whose slice keeps failing (here the model is down for it) is
// received MaxReceiveCount times, then moved to the input queue's FIFO
// dead-letter queue with why; the thread's next message runs. Without the
// move the group would stay blocked behind it for ever.
func TestCloudPoisonRecordIsDeadLettered(t *testing.T) {
	script := `{"rules": [
  {"when": {"last_text": "poison"}, "reply": {"error": "the model is down for this one", "retryable": true}},
  {"when": {"last": "user"}, "reply": {"text": "fine"}}
]}`
	f := startStack(t, writeAgent(t, "name: poison\nmodel:\n  provider: scripted\n  script: s.json\n", script),
		func(o *cloudlocal.Options) { o.MaxReceiveCount, o.Visibility = 2, 2*time.Second })
	ctx := t.Context()
	if _, err := f.Send(ctx, "poisoned", "hello"); err != nil {
		t.Fatal(err)
	}
	f.waitText(t, "poisoned", "fine", 30*time.Second)
	if _, err := f.Send(ctx, "poisoned", "poison pill"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Send(ctx, "poisoned", "after the pill"); err != nil {
		t.Fatal(err)
	}
	items := f.waitText(t, "poisoned", "fine", 60*time.Second)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		items, _ = f.Conversations.Items(ctx, "poisoned", 0, -1)
		if len(items) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(items) != 4 || items[2].Text != "after the pill" || items[3].Text != "fine" {
		t.Fatalf("the group did not move on past the poison record:\n%s", dump(items))
	}
	out, err := f.SQS.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(f.Queues.DeadLetter.URL),
		MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		WaitTimeSeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("dead-letter queue holds %d messages", len(out.Messages))
	}
	m := out.Messages[0]
	attr := func(k string) string { return aws.ToString(m.MessageAttributes[k].StringValue) }
	if !strings.Contains(aws.ToString(m.Body), "poison pill") || attr(lambda.AttrThread) != "poisoned" || attr(lambda.AttrReceiveCount) != "2" ||
		attr(lambda.AttrMessageID) == "" || !strings.Contains(attr(lambda.AttrError), "the model is down for this one") ||
		m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)] != "poisoned" {
		t.Fatalf("dead-lettered %s with attributes %v and %v", aws.ToString(m.Body), m.MessageAttributes, m.Attributes)
	}
}
