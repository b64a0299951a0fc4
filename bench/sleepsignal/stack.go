package main

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

var discard = slog.New(slog.DiscardHandler)

// Texts of the workload's messages and answer.
const (
	startText = "Sleep, then wait for my input."
	inputText = "Here is your input."
	doneText  = "done"
)

// script is the agent's behaviour: the first user message gets a sleep
// call (its seconds are rewritten per thread by sleepModel), the sleep's
// result a sleep_until_event_or_input call, the input a final answer.
func script() scripted.Script {
	call := func(name, args string) scripted.Reply {
		return scripted.Reply{Calls: []scripted.CallSpec{{Name: name, Args: json.RawMessage(args)}}}
	}
	return scripted.Script{Rules: []scripted.Rule{
		{Name: "sleep", When: scripted.Match{Last: "user", LastText: startText}, Reply: call("sleep", `{"seconds":1}`)},
		{Name: "wait", When: scripted.Match{LastTool: "sleep"}, Reply: call("sleep_until_event_or_input", `{}`)},
		{Name: "answer", When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Text: doneText}},
		{Name: "wait again", When: scripted.Match{LastTool: "sleep_until_event_or_input"}, Reply: call("sleep_until_event_or_input", `{}`)},
	}}
}

// sleepModel wraps the scripted provider: it gives each thread's sleep call
// the thread's own seconds, and records when a thread's slice first sees
// its wake-up (the thread resumed).
type sleepModel struct {
	infinity.ModelProvider
	b *bench
}

func (m sleepModel) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	e := m.b.ents[req.Thread]
	if e != nil && len(req.Items) > 0 {
		if last := req.Items[len(req.Items)-1]; last.Kind == infinity.KindToolResult && last.Result != nil &&
			strings.HasPrefix(last.Result.Text(), "Slept for") {
			e.mark(&e.woke, time.Now())
		}
	}
	return func(yield func(infinity.StreamEvent, error) bool) {
		for ev, err := range m.ModelProvider.Stream(ctx, req) {
			if ev.Call != nil && ev.Call.Name == "sleep" && e != nil {
				c := *ev.Call
				c.Args = fmt.Appendf(nil, `{"seconds":%.3f}`, e.secs)
				ev.Call = &c
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

// dueSender records the due time of each thread's timer.
type dueSender struct {
	*local.Sender
	b *bench
}

func (s dueSender) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	if e := s.b.ents[msg.GroupID]; e != nil && !at.IsZero() {
		e.mark(&e.due, at)
	}
	return s.Sender.Send(ctx, msg, at)
}

// deliverHook records when a thread's timer fired (handed its wake-up to
// the runtime).
type deliverHook struct {
	actors.Deliverer
	b *bench
}

func (d deliverHook) Deliver(msg infinity.InputMessage) error {
	if e := d.b.ents[msg.GroupID]; e != nil && msg.Content.Type != infinity.ContentText {
		e.mark(&e.fired, time.Now())
	}
	return d.Deliverer.Deliver(msg)
}

// stack is the daemon's engine without its HTTP API: for the durable
// variant the disk store and the durable local sender (inbox in the store),
// as daemon.Open builds them; for the memory variant memory stores and a
// local sender without an inbox.
type stack struct {
	store  *disk.Store // nil for the memory variant
	sender *local.Sender
	rt     *actors.Runtime
}

func openStack(dir string, durable bool, b *bench) (*stack, error) {
	model, err := scripted.New(script())
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	s := &stack{}
	cfg := actors.Config{
		Model:    sleepModel{ModelProvider: model, b: b},
		Host:     protohost.New,
		Agents:   []actors.Agent{{Name: "sleepsignal"}},
		Logger:   discard,
		Observer: b.observe,
		// As daemon.Open sets it.
		AppliedOnly: true,
	}
	var inbox []local.Option
	if durable {
		s.store, err = disk.Open(filepath.Join(dir, "store"), disk.WithLogger(discard))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		cfg.Conversations, cfg.State = s.store.Conversations(), s.store.State()
		inbox = append(inbox, local.WithInbox(s.store.Inbox()))
	} else {
		cfg.Conversations, cfg.State = memory.NewConversationStore(), memory.NewStateStore(nil)
	}
	cfg.Sender = func(d actors.Deliverer) infinity.InputSender {
		s.sender = local.New(deliverHook{Deliverer: d, b: b}, append(inbox, local.WithLogger(discard))...)
		return dueSender{Sender: s.sender, b: b}
	}
	s.rt, err = actors.New(cfg)
	if err != nil {
		if s.store != nil {
			s.store.Close()
		}
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if _, err := s.sender.Restore(context.Background()); err != nil {
		s.close()
		return nil, fmt.Errorf("restore: %w", err)
	}
	return s, nil
}

func (s *stack) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.rt.Close(ctx)
	if s.store != nil {
		if serr := s.store.Close(); err == nil {
			err = serr
		}
	}
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
