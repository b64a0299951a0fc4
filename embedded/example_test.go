package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// The minimal embedding: an in-memory runtime, one agent, one thread. (The
// README's Go API section is this example's body, checked by a test.)
func Example() {
	ctx := context.Background()
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Monday: plan. Tuesday: do."}},
	}})
	// README begin
	rt, err := embedded.NewInMemory(embedded.Options{Config: actors.Config{
		Model:  model, // any infinity.ModelProvider
		Agents: []actors.Agent{{Name: "helper", System: "You plan weeks."}},
	}})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	root, err := rt.Start(ctx, actors.StartOptions{Agent: "helper", Text: "Plan my week."})
	if err != nil {
		panic(err)
	}
	answer, err := rt.Wait(ctx, root, actors.UntilAnswered)
	if err != nil {
		panic(err)
	}
	fmt.Println(answer.Text)
	// README end
	// Output: Monday: plan. Tuesday: do.
}

// A durable runtime in a directory: a thread that sleeps across a restart
// wakes on time after the next Open, with nothing else to call.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "infinity-example")
	defer os.RemoveAll(dir)
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "sleep", Args: json.RawMessage(`{"seconds": 0.2}`)}}}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "Awake again."}},
	}})
	opts := embedded.Options{Config: actors.Config{Model: model}}

	rt, err := embedded.Open(ctx, dir, opts)
	if err != nil {
		panic(err)
	}
	root, _ := rt.Start(ctx, actors.StartOptions{ID: "napper", Text: "Take a nap."})
	rt.Wait(ctx, root, actors.UntilIdle) // asleep now
	rt.Close(ctx)                        // the process could end here

	rt, err = embedded.Open(ctx, dir, opts)
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	answer, _ := rt.Wait(ctx, root, actors.UntilAnswered)
	fmt.Println(answer.Text)
	// Output: Awake again.
}

// clock is a synchronous tool: it answers inline and the model goes on.
type clock struct{}

func (clock) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "clock", Description: "Tells the time in UTC.",
		Schema: json.RawMessage(`{"type":"object","properties":{}}`)}
}

func (clock) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: "12:00 UTC"}}}, nil
}

// courier is an asynchronous tool: Invoke starts the work and returns nil;
// the result arrives later as an input message for the call, which may
// come from anywhere (a webhook, another process). Invoke may run more than
// once for one call: the call's id makes its result's message id stable.
type courier struct{}

func (courier) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "deliver", Description: "Delivers a parcel; answers when it arrives.", Async: true,
		Schema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`)}
}

func (courier) Invoke(_ context.Context, env infinity.ToolEnv, call infinity.ToolCall) (*infinity.ToolResult, error) {
	go func() {
		time.Sleep(50 * time.Millisecond) // the parcel travels
		env.Sender.Send(context.Background(), infinity.InputMessage{
			ID: infinity.MessageID("delivered-" + call.ID), GroupID: env.Thread,
			Content: infinity.ResultContent(call.ID, "delivered"),
		}, time.Time{})
	}()
	return nil, nil
}

// Tools of your own, one that answers at once and one that answers later.
func Example_tools() {
	ctx := context.Background()
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "clock"}}}},
		{When: scripted.Match{LastTool: "clock"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "deliver", Args: json.RawMessage(`{"to":"Ada"}`)}}}},
		{When: scripted.Match{LastTool: "deliver"}, Reply: scripted.Reply{Text: "At noon the parcel reached Ada."}},
	}})
	rt, err := embedded.NewInMemory(embedded.Options{Config: actors.Config{
		Model:  model,
		Agents: []actors.Agent{{Name: "dispatcher", Tools: []infinity.Tool{clock{}, courier{}}}},
	}})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	root, _ := rt.Start(ctx, actors.StartOptions{Text: "Send Ada her parcel and tell me when."})
	answer, _ := rt.Wait(ctx, root, actors.UntilAnswered)
	fmt.Println(answer.Text)
	// Output: At noon the parcel reached Ada.
}

// echo is a model provider of your own: Stream yields text deltas, any
// tool calls, then one StreamDone with the stop reason and usage. A
// transient failure is yielded as an error wrapping infinity.ErrRetryable
// (the engine discards the partial response and retries).
type echo struct{}

func (echo) Models(context.Context) ([]infinity.ModelInfo, error) {
	return []infinity.ModelInfo{{ID: "echo-1", ContextWindow: 8192, MaxOutput: 1024}}, nil
}

func (echo) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		last := req.Items[len(req.Items)-1].Text
		for _, word := range strings.Fields("You said: " + last) {
			if ctx.Err() != nil {
				yield(infinity.StreamEvent{}, ctx.Err())
				return
			}
			if !yield(infinity.StreamEvent{Kind: infinity.StreamText, Text: word + " "}, nil) {
				return
			}
		}
		yield(infinity.StreamEvent{Kind: infinity.StreamDone, Stop: infinity.StopEnd,
			Usage: infinity.Usage{Input: 10, Output: 4}}, nil)
	}
}

// A model provider of your own.
func Example_modelProvider() {
	ctx := context.Background()
	rt, err := embedded.NewInMemory(embedded.Options{Config: actors.Config{Model: echo{}}})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	root, _ := rt.Start(ctx, actors.StartOptions{Text: "hello there"})
	answer, _ := rt.Wait(ctx, root, actors.UntilAnswered)
	fmt.Println(strings.TrimSpace(answer.Text))
	// Output: You said: hello there
}

// Following what a thread and its children commit, as it happens.
func Example_follow() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Depth: ptr(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "spawn_thread", Args: json.RawMessage(`{"instructions":"count to two","child_of":"$STACK"}`)}}}},
		{When: scripted.Match{Depth: ptr(1), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "close_thread", Args: json.RawMessage(`{"thread_id":"$THREAD","report_to_parent":"one, two"}`)}}}},
		{When: scripted.Match{Depth: ptr(0), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "sleep_until_event_or_input"}}}},
		{When: scripted.Match{Depth: ptr(0), LastTool: "receive_event__injected"}, Reply: scripted.Reply{Text: "The child counted."}},
	}})
	rt, err := embedded.NewInMemory(embedded.Options{Config: actors.Config{Model: model}})
	if err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())
	// Following before the start sees everything the tree commits.
	events := rt.Follow(ctx, "counter", true)
	root, _ := rt.Start(ctx, actors.StartOptions{ID: "counter", Text: "Have a child count to two."})
	for ev := range events {
		switch {
		case ev.Kind == actors.EventThreadCreated && ev.Info.Parent != "":
			fmt.Println("spawned a child")
		case ev.Kind == actors.EventThreadClosed:
			fmt.Println("the child closed")
		case ev.Kind == actors.EventItem && ev.Thread == root && ev.Item.Kind == infinity.KindAssistant && ev.Item.Text != "":
			fmt.Println("root:", ev.Item.Text)
			cancel()
		}
	}
	// Output:
	// spawned a child
	// the child closed
	// root: The child counted.
}

func ptr(n int) *int { return &n }
