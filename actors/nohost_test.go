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
