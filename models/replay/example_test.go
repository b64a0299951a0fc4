package replay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// Record a run to a file, then replay it offline: the same answer with no
// model at all, and a loud failure for a request the recording does not
// hold.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "replay-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "run.jsonl")
	model, _ := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: "Monday: plan. Tuesday: do."}},
	}})
	agents := []actors.Agent{{Name: "helper", System: "You plan weeks."}}

	// Record: every model call goes to the file as it ends.
	rec, err := replay.Create(path, replay.RecordOptions{Models: []string{"scripted/scripted"}, Meta: map[string]string{"agent": "helper"}})
	if err != nil {
		panic(err)
	}
	rt, err := embedded.NewInMemory(embedded.Options{Config: actors.Config{Model: model, Agents: agents}, Record: rec})
	if err != nil {
		panic(err)
	}
	root, _ := rt.Start(ctx, actors.StartOptions{Agent: "helper", Text: "Plan my week."})
	answer, _ := rt.Wait(ctx, root, actors.UntilAnswered)
	rt.Close(ctx)
	rec.Close() // after the runtime
	fmt.Println("recorded:", answer.Text)

	// Replay: the recording's first root, started again with its input.
	pl, err := replay.Open(path)
	if err != nil {
		panic(err)
	}
	start := pl.Recording().Roots()[0]
	rt, err = embedded.NewInMemory(embedded.Options{Config: actors.Config{Agents: agents}, Replay: pl})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	root, _ = rt.Start(ctx, actors.StartOptions{Agent: "helper", ID: start.Thread, Text: start.Input})
	answer, err = rt.Wait(ctx, root, actors.UntilAnswered)
	fmt.Println("replayed:", answer.Text, err)

	other, _ := rt.Start(ctx, actors.StartOptions{Agent: "helper", Text: "Plan my month."})
	_, err = rt.Wait(ctx, other, actors.UntilAnswered)
	fmt.Println("not recorded:", errors.Is(err, replay.ErrNotRecorded))
	// Output:
	// recorded: Monday: plan. Tuesday: do.
	// replayed: Monday: plan. Tuesday: do. <nil>
	// not recorded: true
}
