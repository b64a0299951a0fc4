package actors_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// CloseThread on a sleeping child closes it and its subtree and tells the
// parent; on the root it closes the whole tree, sleeping or not.
func TestCloseThreadByRequest(t *testing.T) {
	rules := []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("spawn_thread", `{"instructions":"a","child_of":"$STACK"}`),
			call("spawn_thread", `{"instructions":"b","child_of":"$STACK"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread", LastText: "inside"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("spawn_thread", `{"instructions":"leaf","child_of":"$STACK"}`)}}},
		{When: scripted.Match{}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep", `{"seconds":86400}`)}}},
	}
	e := newEnv(t, rules)
	root := e.start("go")
	e.waitFor("the tree to grow", func() bool {
		k := e.children(root)
		return len(k) == 2 && len(e.children(k[0].ID)) == 1 && len(e.children(k[1].ID)) == 1
	})
	e.settle()
	kids := e.children(root)
	a, b := kids[0].ID, kids[1].ID
	leafA := e.children(a)[0].ID

	if _, err := e.rt.CloseThread(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	e.waitFor("a to close", func() bool { return e.info(a).Closed })
	e.settle()
	if !e.info(leafA).Closed || e.info(b).Closed || e.info(root).Closed {
		t.Fatal("closing a reached beyond its subtree, or not all of it")
	}
	if tr := transcript(e.own(root)); !strings.Contains(tr, "Child thread "+string(a)+" was closed by the user.") {
		t.Fatalf("the parent was not told:\n%s", tr)
	}
	if _, err := e.rt.CloseThread(context.Background(), a); !errors.Is(err, infinity.ErrClosed) {
		t.Fatalf("closing a closed thread: %v, want ErrClosed", err)
	}

	if _, err := e.rt.CloseThread(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the root to close", func() bool { return e.info(root).Closed })
	e.settle()
	for _, id := range []infinity.ThreadID{b, e.children(b)[0].ID} {
		if !e.info(id).Closed {
			t.Fatalf("%s is open after its root closed", id)
		}
	}
	if _, err := e.rt.CloseThread(context.Background(), "t-nobody"); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("closing an unknown thread: %v, want ErrNotFound", err)
	}
	noErrors(t, e)
}

// An agent added to a running runtime brings its own model provider.
func TestAddAgentWithOwnProvider(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "default model"}}})
	other, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "own model"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.AddAgent(actors.Agent{Name: "mine", Provider: other}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.AddAgent(actors.Agent{Name: "mine", Provider: other}); !errors.Is(err, infinity.ErrExists) {
		t.Fatalf("adding an agent twice: %v, want ErrExists", err)
	}
	id, err := e.rt.Start(context.Background(), actors.StartOptions{Agent: "mine", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("a reply", func() bool { return e.last(id) == "own model" })
	if !e.rt.HasAgent("mine") || e.rt.HasAgent("nobody") {
		t.Fatal("HasAgent is wrong")
	}
}

// Wake sends what a thread's outbox still holds, with no input.
func TestWakeDrainsOutbox(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "ok"}}})
	ctx := context.Background()
	if err := e.conv.CreateThread(ctx, infinity.ThreadInfo{ID: "t-a", Root: "t-a", Agent: "default"}); err != nil {
		t.Fatal(err)
	}
	msg := infinity.InputMessage{ID: "m-later", GroupID: "t-a", Content: infinity.TextContent("")}
	msg.Synthetic = &infinity.Synthetic{Type: infinity.SyntheticContinue}
	if _, err := e.conv.Commit(ctx, infinity.Commit{Thread: "t-a", Items: []infinity.Item{{ID: "u", Kind: infinity.KindUser, Text: "x"}},
		Outbox: []infinity.Outgoing{{ID: "o1", Message: &msg, At: t0.Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Wake("t-a"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the outbox to drain", func() bool {
		out, err := e.conv.Outbox(ctx, "t-a")
		return err == nil && len(out) == 0
	})
}

// A thread whose agent the runtime does not know fails with the reason; it
// does not run on the default agent's model.
func TestUnknownAgentFails(t *testing.T) {
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "default model"}}})
	ctx := context.Background()
	if err := e.conv.CreateThread(ctx, infinity.ThreadInfo{ID: "t-x", Root: "t-x", Agent: "gone"}); err != nil {
		t.Fatal(err)
	}
	e.send("t-x", "hello")
	e.waitFor("the slice error", func() bool { return len(e.sliceErrors()) > 0 })
	if err := e.sliceErrors()[0]; !errors.Is(err, infinity.ErrNotFound) || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("slice error %v, want ErrNotFound naming the agent", err)
	}
	if strings.Contains(transcript(e.own("t-x")), "default model") {
		t.Fatal("the thread ran on the default agent")
	}
}

// awaitingProvider answers ErrAwaitingUser until ready, then as next.
type awaitingProvider struct {
	next  infinity.ModelProvider
	ready *atomic.Bool
	calls *atomic.Int32
}

func (p awaitingProvider) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	return p.next.Models(ctx)
}

func (p awaitingProvider) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	p.calls.Add(1)
	if !p.ready.Load() {
		return func(yield func(infinity.StreamEvent, error) bool) {
			yield(infinity.StreamEvent{}, fmt.Errorf("the tool server waits for its authorization: %w", infinity.ErrAwaitingUser))
		}
	}
	return p.next.Stream(ctx, req)
}

// A slice that must wait for a person (ErrAwaitingUser) is no failure:
// no slice error, no retries in a loop; its input waits, and a Wake runs
// it once the person has acted.
func TestAwaitingUserWaitsForAWake(t *testing.T) {
	var ready atomic.Bool
	var calls atomic.Int32
	e, id := startGated(t, func(next infinity.ModelProvider) infinity.ModelProvider {
		return awaitingProvider{next, &ready, &calls}
	})
	e.waitFor("the first try", func() bool { return calls.Load() > 0 })
	time.Sleep(500 * time.Millisecond) // a retry loop would call again and again
	if n := calls.Load(); n != 1 {
		t.Fatalf("the model was called %d times while the thread waited for the user, want 1", n)
	}
	if errs := e.sliceErrors(); len(errs) != 0 {
		t.Fatalf("slice errors while waiting for the user: %v", errs)
	}
	ready.Store(true)
	if err := e.rt.Wake(id); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the reply after the wake", func() bool { return e.last(id) == "authorized now" })
	noErrors(t, e)
}

// A wake that comes while the waiting slice still runs (the person acted
// just as it was refused) is not lost: the thread looks again at once,
// not at the next recheck minutes later.
func TestAwaitingUserWakeDuringTheSlice(t *testing.T) {
	var ready atomic.Bool
	var calls atomic.Int32
	inside, release := make(chan struct{}), make(chan struct{})
	e, id := startGated(t, func(next infinity.ModelProvider) infinity.ModelProvider {
		return blockingAwaiting{awaitingProvider{next, &ready, &calls}, inside, release}
	})
	<-inside // the slice is being refused
	ready.Store(true)
	if err := e.rt.Wake(id); err != nil {
		t.Fatal(err)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for e.last(id) != "authorized now" {
		if time.Now().After(deadline) {
			t.Fatal("the wake that came during the slice was lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
	noErrors(t, e)
}

// blockingAwaiting is awaitingProvider whose first refusal waits for
// release, after saying so on inside.
type blockingAwaiting struct {
	awaitingProvider
	inside, release chan struct{}
}

func (p blockingAwaiting) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	if p.calls.Load() == 0 {
		p.calls.Add(1)
		return func(yield func(infinity.StreamEvent, error) bool) {
			close(p.inside)
			<-p.release
			yield(infinity.StreamEvent{}, fmt.Errorf("the tool server waits for its authorization: %w", infinity.ErrAwaitingUser))
		}
	}
	return p.awaitingProvider.Stream(ctx, req)
}

// startGated starts a thread on an agent whose provider is gate around a
// scripted model that answers "authorized now".
func startGated(t *testing.T, gate func(infinity.ModelProvider) infinity.ModelProvider) (*env, infinity.ThreadID) {
	t.Helper()
	e := newEnv(t, []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "default model"}}})
	next, err := scripted.New(scripted.Script{Rules: []scripted.Rule{{When: scripted.Match{}, Reply: scripted.Reply{Text: "authorized now"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.AddAgent(actors.Agent{Name: "gated", Provider: gate(next)}); err != nil {
		t.Fatal(err)
	}
	id, err := e.rt.Start(context.Background(), actors.StartOptions{Agent: "gated", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	return e, id
}
