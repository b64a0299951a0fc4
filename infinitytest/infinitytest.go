// Package infinitytest holds helpers for the tests of programs built on
// Infinity: run an agent tree in memory until its root has answered,
// record its model calls to a file, and replay such a recording offline
// (package models/replay), getting back the answer and the whole thread
// tree with each thread's history.
//
// Replaying a recording and checking what came of it:
//
//	func TestPlanner(t *testing.T) {
//		res := infinitytest.Replay(t, "testdata/plan.jsonl", planner, "Plan my week.")
//		if res.Answer != "Monday: plan. Tuesday: do." || len(res.Tree.Children) != 1 {
//			t.Fatalf("answer %q, tree:\n%s", res.Answer, res.Transcript())
//		}
//	}
//
// A request the recording does not hold fails the test with the lines
// that differ from the nearest recorded one. The recording is made once
// with Record (against a real model, or a local server of its API) and
// kept in testdata.
package infinitytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
	"github.com/infinity-runtime/infinity/models/replay"
)

// Thread is one thread of a tree, with its own history.
type Thread struct {
	Info infinity.ThreadInfo
	// Items are the thread's own items (not those it inherits), oldest
	// first.
	Items []infinity.Item
	// Children are the threads it spawned, in spawn order.
	Children []*Thread
}

// Result is what a run came to.
type Result struct {
	// Root is the root thread; Answer its answer, the text of its last
	// item.
	Root   infinity.ThreadID
	Answer string
	// Tree is the root's tree as the runtime stored it at the end.
	Tree *Thread
	// Unused are the recorded calls a replay did not ask for (Replay
	// only): none when the run went as recorded.
	Unused []replay.Call
}

// Threads returns every thread of the tree, parents before their
// children.
func (r Result) Threads() []*Thread {
	var out []*Thread
	var walk func(*Thread)
	walk = func(t *Thread) {
		out = append(out, t)
		for _, c := range t.Children {
			walk(c)
		}
	}
	if r.Tree != nil {
		walk(r.Tree)
	}
	return out
}

// Transcript writes the tree's histories as text that two runs of the
// same tree share: threads are named by their place in the tree ("root",
// "root/1" its first spawned child, "root/1/2", "root/e1" an event
// thread: infinity.ChildName), in text as well, and item ids, call ids
// and times are left out. Compare two runs' transcripts to
// compare their histories.
func (r Result) Transcript() string {
	names := map[string]string{}
	var order []*Thread
	var name func(*Thread, string)
	name = func(t *Thread, n string) {
		names[string(t.Info.ID)] = n
		order = append(order, t)
		kinds := make([]infinity.ThreadKind, len(t.Children))
		for i, c := range t.Children {
			kinds[i] = c.Info.Kind
		}
		for i, c := range t.Children {
			name(c, infinity.ChildName(n, kinds, i))
		}
	}
	if r.Tree == nil {
		return ""
	}
	name(r.Tree, "root")
	ids := slices.SortedFunc(maps.Keys(names), func(a, b string) int { return len(b) - len(a) }) // longest first
	rename := func(t string) string {
		var b strings.Builder
		for i := 0; i < len(t); {
			if i == 0 || !idChar(t[i-1]) {
				if id := matchID(t[i:], ids); id != "" {
					b.WriteString(names[id])
					i += len(id)
					continue
				}
			}
			b.WriteByte(t[i])
			i++
		}
		return b.String()
	}
	var b strings.Builder
	for _, t := range order {
		n := names[string(t.Info.ID)]
		fmt.Fprintf(&b, "== %s (agent %q", n, t.Info.Agent)
		if t.Info.Closed {
			b.WriteString(", closed")
		}
		b.WriteString(")\n")
		for _, it := range t.Items {
			var line string
			switch {
			case it.Call != nil:
				line = "call " + it.Call.Name + " " + string(it.Call.Args)
			case it.Result != nil:
				line = "result"
				if it.Result.IsError {
					line += " (error)"
				}
				line += ": " + it.Result.Text()
			default:
				line = it.Kind.String() + ": " + it.Text
			}
			if it.Usage != nil {
				line += " ["
				if it.Model != "" {
					line += it.Model + ", "
				}
				line += fmt.Sprintf("%d in, %d out]", it.Usage.Input, it.Usage.Output)
			}
			fmt.Fprintf(&b, "%s: %s\n", n, rename(line))
		}
	}
	return b.String()
}

// idChar reports whether c may be part of a thread id, other than '.'
// (which ends sentences).
func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// matchID returns the first of ids that t starts with as a whole word.
func matchID(t string, ids []string) string {
	for _, id := range ids {
		if strings.HasPrefix(t, id) && (len(t) == len(id) || !idChar(t[len(id)])) {
			return id
		}
	}
	return ""
}

// Option changes how a run goes.
type Option func(*options)

type options struct {
	id      infinity.ThreadID
	idSet   bool
	timeout time.Duration
	config  func(*actors.Config)
}

