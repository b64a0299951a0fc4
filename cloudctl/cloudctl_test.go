package cloudctl

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// stacks answers DescribeStacks from a map of stack name to outputs.
type stacks map[string]map[string]string

func (s stacks) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	outs, ok := s[aws.ToString(in.StackName)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
	}
	st := cfntypes.Stack{StackName: in.StackName}
	for k, v := range outs {
		st.Outputs = append(st.Outputs, cfntypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)})
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cfntypes.Stack{st}}, nil
}

func outputs(prefix string) map[string]string {
	return map[string]string{
		prefix + OutputInputQueueURL:           "https://sqs.eu-west-1.amazonaws.com/1/" + prefix + "-in.fifo",
		prefix + OutputOutputQueueURL:          "https://sqs.eu-west-1.amazonaws.com/1/" + prefix + "-out",
		prefix + OutputDeadLetterQueueURL:      "https://sqs.eu-west-1.amazonaws.com/1/" + prefix + "-dead.fifo",
		prefix + OutputRelayDeadLetterQueueURL: "https://sqs.eu-west-1.amazonaws.com/1/" + prefix + "-relay-dead",
		prefix + OutputClusterEndpoint:         prefix + ".dsql.eu-west-1.on.aws",
		prefix + OutputStateTableName:          prefix + "-state",
		prefix + OutputReceiverURL:             "https://" + prefix + ".lambda-url.eu-west-1.on.aws/",
	}
}

// Outputs are found by their suffixes; an agent whose id ends in "Relay"
// is not taken for another's relay dead-letter queue; several agents need
// --agent, which drops non-alphanumerics as the construct does.
func TestFromStack(t *testing.T) {
	ctx := context.Background()
	two := outputs("Support")
	for k, v := range outputs("SupportRelay") {
		two[k] = v
	}
	api := stacks{"one": outputs("Agent"), "two": two, "none": {"BucketName": "b"}}

	c, err := FromStack(ctx, api, "one", "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Source: "stack one (agent Agent)", Stack: "one", Agent: "Agent",
		InputQueueURL: "https://sqs.eu-west-1.amazonaws.com/1/Agent-in.fifo", OutputQueueURL: "https://sqs.eu-west-1.amazonaws.com/1/Agent-out",
		DeadLetterQueueURL: "https://sqs.eu-west-1.amazonaws.com/1/Agent-dead.fifo", RelayDeadLetterQueueURL: "https://sqs.eu-west-1.amazonaws.com/1/Agent-relay-dead",
		ReceiverURL: "https://Agent.lambda-url.eu-west-1.on.aws/", StateTable: "Agent-state", DSQLEndpoint: "Agent.dsql.eu-west-1.on.aws", DSQLUser: "admin"}
	if c != want {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if err := c.Require(NeedInput | NeedDeadLetter | NeedDatabase); err != nil {
		t.Errorf("a complete stack: %v", err)
	}

	if _, err := FromStack(ctx, api, "two", "", ""); !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "Support, SupportRelay") || !strings.Contains(err.Error(), "--agent") {
		t.Errorf("two agents without --agent: %v", err)
	}
	for agent, wantDLQ := range map[string]string{"Support": "Support-dead.fifo", "support-relay": "SupportRelay-dead.fifo", "Support-Relay": "SupportRelay-dead.fifo", "nope": ""} {
		c, err := FromStack(ctx, api, "two", agent, "reader")
		if wantDLQ == "" {
			if !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), `no agent "nope"`) {
				t.Errorf("--agent %s: %v", agent, err)
			}
			continue
		}
		if err != nil || !strings.HasSuffix(c.DeadLetterQueueURL, "/"+wantDLQ) || c.DSQLUser != "reader" {
			t.Errorf("--agent %s: %+v, %v", agent, c, err)
		}
	}
	if _, err := FromStack(ctx, api, "nope", "", ""); !errors.Is(err, ErrStackNotFound) {
		t.Errorf("unknown stack: %v", err)
	}
	if _, err := FromStack(ctx, api, "none", "", ""); !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "BucketName") {
		t.Errorf("a stack without the construct: %v", err)
	}

	// A stack without a cluster output: the database commands say which
	// output is missing.
	partial := outputs("A")
	delete(partial, "A"+OutputClusterEndpoint)
	c, err = FromStack(ctx, stacks{"p": partial}, "p", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Require(NeedDatabase); !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "no AClusterEndpoint output") {
		t.Errorf("no cluster: %v", err)
	}
}

