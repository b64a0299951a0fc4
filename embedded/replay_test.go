package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/models/replay"
)

// runOnce starts one thread with text and returns its answer.
func runOnce(t *testing.T, o embedded.Options, id, text string) (string, error) {
	t.Helper()
	rt, err := embedded.NewInMemory(o)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRuntime(t, rt)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	root, err := rt.Start(ctx, actors.StartOptions{ID: infinity.ThreadID(id), Text: text})
	if err != nil {
		t.Fatal(err)
	}
	last, err := rt.Wait(ctx, root, actors.UntilAnswered)
	return last.Text, err
}

// Options.Record records the calls of Config.Model and of the agents'
// own providers; Options.Replay serves them again with no provider at all,
// and the caller's agents are left as they were.
func TestRecordAndReplayOptions(t *testing.T) {
	cfg := sleeper(t)
	agentModel := cfg.Model
	cfg.Agents = append(cfg.Agents, actors.Agent{Name: "own", Provider: agentModel, ProviderName: "scripted"})
	var file bytes.Buffer
	rec, err := replay.NewRecorder(&file, replay.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := runOnce(t, embedded.Options{Config: cfg, Record: rec}, "one", "hi"); err != nil || got != "Hello." {
		t.Fatalf("recorded run: %q, %v", got, err)
	}
	if cfg.Agents[1].Provider != agentModel {
		t.Fatal("Record changed the caller's agent")
	}
	own := cfg
	own.Agents = []actors.Agent{cfg.Agents[1]}
	if got, err := runOnce(t, embedded.Options{Config: own, Record: rec}, "two", "hello"); err != nil || got != "Hello." {
		t.Fatalf("recorded run of the agent with its own provider: %q, %v", got, err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	recording, err := replay.Decode(&file)
	if err != nil {
		t.Fatal(err)
	}
	if len(recording.Calls) != 2 || recording.Calls[0].Provider != replay.DefaultName || recording.Calls[1].Provider != "scripted" {
		t.Fatalf("recorded calls: %+v", recording.Calls)
	}

	pl := replay.NewPlayer(recording)
	offline := actors.Config{Agents: []actors.Agent{{Name: "sleeper"}}}
	if got, err := runOnce(t, embedded.Options{Config: offline, Replay: pl}, "one", "hi"); err != nil || got != "Hello." {
		t.Fatalf("replayed run: %q, %v", got, err)
	}
	offline.Agents = []actors.Agent{{Name: "own", ProviderName: "scripted"}}
	if got, err := runOnce(t, embedded.Options{Config: offline, Replay: pl}, "two", "hello"); err != nil || got != "Hello." {
		t.Fatalf("replayed run of the agent with its own provider: %q, %v", got, err)
	}
	if n := len(pl.Unused()); n != 0 {
		t.Fatalf("%d calls unused", n)
	}
	_, err = runOnce(t, embedded.Options{Config: offline, Replay: pl}, "three", "something else")
	if !errors.Is(err, replay.ErrNotRecorded) {
		t.Fatalf("a request not recorded: %v", err)
	}
}
