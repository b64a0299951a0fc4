package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/disk"
)

// sleeper sleeps the seconds its user asks for, then answers.
func sleeper(t *testing.T) actors.Config {
	t.Helper()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user", LastText: "sleep"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "sleep", Args: json.RawMessage(`{"seconds": 1}`)}}}},
		{When: scripted.Match{LastTool: "sleep"}, Reply: scripted.Reply{Text: "Rested."}},
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Hello."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return actors.Config{Model: model, Agents: []actors.Agent{{Name: "sleeper"}}}
}

func closeRuntime(t *testing.T, rt *embedded.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// Open, start threads, wait, follow, list, close: nothing is left running.
func TestInMemory(t *testing.T) {
	defer goleak.VerifyNone(t)
	rt, err := embedded.NewInMemory(embedded.Options{Config: sleeper(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id, err := rt.Start(ctx, actors.StartOptions{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	last, err := rt.Wait(ctx, id, actors.UntilAnswered)
	if err != nil || last.Text != "Hello." {
		t.Fatalf("Wait = %+v, %v", last, err)
	}

	// Follow sees what a message makes, in commit order.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan actors.Event, 16)
	followed := rt.Follow(fctx, id, false) // from here on
	go func() {
		defer close(events)
		for ev := range followed {
			events <- ev
			if ev.Kind == actors.EventSlice {
				return
			}
		}
	}()
	if _, err := rt.Send(ctx, id, "again"); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for ev := range events {
		if ev.Kind == actors.EventItem {
			texts = append(texts, ev.Item.Text)
		}
	}
	if len(texts) != 2 || texts[0] != "again" || texts[1] != "Hello." {
		t.Fatalf("followed items %q", texts)
	}

	// The slice event comes before the slice has quite ended (its inputs
	// are marked processed after it): the thread is idle soon after.
	var threads []actors.ThreadStatus
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		threads, err = rt.Threads(ctx, false)
		if err != nil || len(threads) != 1 || !threads[0].Busy || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(threads) != 1 || threads[0].Info.ID != id || threads[0].Items != 4 || threads[0].Busy {
		closeRuntime(t, rt)
		t.Fatalf("Threads = %+v, %v", threads, err)
	}
	closeRuntime(t, rt)
	if _, err := rt.Start(ctx, actors.StartOptions{Text: "late"}); !errors.Is(err, actors.ErrStopped) {
		t.Fatalf("Start after Close: %v, want ErrStopped", err)
	}
	closeRuntime(t, rt) // twice is fine
}

// A durable runtime closed while a thread sleeps wakes it after the next
// Open, with no call beyond Open.
func TestDurableRestartWakesASleeper(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	ctx := t.Context()
	rt, err := embedded.Open(ctx, dir, embedded.Options{Config: sleeper(t)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.Start(ctx, actors.StartOptions{ID: "nap", Text: "sleep please"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Wait(ctx, id, actors.UntilIdle); err != nil {
		t.Fatal(err)
	}
	threads, err := rt.Threads(ctx, true)
	if err != nil || len(threads) != 1 || threads[0].Waiting == nil || threads[0].Waiting.Name != "sleep" || threads[0].Wakes.IsZero() {
		t.Fatalf("before the restart: %+v, %v", threads, err)
	}
	closeRuntime(t, rt)

	rt, err = embedded.Open(ctx, dir, embedded.Options{Config: sleeper(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRuntime(t, rt)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	last, err := rt.Wait(wctx, id, actors.UntilAnswered)
	if err != nil || last.Text != "Rested." {
		t.Fatalf("after the restart: %+v, %v", last, err)
	}
	// A repeated Start of the same thread is harmless.
	if got, err := rt.Start(ctx, actors.StartOptions{ID: "nap", Text: "sleep please"}); err != nil || got != id {
		t.Fatalf("repeated Start = %q, %v", got, err)
	}
}

// What Open and NewInMemory set themselves is refused when given.
func TestOptionsRefuseWhatTheyMake(t *testing.T) {
	cfg := sleeper(t)
	cfg.StepOnly = true
	if _, err := embedded.NewInMemory(embedded.Options{Config: cfg}); !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("StepOnly: %v", err)
	}
}

// Input for a thread that does not exist (a late tool callback, say) is
// dropped and leaves the durable inbox: nothing waits for ever.
func TestInputForAnUnknownThreadLeavesTheInbox(t *testing.T) {
	ctx := t.Context()
	store, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rt, err := embedded.OpenStore(ctx, store, embedded.Options{Config: sleeper(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRuntime(t, rt)
	msg := infinity.InputMessage{ID: "late-result", GroupID: "nobody", Content: infinity.ResultContent("call_1", "done")}
	if err := rt.Sender().Send(ctx, msg, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, waiting, err := store.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still wait in the inbox", waiting)
		}
	}
}

// A follower that stops reading holds up only the thread it follows, and
// leaving a Follow loop early blocks nothing.
func TestFollowersDoNotHoldUpOthers(t *testing.T) {
	rt, err := embedded.NewInMemory(embedded.Options{Config: sleeper(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRuntime(t, rt)
	ctx := t.Context()
	a, _ := rt.Start(ctx, actors.StartOptions{ID: "a", Text: "hi"})
	if _, err := rt.Wait(ctx, a, actors.UntilAnswered); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = rt.Follow(fctx, a, true) // never read
	once := rt.Follow(ctx, a, false)
	if _, err := rt.Send(ctx, a, "once"); err != nil {
		t.Fatal(err)
	}
	for range once {
		break // leaves at the first event
	}
	b, _ := rt.Start(ctx, actors.StartOptions{ID: "b", Text: "hi"})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if last, err := rt.Wait(wctx, b, actors.UntilAnswered); err != nil || last.Text != "Hello." {
		t.Fatalf("another thread: %+v, %v", last, err)
	}
	if _, err := rt.Send(ctx, a, "again"); err != nil {
		t.Fatal(err)
	}
	cancel() // the unread follower goes: a's slices go on
	if last, err := rt.Wait(wctx, a, actors.UntilAnswered); err != nil || last.Text != "Hello." {
		t.Fatalf("the followed thread after its follower left: %+v, %v", last, err)
	}
}

// failing is a model whose every call fails for good (not retryable).
type failing struct{}

func (failing) Models(context.Context) ([]infinity.ModelInfo, error) {
	return []infinity.ModelInfo{{ID: "broken", ContextWindow: 1000, MaxOutput: 100}}, nil
}

func (failing) Stream(context.Context, infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		yield(infinity.StreamEvent{}, errors.New("the model refuses"))
	}
}

// Wait for an answer that cannot come (the model failed for good) returns
// that failure instead of waiting until its context ends.
func TestWaitReportsAModelFailure(t *testing.T) {
	rt, err := embedded.NewInMemory(embedded.Options{Config: actors.Config{Model: failing{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRuntime(t, rt)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	id, err := rt.Start(ctx, actors.StartOptions{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Wait(ctx, id, actors.UntilAnswered)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "the model refuses") {
		t.Fatalf("Wait = %v, want the model's failure", err)
	}
}