// Missing or malformed settings are named by their variables.
func TestRequireFromEnv(t *testing.T) {
	env := map[string]string{}
	c := FromEnv(func(k string) string { return env[k] })
	err := c.Require(NeedInput | NeedDeadLetter | NeedDatabase)
	for _, want := range []string{cloud.EnvInputQueueURL, cloud.EnvDeadLetterURL, cloud.EnvDSQLEndpoint, cloud.EnvDatabaseURL, "--stack"} {
		if !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), want) {
			t.Errorf("empty environment: %v lacks %s", err, want)
		}
	}
	env[cloud.EnvInputQueueURL] = "sqs-input"
	env[cloud.EnvDSQLEndpoint] = "https://x.dsql.us-east-1.on.aws/"
	env[cloud.EnvDatabaseURL] = "postgres://localhost/db"
	err = FromEnv(func(k string) string { return env[k] }).Require(NeedInput | NeedDatabase)
	for _, want := range []string{`INFINITY_INPUT_QUEUE_URL "sqs-input" is not a queue URL`, "either INFINITY_DSQL_ENDPOINT or INFINITY_DATABASE_URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	delete(env, cloud.EnvDatabaseURL)
	if err := FromEnv(func(k string) string { return env[k] }).Require(NeedDatabase); err == nil || !strings.Contains(err.Error(), "host name") {
		t.Errorf("a DSQL URL for an endpoint: %v", err)
	}
}

func TestStatus(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	call := func(id, name, args string) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: id, Name: name, Args: json.RawMessage(args)}, At: at}
	}
	result := func(id string, state infinity.ResultState) infinity.Item {
		return infinity.Item{Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: id, State: state}, At: at}
	}
	user := infinity.Item{Kind: infinity.KindUser, Text: "hi", At: at}
	answer := infinity.Item{Kind: infinity.KindAssistant, Text: "hello", At: at}
	until := at.Add(90 * time.Second)
	for _, tc := range []struct {
		name   string
		closed bool
		items  []infinity.Item
		status string
		detail string
		until  *time.Time
	}{
		{name: "closed", closed: true, items: []infinity.Item{user}, status: StatusClosed},
		{name: "new", status: StatusNew, detail: "its first input is queued"},
		{name: "answered", items: []infinity.Item{user, answer}, status: StatusWaiting, detail: WaitingForInput},
		{name: "unanswered", items: []infinity.Item{user}, status: StatusRunning, detail: "no answer to its last input yet"},
		{name: "sleep", items: []infinity.Item{user, call("c1", "sleep", `{"seconds":90}`)}, status: StatusSleeping, until: &until},
		{name: "sleep_until", items: []infinity.Item{user, call("c1", "sleep_until", `{"date":"2026-01-02","time":"04:05:35","timezone":"Europe/Paris"}`)},
			status: StatusSleeping, until: &until},
		{name: "spawned", items: []infinity.Item{user, call("c1", "spawn_thread", `{}`)}, status: StatusWaiting, detail: "a child's report"},
		{name: "waits for events", items: []infinity.Item{user, call("c1", "spawn_thread", `{}`), result("c1", infinity.ResultFinal), call("c2", "sleep_until_event_or_input", `{}`)},
			status: StatusWaiting, detail: "input or an event"},
		{name: "pending tool", items: []infinity.Item{user, call("c1", "search", `{}`), result("c1", infinity.ResultPending)}, status: StatusWaiting, detail: "the tool search"},
	} {
		s, d, u := status(infinity.ThreadInfo{Closed: tc.closed}, tc.items)
		if s != tc.status || d != tc.detail || (u == nil) != (tc.until == nil) || u != nil && !u.Equal(*tc.until) {
			t.Errorf("%s: got %s %q %v, want %s %q %v", tc.name, s, d, u, tc.status, tc.detail, tc.until)
		}
	}
}

// hookStore runs a hook before the first Children call, as if a commit
// landed between the follower's reads of two threads.
type hookStore struct {
	infinity.ConversationStore
	once sync.Once
	hook func()
}

func (h *hookStore) Children(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	h.once.Do(h.hook)
	return h.ConversationStore.Children(ctx, id)
}

