package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// queue stands for the input queue: what the functions send, taken in
// rounds.
type queue struct {
	mu   sync.Mutex
	msgs []infinity.InputMessage
}

func (q *queue) Send(_ context.Context, m infinity.InputMessage, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, m)
	return nil
}

func (q *queue) take() []infinity.InputMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}

type step struct{}

func (step) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "step", Description: "does a step of work", Schema: []byte(`{"type":"object"}`)}
}
func (step) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: "another step done"}}}, nil
}

// Three children of a budgeted tree, each working for ever, run in
// concurrent invocations of the agent function (one per message group, as
// the event source mapping runs them): the tree stops within one model
// call per running thread of its cap, because a budgeted slice commits
// each model call before the next.
func TestAgentBudgetConcurrentInvocations(t *testing.T) {
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "spawn_thread", Args: json.RawMessage(`{"instructions":"a","child_of":"$STACK"}`)},
			{Name: "spawn_thread", Args: json.RawMessage(`{"instructions":"b","child_of":"$STACK"}`)},
			{Name: "spawn_thread", Args: json.RawMessage(`{"instructions":"c","child_of":"$STACK"}`)}}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "sleep_until_event_or_input", Args: json.RawMessage(`{}`)}}}},
		{When: scripted.Match{Depth: ip(1)}, Reply: scripted.Reply{Delay: scripted.Duration(5 * time.Millisecond), Calls: []scripted.CallSpec{{Name: "step", Args: json.RawMessage(`{}`)}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Each group runs in a container of its own, as concurrent Lambda
	// invocations do: runtimes that share only the stores.
	conv, state := memory.NewConversationStore(), memory.NewStateStore(nil)
	q := &queue{}
	container := func() awslambda.Handler {
		var agent *lambda.Agent
		rt, err := actors.New(actors.Config{
			StepOnly: true, Conversations: conv, State: state, Model: model,
			Sender:   func(actors.Deliverer) infinity.InputSender { return q },
			Agents:   []actors.Agent{{Name: "worker", Tools: []infinity.Tool{step{}}}},
			Observer: func(ev actors.Event) { agent.Observe(ev) },
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close(context.Background()) })
		agent, err = lambda.NewAgent(lambda.AgentOptions{Runtime: rt, Conversations: conv, Output: &recorder{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return awslambda.NewHandler(agent.Handle)
	}
	containers := []awslambda.Handler{container(), container(), container(), container()}
	const budgetCap = 12
	first := infinity.InputMessage{ID: "start", GroupID: "root", Content: infinity.TextContent("go"), Budget: &infinity.Budget{ModelCalls: budgetCap}}
	pending := []infinity.InputMessage{first}
	seq := 0
	for round := 0; len(pending) > 0; round++ {
		if round == 200 {
			t.Fatal("the tree never came to rest")
		}
		groups := map[infinity.ThreadID][]events.SQSMessage{}
		for _, m := range pending {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			seq++
			groups[m.GroupID] = append(groups[m.GroupID], record(fmt.Sprintf("r%d", seq), string(m.GroupID), fmt.Sprint(seq), string(b)))
		}
		var wg sync.WaitGroup
		// One invocation per group, at once, each in its own container (a
		// group's container changes from round to round).
		i := round
		for _, recs := range groups {
			h := containers[i%len(containers)]
			i++
			wg.Go(func() {
				out, err := h.Invoke(t.Context(), eventJSON(t, recs...))
				var resp events.SQSEventResponse
				if err != nil || json.Unmarshal(out, &resp) != nil || len(resp.BatchItemFailures) != 0 {
					t.Errorf("invocation: %v %s", err, out)
				}
			})
		}
		wg.Wait()
		pending = q.take()
	}
	calls, stopped := 0, 0
	var walk func(id infinity.ThreadID)
	walk = func(id infinity.ThreadID) {
		items, err := conv.Items(t.Context(), id, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Usage != nil {
				calls++
			}
		}
		if len(items) > 0 && items[len(items)-1].Notice == infinity.NoticeBudgetSpent {
			stopped++
		}
		kids, err := conv.Children(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			walk(k.ID)
		}
	}
	walk("root")
	if calls < budgetCap || calls > budgetCap+4 || stopped < 3 {
		t.Fatalf("%d model calls under a cap of %d (at most one over per running thread: %d), %d threads stopped", calls, budgetCap, budgetCap+4, stopped)
	}
}

func ip(n int) *int { return &n }
