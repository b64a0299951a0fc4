// Package embedded runs Infinity inside a Go program: one call makes a
// ready runtime, in memory (NewInMemory) or durable in a directory (Open),
// with the protoactor host, the in-process mailbox and timers, and, for a
// durable one, everything a restart needs done: queued input and timers
// delivered again (overdue timers at once), threads whose sends a crash
// interrupted woken. What it links is the engine, the stores, the local
// sender and protoactor-go: no AWS SDK, database driver, model SDK or MCP
// SDK. Options.Record records a run's model calls and Options.Replay
// serves them again offline (package models/replay).
//
// The runtime is an *actors.Runtime (Start, Send, History, Threads, Wait,
// Follow, ...); Close stops it and closes the store.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

// Runtime is a running embedded runtime.
type Runtime struct {
	*actors.Runtime
	// Restored says what a durable runtime found to do when it opened:
	// messages and timers waiting (delivered, or re-armed), and threads
	// woken to send what a crash left in their outbox.
	Restored struct{ Waiting, Unsent int }
	close    func() error // the store's, when the runtime owns it
	once     sync.Once
}

// Options are what Open and NewInMemory add to the runtime's
// configuration.
type Options struct {
	// Config is the runtime's configuration: agents, model, observer,
	// limits. Its Conversations, State, Sender and Host are made by Open or
	// NewInMemory and must be left unset.
	Config actors.Config
	// BeforeRestore, when set, runs once the runtime is built and before
	// queued input is delivered again: the place to add agents
	// (Runtime.AddAgent) that stored threads run on.
	BeforeRestore func(*actors.Runtime) error
	// Sender adds options to the local sender's (mailbox/local): a
	// lateness observer for metrics, say.
	Sender []local.Option
	// Record, when set, records every model call of the runtime's
	// threads (package models/replay): Config.Model is wrapped under
	// replay.DefaultName, and the providers of Config.Agents as
	// Recorder.WrapAgent does. Wrap an agent added later
	// (Runtime.AddAgent) with Record.WrapAgent first. The caller closes
	// it, after the runtime.
	Record *replay.Recorder
	// Replay, when set, serves every model call from a recording
	// (replay.Open) instead of the configured providers: Config.Model
	// becomes Replay.Provider(replay.DefaultName), and the providers of
	// Config.Agents are replaced as Player.ServeAgent does (Config.Model
	// may then be nil). With Record too, the replayed calls are recorded
	// again.
	Replay *replay.Player
}

// NewInMemory makes a runtime whose threads live in memory: nothing
// survives Close.
func NewInMemory(o Options) (*Runtime, error) {
	conv := memory.NewConversationStore()
	state := memory.NewStateStore(o.Config.Clock)
	rt, err := build(o, conv, state, nil)
	if err != nil {
		return nil, err
	}
	if o.BeforeRestore != nil {
		if err := o.BeforeRestore(rt); err != nil {
			rt.Close(context.Background())
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	return &Runtime{Runtime: rt}, nil
}

// Open makes a durable runtime on the store in dir (created if needed,
// persistence/disk; a journal store of earlier versions is converted): every message accepted and every timer set is on disk
// before the call that made it returns, and after a restart (this same
// call) sleeping threads wake on time and queued input runs. Only one
// process may have dir open.
func Open(ctx context.Context, dir string, o Options) (*Runtime, error) {
	store, err := disk.Open(dir, disk.WithLogger(o.Config.Logger))
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	r, err := OpenStore(ctx, store, o)
	if err != nil {
		store.Close()
		return nil, err
	}
	r.close = store.Close
	return r, nil
}

// OpenStore is Open on a store the caller opened and closes (the daemon,
// which reads it for its API): Close leaves it open.
func OpenStore(ctx context.Context, store *disk.Store, o Options) (_ *Runtime, err error) {
	var sender *local.Sender
	rt, err := build(o, store.Conversations(), store.State(), func(d actors.Deliverer) infinity.InputSender {
		sender = local.New(d, append([]local.Option{local.WithInbox(store.Inbox()), local.WithLogger(o.Config.Logger)}, o.Sender...)...)
		return sender
	})
	if err != nil {
		return nil, err
	}
	r := &Runtime{Runtime: rt}
	defer func() {
		if err != nil {
			// Bounded: what already runs is cut short; its input runs
			// again at the next open.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r.Close(ctx)
		}
	}()
	if o.BeforeRestore != nil {
		if err := o.BeforeRestore(rt); err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
	}
	if r.Restored.Waiting, err = sender.Restore(ctx); err != nil {
		return nil, fmt.Errorf("embedded: restore: %w", err)
	}
	unsent, err := store.Unsent(ctx)
	if err != nil {
		return nil, fmt.Errorf("embedded: restore: %w", err)
	}
	for _, id := range unsent {
		if err := rt.Wake(id); err != nil {
			return nil, fmt.Errorf("embedded: restore: %w", err)
		}
	}
	r.Restored.Unsent = len(unsent)
	return r, nil
}

// build makes the runtime on the stores, with the protoactor host and the
// local sender (mk; nil: one without an inbox).
func build(o Options, conv infinity.ConversationStore, state infinity.StateStore, mk func(actors.Deliverer) infinity.InputSender) (*actors.Runtime, error) {
	cfg := o.Config
	if cfg.Conversations != nil || cfg.State != nil || cfg.Sender != nil || cfg.Host != nil || cfg.StepOnly {
		return nil, fmt.Errorf("embedded: Config.Conversations, State, Sender, Host and StepOnly are set by Open and NewInMemory; leave them unset (use package actors directly for other parts): %w", infinity.ErrInvalid)
	}
	if mk == nil {
		mk = func(d actors.Deliverer) infinity.InputSender {
			return local.New(d, append([]local.Option{local.WithLogger(cfg.Logger)}, o.Sender...)...)
		}
	}
	cfg.Conversations, cfg.State, cfg.Sender, cfg.Host = conv, state, mk, protohost.New
	if o.Replay != nil || o.Record != nil {
		cfg.Agents = slices.Clone(cfg.Agents) // the caller's stay as they are
	}
	if o.Replay != nil {
		cfg.Model = o.Replay.Provider(replay.DefaultName)
		for i := range cfg.Agents {
			o.Replay.ServeAgent(&cfg.Agents[i])
		}
	}
	if o.Record != nil {
		if cfg.Model != nil {
			cfg.Model = o.Record.Wrap(replay.DefaultName, cfg.Model)
		}
		for i := range cfg.Agents {
			o.Record.WrapAgent(&cfg.Agents[i])
		}
	}
	rt, err := actors.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	return rt, nil
}

// Close stops the runtime (running slices get until ctx ends, then are
// cancelled; their input runs again after the next Open), every goroutine
// it started, and closes the store. It may be called more than once.
func (r *Runtime) Close(ctx context.Context) error {
	err := r.Runtime.Close(ctx)
	r.once.Do(func() {
		if r.close != nil {
			err = errors.Join(err, r.close())
		}
	})
	return err
}
