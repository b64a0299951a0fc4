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
