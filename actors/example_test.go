package actors_test

import (
	"context"
	"fmt"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// Embedding the engine: memory stores, the local sender, a scripted model.
// The agent sleeps briefly, then answers.
func Example() {
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "sleep", Args: []byte(`{"seconds":0.05}`)}}}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "Rested and ready."}},
	}})
	answered := make(chan string, 1)
	rt, err := actors.New(actors.Config{
		Conversations: memory.NewConversationStore(),
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(d actors.Deliverer) infinity.InputSender { return local.New(d) },
		Host:          protohost.New,
		Agents:        []actors.Agent{{Name: "helper", System: "You are a patient helper."}},
		Observer: func(ev actors.Event) {
			if ev.Kind == actors.EventItem && ev.Item.Kind == infinity.KindAssistant {
				answered <- ev.Item.Text
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close(context.Background())

	root, err := rt.Start(context.Background(), actors.StartOptions{Agent: "helper", Text: "Take a short rest, then say so."})
	if err != nil {
		fmt.Println(err)
		return
	}
	select {
	case text := <-answered:
		fmt.Println(text)
	case <-time.After(5 * time.Second):
		fmt.Println("no answer")
	}
	h, _ := rt.History(context.Background(), root)
	for _, it := range h.Items {
		fmt.Println(it.Kind)
	}
	// Output:
	// Rested and ready.
	// user
	// tool_call
	// tool_result
	// assistant
}

// outbox records what a step-only runtime's slices send (on Lambda, the SQS
// sender puts it on the input queue).
type outbox struct{ sent []infinity.InputMessage }

func (o *outbox) Send(_ context.Context, msg infinity.InputMessage, _ time.Time) error {
	o.sent = append(o.sent, msg)
	return nil
}

// Step as the Lambda handler uses it: a runtime without a host runs one
// slice per call, in the caller's goroutine, for a batch of one thread's
// messages, and returns when it is committed. What the slice sends goes to
// the sender (here a recorder); redelivering the same batch changes nothing.
func ExampleRuntime_Step() {
	ctx := context.Background()
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Noted."}},
	}})
	conv, sent := memory.NewConversationStore(), &outbox{}
	rt, err := actors.New(actors.Config{
		Conversations: conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(actors.Deliverer) infinity.InputSender { return sent },
		StepOnly:      true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close(ctx)
	// The handler creates a root for user text to an unknown thread.
	conv.CreateThread(ctx, infinity.ThreadInfo{ID: "t1", Root: "t1", Agent: "default", Created: time.Now()})
	batch := []infinity.InputMessage{{ID: "sqs-1", GroupID: "t1", Content: infinity.TextContent("Remember the milk.")}}
	for range 2 { // at-least-once delivery: the second run is a no-op
		if err := rt.Step(ctx, batch); err != nil {
			fmt.Println(err)
			return
		}
	}
	items, _ := conv.Items(ctx, "t1", 0, -1)
	for _, it := range items {
		fmt.Println(it.Kind, it.Text)
	}
	// Output:
	// user Remember the milk.
	// assistant Noted.
}