// WithID starts the root under id ("": a new generated one). Replay's
// default is the recorded root's id when the recording began with the
// same input.
func WithID(id infinity.ThreadID) Option {
	return func(o *options) { o.id, o.idSet = id, true }
}

// WithTimeout bounds the run (default 30 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithConfig changes the runtime's configuration before it is built (a
// clock, limits, a logger; logs are discarded otherwise).
func WithConfig(f func(*actors.Config)) Option { return func(o *options) { o.config = f } }

// Run runs agent on model from input until the root has answered (and
// the runtime is idle), and returns what came of it; it fails the test on
// an error.
func Run(t testing.TB, model infinity.ModelProvider, agent actors.Agent, input string, opts ...Option) Result {
	t.Helper()
	res, err := run(t.Context(), embedded.Options{Config: actors.Config{Model: model, Agents: []actors.Agent{agent}}}, nil, input, opts)
	if err != nil {
		t.Fatalf("infinitytest: %v", err)
	}
	return res
}

// Record is Run that also records the model calls to a new file at path
// (package models/replay), for Replay to serve later.
func Record(t testing.TB, path string, model infinity.ModelProvider, agent actors.Agent, input string, opts ...Option) Result {
	t.Helper()
	var names []string
	if model != nil {
		if ms, err := model.Models(t.Context()); err == nil && len(ms) > 0 {
			names = append(names, replay.DefaultName+"/"+ms[0].ID)
		}
	}
	if agent.Provider != nil {
		name := agent.ProviderName
		if name == "" {
			name = "agent:" + agent.Name
		}
		names = append(names, name+"/"+agent.Model)
	}
	rec, err := replay.Create(path, replay.RecordOptions{Models: names, Meta: map[string]string{"agent": agent.Name, "input": input}})
	if err != nil {
		t.Fatalf("infinitytest: %v", err)
	}
	res, err := run(t.Context(), embedded.Options{Config: actors.Config{Model: model, Agents: []actors.Agent{agent}}, Record: rec}, nil, input, opts)
	err = errors.Join(err, rec.Close())
	if err != nil {
		t.Fatalf("infinitytest: record %s: %v", path, err)
	}
	return res
}

// Replay runs agent from input with its model calls served by the
// recording at path, offline, and returns what came of it. A request the
// recording does not hold fails the test, with the lines that differ from
// the nearest recorded request. The agent is the one recorded, less its
// model: its providers, if any, are replaced by the recording's.
func Replay(t testing.TB, path string, agent actors.Agent, input string, opts ...Option) Result {
	t.Helper()
	res, err := TryReplay(t, path, agent, input, opts...)
	if err != nil {
		t.Fatalf("infinitytest: replay %s: %v", path, err)
	}
	return res
}

// TryReplay is Replay returning its error (one wrapping
// replay.ErrNotRecorded for a request the recording does not hold)
// instead of failing the test.
func TryReplay(t testing.TB, path string, agent actors.Agent, input string, opts ...Option) (Result, error) {
	t.Helper()
	pl, err := replay.Open(path)
	if err != nil {
		return Result{}, err
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if !o.idSet {
		for _, r := range pl.Recording().Roots() {
			if r.Input == input {
				opts = append(opts, WithID(r.Thread))
				break
			}
		}
	}
	res, err := run(t.Context(), embedded.Options{Config: actors.Config{Agents: []actors.Agent{agent}}, Replay: pl}, pl, input, opts)
	res.Unused = pl.Unused()
	return res, err
}

// run runs the tree on a new in-memory runtime and closes it; pl, when
// set, ends the wait at its first miss.
func run(ctx context.Context, eo embedded.Options, pl *replay.Player, input string, opts []Option) (_ Result, err error) {
	o := options{timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	eo.Config.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.config != nil {
		o.config(&eo.Config)
	}
	rt, err := embedded.NewInMemory(eo)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, rt.Close(cctx))
	}()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if pl != nil {
		go func() {
			select {
			case <-pl.Missed():
				stop(pl.Err())
			case <-wctx.Done():
			}
		}()
	}
	root, err := rt.Start(ctx, actors.StartOptions{ID: o.id, Text: input})
	if err != nil {
		return Result{}, err
	}
	res := Result{Root: root}
	last, err := rt.Wait(wctx, root, actors.UntilAnswered)
	if err == nil {
		err = rt.WaitIdle(wctx)
	}
	if pl != nil && pl.Err() != nil {
		err = pl.Err() // the first miss says more than what it led to
	}
	if err != nil {
		return res, err
	}
	res.Answer = last.Text
	res.Tree, err = tree(ctx, rt, root)
	return res, err
}

// tree reads the thread id and its descendants.
func tree(ctx context.Context, rt *embedded.Runtime, id infinity.ThreadID) (*Thread, error) {
	h, err := rt.History(ctx, id)
	if err != nil {
		return nil, err
	}
	t := &Thread{Info: h.Thread(), Items: h.Own()}
	kids, err := rt.Children(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, k := range kids {
		c, err := tree(ctx, rt, k.Info.ID)
		if err != nil {
			return nil, err
		}
		t.Children = append(t.Children, c)
	}
	return t, nil
}
