package actors_test

import (
	"context"
	"errors"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// A Start retried with the same id and request answers with the thread and
// applies its first message once; another request for the id is refused.
func TestStartIsIdempotentWithAnID(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "hello"}}})
	ctx := t.Context()
	o := actors.StartOptions{ID: "same", Text: "hi"}
	for range 2 {
		if id, err := e.rt.Start(ctx, o); err != nil || id != "same" {
			t.Fatalf("Start = %q, %v", id, err)
		}
		e.settle()
	}
	if own := e.own("same"); len(own) != 2 || own[0].Text != "hi" || own[1].Text != "hello" {
		t.Fatalf("history %s", transcript(own))
	}
	for _, other := range []actors.StartOptions{{ID: "same", Text: "something else"}, {ID: "same", Text: "hi", Model: "scripted/other"}} {
		if _, err := e.rt.Start(ctx, other); !errors.Is(err, infinity.ErrExists) && !errors.Is(err, infinity.ErrNotFound) {
			t.Errorf("Start %+v on a taken id: %v, want ErrExists", other, err)
		}
	}
	// Without an id every Start is a new thread.
	a, _ := e.rt.Start(ctx, actors.StartOptions{Text: "hi"})
	b, _ := e.rt.Start(ctx, actors.StartOptions{Text: "hi"})
	if a == b || a == "" {
		t.Fatalf("two starts without an id gave %q and %q", a, b)
	}
}

// A Start that cannot run leaves no thread behind: after Close it is
// ErrStopped, and a step-only runtime says it has no host.
func TestStartLeavesNothingWhenItFails(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{Reply: scripted.Reply{Text: "ok"}}})
	if err := e.rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := e.rt.Start(t.Context(), actors.StartOptions{ID: "late", Text: "hi"})
	if !errors.Is(err, actors.ErrStopped) {
		t.Fatalf("Start after Close: %v, want ErrStopped", err)
	}
	if _, err := e.conv.Thread(t.Context(), "late"); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("a failed Start left thread late behind: %v", err)
	}
	if _, err := e.rt.Send(t.Context(), "late", "hi"); !errors.Is(err, actors.ErrStopped) {
		t.Fatalf("Send after Close: %v, want ErrStopped", err)
	}
}
