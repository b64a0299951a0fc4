package actors_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// A Runtime without a Host (the Lambda handler's) runs slices through Step
// and refuses input that would need an actor.
func TestNoHost(t *testing.T) {
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{Reply: scripted.Reply{Text: "ok"}}}})
	if err != nil {
		t.Fatal(err)
	}
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{
		StepOnly:      true,
		Conversations: conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(d actors.Deliverer) infinity.InputSender { return local.New(d) },
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Idle:          20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	ctx := context.Background()
	id := infinity.ThreadID("t-nohost")
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id}); err != nil {
		t.Fatal(err)
	}

	msg := infinity.InputMessage{ID: infinity.NewMessageID(), GroupID: id, Content: infinity.TextContent("hello")}
	if err := rt.Step(ctx, []infinity.InputMessage{msg}); err != nil {
		t.Fatalf("Step: %v", err)
	}
	h, err := rt.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Items); n != 2 || h.Items[1].Kind != infinity.KindAssistant || h.Items[1].Text != "ok" {
		t.Fatalf("history after Step: %+v", h.Items)
	}

	next := infinity.InputMessage{ID: infinity.NewMessageID(), GroupID: id, Content: infinity.TextContent("again")}
	if err := rt.Deliver(next); !errors.Is(err, actors.ErrNoHost) {
		t.Errorf("Deliver: got %v, want ErrNoHost", err)
	}
	if err := rt.Wake(id); !errors.Is(err, actors.ErrNoHost) {
		t.Errorf("Wake: got %v, want ErrNoHost", err)
	}
	if _, err := rt.Send(ctx, id, "again"); !errors.Is(err, actors.ErrNoHost) {
		t.Errorf("Send through a local sender: got %v, want ErrNoHost", err)
	}
	if _, err := rt.Start(ctx, actors.StartOptions{Text: "hi"}); !errors.Is(err, actors.ErrNoHost) {
		t.Errorf("Start through a local sender: got %v, want ErrNoHost", err)
	}

	// The thread passivates after Idle like one with an actor.
	deadline := time.Now().Add(2 * time.Second)
	for rt.Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Active = %d after Idle, want 0", rt.Active())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rt.Step(ctx, []infinity.InputMessage{next}); !errors.Is(err, actors.ErrStopped) {
		t.Errorf("Step after Close: got %v, want ErrStopped", err)
	}
}

// Two raises in one batch both count, and a budget on a later user message
// (only a root's first message carries one) raises nothing.
func TestBudgetRaisesInOneBatch(t *testing.T) {
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{Reply: scripted.Reply{Text: "ok"}}}})
	if err != nil {
		t.Fatal(err)
	}
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{StepOnly: true, Conversations: conv, State: memory.NewStateStore(nil), Model: model,
		Sender: func(d actors.Deliverer) infinity.InputSender { return local.New(d) }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	ctx := context.Background()
	id := infinity.ThreadID("t-budget")
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id}); err != nil {
		t.Fatal(err)
	}
	step := func(msgs ...infinity.InputMessage) {
		t.Helper()
		if err := rt.Step(ctx, msgs); err != nil {
			t.Fatalf("Step: %v", err)
		}
	}
	text := func(mid, s string, b *infinity.Budget) infinity.InputMessage {
		return infinity.InputMessage{ID: infinity.MessageID(mid), GroupID: id, Content: infinity.TextContent(s), Budget: b}
	}
	raise := func(mid string, calls int64) infinity.InputMessage {
		return infinity.InputMessage{ID: infinity.MessageID(mid), GroupID: id, Content: infinity.TextContent(""),
			Synthetic: &infinity.Synthetic{Type: infinity.SyntheticBudget}, Budget: &infinity.Budget{ModelCalls: calls}}
	}
	step(text("m1", "hello", &infinity.Budget{ModelCalls: 5}))
	step(text("m2", "more", &infinity.Budget{ModelCalls: 1000}))
	step(raise("r1", 10), raise("r2", 100))
	tb, err := rt.TreeBudget(ctx, id)
	if err != nil || tb.Budget.ModelCalls != 115 {
		t.Fatalf("TreeBudget = %+v, %v; want 115 model calls (5, then 10 and 100)", tb.Budget, err)
	}
}