// A commit that lands between the reads of a parent's items and of its
// children (a spawn, with the child's first item already there) must not
// put the child's line before the parent's spawn call: the lines newer
// than the read's clock wait for the next read.
func TestLogsHoldBackLinesNewerThanTheRead(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	mem := memory.NewConversationStore()
	if err := mem.CreateThread(ctx, infinity.ThreadInfo{ID: "r", Root: "r", Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Commit(ctx, infinity.Commit{Thread: "r", Items: []infinity.Item{{ID: "u1", Kind: infinity.KindUser, Text: "go", At: t0}}}); err != nil {
		t.Fatal(err)
	}
	spawnAt := t0.Add(9900 * time.Millisecond)
	store := &hookStore{ConversationStore: mem, hook: func() {
		call := infinity.Item{ID: "c1", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "c1", Name: "spawn_thread", Args: json.RawMessage(`{}`)}, At: spawnAt}
		kid := infinity.ThreadInfo{ID: "k", Parent: "r", Root: "r", SpawnOrder: 2, SpawnCallID: "c1", Created: spawnAt}
		if _, err := mem.Commit(ctx, infinity.Commit{Thread: "r", Expected: 1, Items: []infinity.Item{call}, Create: []infinity.ThreadInfo{kid}}); err != nil {
			t.Error(err)
		}
		if _, err := mem.Commit(ctx, infinity.Commit{Thread: "k", Items: []infinity.Item{{ID: "k1", Kind: infinity.KindAssistant, Text: "child work", At: spawnAt.Add(50 * time.Millisecond)}}}); err != nil {
			t.Error(err)
		}
	}}
	var mu sync.Mutex
	reads := 0
	c := &Client{Conversations: store, List: func(context.Context, bool) ([]infinity.ThreadInfo, error) { return nil, nil },
		Now: func(context.Context) (time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			return t0.Add(time.Duration(9+reads) * time.Second), nil // 10 s, then 11 s
		}}
	var got []string
	end, err := c.Logs(ctx, "r", LogOptions{}, func(l Line) error {
		switch {
		case l.Item != nil:
			got = append(got, l.Name+" "+l.Item.ID)
		default:
			got = append(got, l.Name+" "+l.Event)
		}
		return nil
	})
	if err != nil || end != "" {
		t.Fatalf("logs: %q, %v", end, err)
	}
	want := "root spawned, root u1, root c1, root/1 spawned, root/1 k1"
	if g := strings.Join(got, ", "); g != want {
		t.Errorf("lines:\n got %s\nwant %s", g, want)
	}
	if reads != 2 {
		t.Errorf("%d reads of the store, want 2 (the second for the held lines)", reads)
	}
}

func TestLogsUnknownThread(t *testing.T) {
	c := &Client{Conversations: memory.NewConversationStore(), List: func(context.Context, bool) ([]infinity.ThreadInfo, error) { return nil, nil },
		Now: func(context.Context) (time.Time, error) { return time.Now(), nil }}
	_, err := c.Logs(context.Background(), "nope", LogOptions{}, func(Line) error { return nil })
	if !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("logs of an unknown thread: %v", err)
	}
	if _, err := (&Client{}).Logs(context.Background(), "x", LogOptions{}, func(Line) error { return nil }); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("logs without a store: %v", err)
	}
}

func TestDedupID(t *testing.T) {
	for in, want := range map[string]string{
		"0b7f3c1e-1111-2222-3333-444455556666": "redrive-0b7f3c1e-1111-2222-3333-444455556666",
		"a b\tc":                               "redrive-a_b_c",
		strings.Repeat("x", 200):               "redrive-" + strings.Repeat("x", 120),
	} {
		if got := dedupID(in); got != want {
			t.Errorf("dedupID(%q) = %q, want %q", in, got, want)
		}
	}
}

// A redriven body without an id keeps the id the agent function gave it
// ("sqs-" and the original SQS message id), so the thread applies it once.
func TestRedriveKeepsTheMessageID(t *testing.T) {
	for _, tc := range []struct {
		d    DeadLetter
		want string
	}{
		{DeadLetter{Body: `{"content":{"type":"text","text":"hi"}}`, OriginalID: "orig-1", MessageID: "dlq-1"}, "sqs-orig-1"},
		{DeadLetter{Body: `{"content":{"type":"text","text":"hi"}}`, MessageID: "dlq-1"}, "sqs-dlq-1"},
		{DeadLetter{Body: `{"id":"m7","content":{"type":"text","text":"hi"}}`, OriginalID: "orig-1"}, "m7"},
	} {
		var got struct{ ID string }
		if err := json.Unmarshal([]byte(withID(tc.d)), &got); err != nil || got.ID != tc.want {
			t.Errorf("%s: id %q, %v; want %q", tc.d.Body, got.ID, err, tc.want)
		}
	}
	if got := withID(DeadLetter{Body: "not json"}); got != "not json" {
		t.Errorf("a body that is not JSON became %q", got)
	}
}

// Budget notices: a raise or a warning asks nothing of a thread that had
// answered; a spent notice is over_budget, and settled.
func TestStatusWithBudgetNotices(t *testing.T) {
	root := infinity.ThreadInfo{ID: "r", Root: "r"}
	user := infinity.Item{ID: "u", Kind: infinity.KindUser, Text: "hi"}
	answer := infinity.Item{ID: "a", Kind: infinity.KindAssistant, Text: "hello"}
	raised := infinity.Item{ID: "b", Kind: infinity.KindUser, Text: "[budget] raised", Notice: infinity.NoticeBudgetRaised}
	spent := infinity.Item{ID: "s", Kind: infinity.KindUser, Text: "[budget] spent", Notice: infinity.NoticeBudgetSpent}
	if s, d, _ := status(root, []infinity.Item{user, answer, raised}); s != StatusWaiting || d != WaitingForInput {
		t.Errorf("after a raise: %s %s", s, d)
	}
	if s, _, _ := status(root, []infinity.Item{user, spent}); s != StatusOverBudget || !settled(root, []infinity.Item{user, spent}) {
		t.Errorf("stopped by the budget: %s", s)
	}
	if s, _, _ := status(root, []infinity.Item{user, spent, raised}); s != StatusRunning {
		t.Errorf("going on after a raise: %s", s)
	}
}
