package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/actors/protohost"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/mailbox/local"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
)

const demoLong = `Runs an offline agent to completion on the scripted model and in-memory
stores: a root thread spawns three child threads, each sleeps a few seconds,
reports and closes, and the root writes a final answer. The transcript is
printed as it happens, then the thread tree. No daemon, API key or network
is needed.

With --json, prints one JSON object per line instead: each event as it
happens ("spawned", "closed", "error", or "item" with the history item, as
"infinity logs --json" shows it), every one with the thread's id, its
name in the tree (root, root/1, ...) and the seconds since the start;
then one "done" object with the final answer, the tree and the tokens.

With --record FILE, every model call of the tree is also written to FILE
(JSON Lines, one line per call, synced as it is made; no keys or headers):
"infinity replay FILE" runs the same tree again offline from it.`

const replayLong = `Runs a recorded tree again, offline: the model calls are served from FILE
(written by "infinity demo --record FILE"), in-process on the in-memory
stores as the demo runs, with the recorded root's id and first message.
The tools run for real. When the agent asks the model something the
recording does not hold (a changed prompt, script or tool), it stops with
the lines that differ from the nearest recorded request; the exit status
is then 1. A recorded call never asked is reported on stderr.

The tree runs the demo's agent unless --agent names the agent file it was
recorded with (its built-in tools only: replay refuses an agent file that
lists tool servers). "infinity daemon --record FILE" records every tree
of a daemon; --root picks which one runs again (default: the first).`

// replayCommand is "infinity replay FILE".
func (a *app) replayCommand() *cobra.Command {
	var (
		timeout         time.Duration
		verbose, asJSON bool
		agentPath, root string
	)
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE",
		Short: "run a recorded tree again offline, from its recorded model calls",
		Long:  replayLong,
		Args:  argsBetween(1, 1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pl, err := replay.Open(args[0])
			if err != nil {
				return missing(err)
			}
			roots := pl.Recording().Roots()
			if len(roots) == 0 {
				return fmt.Errorf("replay: %s holds no root thread's first call", args[0])
			}
			pick := roots[0]
			if root != "" {
				i := slices.IndexFunc(roots, func(r replay.Root) bool { return string(r.Thread) == root })
				if i < 0 {
					return &notFoundError{fmt.Errorf("replay: %s holds no root %s (it holds %d roots; the first is %s)", args[0], root, len(roots), roots[0].Thread)}
				}
				pick = roots[i]
			}
			o := demoOpts{timeout: timeout, verbose: verbose, json: asJSON, replay: pl, root: pick, what: "replay"}
			if agentPath != "" {
				f, err := agentfile.Load(agentPath)
				if err != nil {
					return fmt.Errorf("replay: --agent: %w", missing(err))
				}
				if len(f.Tools.RAPServers)+len(f.Tools.MCPServers) > 0 {
					return fmt.Errorf("replay: --agent %s lists tool servers; replay runs an agent with its built-in tools only: %w", agentPath, infinity.ErrNotImplemented)
				}
				// The agent as the daemon builds it (default model, a
				// provider per id), every network provider served from
				// the recording instead of the network.
				served := agentfile.Providers{}
				for _, id := range []string{"anthropic", "openai", "bedrock"} {
					served[id] = func([]infinity.ModelInfo) (infinity.ModelProvider, error) { return pl.Provider(id), nil }
				}
				reg, err := f.Registry(cmd.Context(), served)
				if err != nil {
					return fmt.Errorf("replay: --agent: %w", err)
				}
				a := f.Agent(nil)
				reg.Configure(&a)
				pl.ServeAgent(&a)
				a.Name = "demo" // the name the replayed root starts with
				o.agent = &a
			}
			err = demo(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err == nil {
				if n := len(pl.Unused()); n > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "infinity: replay: %d recorded model calls were never asked\n", n)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up if the tree has not finished by then")
	f.BoolVarP(&verbose, "verbose", "v", false, "also log the runtime's own messages to stderr")
	f.BoolVar(&asJSON, "json", false, "print events and the result as JSON lines (as demo --json)")
	f.StringVar(&agentPath, "agent", "", "the agent file the tree was recorded with (default: the demo's agent)")
	f.StringVar(&root, "root", "", "the root thread to run again, of a recording with several (default: the first)")
	_ = cmd.RegisterFlagCompletionFunc("timeout", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("root", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("agent", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	return cmd
}

func (a *app) demoCommand() *cobra.Command {
	var (
		scriptPath, prompt string
		record             string
		timeout            time.Duration
		verbose, asJSON    bool
	)
	cmd := &cobra.Command{
		Use:               "demo [flags]",
		Short:             "run the offline demo in-process (no daemon, no API key, no network)",
		Long:              demoLong,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), demoOpts{script: scriptPath, prompt: prompt, record: record, timeout: timeout, verbose: verbose, json: asJSON}, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&scriptPath, "script", "", "a scripted-model JSON file to run instead of the built-in demo script")
	f.StringVar(&prompt, "prompt", demoPrompt, "the first user message")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up if the agent has not finished by then")
	f.BoolVarP(&verbose, "verbose", "v", false, "also log the runtime's own messages to stderr")
	f.BoolVar(&asJSON, "json", false, "print events and the result as JSON lines")
	f.StringVar(&record, "record", "", "write every model call of the tree to this file (for infinity replay)")
	_ = cmd.RegisterFlagCompletionFunc("script", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"json"}, cobra.ShellCompDirectiveFilterFileExt
	})
	for _, name := range []string{"prompt", "timeout"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	return cmd
}

// demoOpts are the demo's flags, and replay's.
type demoOpts struct {
	script, prompt string
	record         string // --record: a recording to write
	timeout        time.Duration
	verbose, json  bool
	// replay serves the model calls instead of the script, for the
	// recorded root (infinity replay).
	replay *replay.Player
	root   replay.Root
	agent  *actors.Agent // replay --agent: the agent to run, else the demo's
	what   string        // "demo" or "replay", for errors
}

func demo(ctx context.Context, o demoOpts, stdout, stderr io.Writer) (err error) {
	if o.what == "" {
		o.what = "demo"
	}
	prompt, timeout := o.prompt, o.timeout
	var model infinity.ModelProvider
	if o.replay != nil {
		model, prompt = o.replay.Provider(o.root.Provider), o.root.Input
	} else {
		script := scripted.Demo()
		if o.script != "" {
			s, err := scripted.Load(o.script)
			if err != nil {
				return fmt.Errorf("demo: %w", missing(err))
			}
			script = s
		}
		if model, err = scripted.New(script); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	if o.record != "" {
		rec, cerr := replay.Create(o.record, replay.RecordOptions{Models: []string{"scripted/scripted"}, Meta: map[string]string{"command": o.what, "prompt": prompt}})
		if cerr != nil {
			return fmt.Errorf("%s: --record: %w", o.what, missing(cerr))
		}
		defer func() { // after the runtime's Close (deferred later, run first)
			if cerr := rec.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("%s: --record: %w", o.what, cerr)
			}
		}()
		model = rec.Wrap(replay.DefaultName, model)
	}
	level := slog.LevelError
	if o.verbose {
		level = slog.LevelInfo
	}
	agent := actors.Agent{Name: "demo", Model: o.root.Model}
	if o.agent != nil {
		agent = *o.agent
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	p := &printer{w: stdout, json: o.json, start: time.Now(), names: map[infinity.ThreadID]string{}, kinds: map[infinity.ThreadID][]infinity.ThreadKind{}, changed: make(chan struct{}, 1)}
	p.tr = newTranscript(stdout)
	p.tr.stamp = func(infinity.Item) string { return p.elapsed() }
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{
		Conversations: conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(d actors.Deliverer) infinity.InputSender { return local.New(d, local.WithLogger(logger)) },
		Host:          protohost.New,
		Agents:        []actors.Agent{agent},
		Logger:        logger,
		Observer:      p.event,
		Idle:          500 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", o.what, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.Close(cctx)
	}()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	root, err := rt.Start(ctx, actors.StartOptions{Agent: "demo", ID: o.root.Thread, Text: prompt})
	if err != nil {
		return fmt.Errorf("%s: %w", o.what, err)
	}
	for {
		done, answer, err := finished(ctx, conv, root)
		if err != nil {
			return fmt.Errorf("%s: %w", o.what, err)
		}
		if done {
			p.mu.Lock()
			p.ended = true
			p.mu.Unlock()
			if o.json {
				return p.done(ctx, conv, rt, root, answer, o.what)
			}
			p.printf("\nThread tree:\n")
			if err := p.tree(ctx, conv, root, "", ""); err != nil {
				return fmt.Errorf("%s: %w", o.what, err)
			}
			u, err := rt.Usage(ctx, root, true)
			if err != nil {
				return fmt.Errorf("%s: %w", o.what, err)
			}
			p.printf("\nTokens (scripted estimate, whole tree): %d in, %d out\n", u.Input, u.Output)
			p.printf("\nFinal answer (after %s):\n%s\n", time.Since(p.start).Round(time.Millisecond), answer)
			return nil
		}
		var missed <-chan struct{}
		if o.replay != nil {
			missed = o.replay.Missed()
		}
		select {
		case <-p.changed:
		case <-missed:
			return o.replay.Err()
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: the agent did not finish within %s (raise --timeout, or check the script)", o.what, timeout)
			}
			return fmt.Errorf("%s: interrupted", o.what)
		}
	}
}

// finished reports whether the root has answered with no call outstanding
// and every other thread is closed.
func finished(ctx context.Context, conv infinity.ConversationStore, root infinity.ThreadID) (bool, string, error) {
	items, err := conv.Items(ctx, root, 0, -1)
	if err != nil {
		return false, "", err
	}
	if len(items) == 0 || items[len(items)-1].Kind != infinity.KindAssistant {
		return false, "", nil
	}
	open, err := openDescendants(ctx, conv, root)
	if err != nil || open > 0 {
		return false, "", err
	}
	return true, items[len(items)-1].Text, nil
}

func openDescendants(ctx context.Context, conv infinity.ConversationStore, id infinity.ThreadID) (int, error) {
	kids, err := conv.Children(ctx, id)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range kids {
		if !k.Closed {
			n++
		}
		m, err := openDescendants(ctx, conv, k.ID)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// printer writes the transcript as the engine commits it.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool // JSON lines (demoEvent, demoDone)
	// ended is set once the tree is found finished: the events of its
	// last commit, emitted just after the store had it, are not printed
	// after the result.
	ended bool
	start time.Time
	names map[infinity.ThreadID]string
	// kinds are each parent's children's kinds in spawn order (for
	// infinity.ChildName).
	kinds   map[infinity.ThreadID][]infinity.ThreadKind
	tr      *transcript
	changed chan struct{}
}

// elapsed is the time since the demo started, as the transcript shows it.
func (p *printer) elapsed() string { return fmt.Sprintf("%6.2fs", time.Since(p.start).Seconds()) }

// printf writes under the printer's lock: observer events arrive from the
// runtime's goroutines.
func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *printer) name(id infinity.ThreadID) string {
	if n, ok := p.names[id]; ok {
		return n
	}
	return string(id)
}

func (p *printer) event(ev actors.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	at := p.elapsed()
	if ev.Kind == actors.EventThreadCreated {
		if ev.Info.IsRoot() {
			p.names[ev.Thread] = "root"
		} else {
			kinds := append(p.kinds[ev.Info.Parent], ev.Info.Kind)
			p.kinds[ev.Info.Parent] = kinds
			p.names[ev.Thread] = infinity.ChildName(p.name(ev.Info.Parent), kinds, len(kinds)-1)
		}
	}
	if p.json {
		p.jsonEvent(ev)
		p.poke()
		return
	}
	switch ev.Kind {
	case actors.EventThreadCreated:
		if ev.Info.IsRoot() {
			fmt.Fprintf(p.w, "%s  + root thread %s\n", at, ev.Thread)
		} else {
			fmt.Fprintf(p.w, "%s  + %s: thread %s spawned by %s\n", at, p.name(ev.Thread), ev.Thread, p.name(ev.Info.Parent))
		}
	case actors.EventThreadClosed:
		fmt.Fprintf(p.w, "%s  x %s closed\n", at, p.name(ev.Thread))
	case actors.EventSliceError:
		fmt.Fprintf(p.w, "%s  ! %s: %v\n", at, p.name(ev.Thread), ev.Err)
	case actors.EventItem:
		it := ev.Item
		p.tr.line(p.name(ev.Thread), daemon.ItemLine{Item: &it})
	}
	p.poke()
}

// poke wakes the demo's loop to look whether the tree is done.
func (p *printer) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// demoEvent is a line of "demo --json".
type demoEvent struct {
	Event  string            `json:"event"` // spawned, closed, error, item
	At     float64           `json:"at"`    // seconds since the start
	Thread infinity.ThreadID `json:"thread"`
	Name   string            `json:"name"`
	Parent infinity.ThreadID `json:"parent,omitempty"`
	Error  string            `json:"error,omitempty"`
	Item   *infinity.Item    `json:"item,omitempty"`
}

// demoDone is the last line of "demo --json".
type demoDone struct {
	Event   string         `json:"event"` // done
	At      float64        `json:"at"`
	Answer  string         `json:"answer"`
	Tokens  infinity.Usage `json:"tokens"` // the whole tree's (scripted estimate)
	Threads []demoThread   `json:"threads"`
}

// demoThread is a thread of the finished tree, root first, then in the
// order the tree shows them.
type demoThread struct {
	ID     infinity.ThreadID `json:"id"`
	Name   string            `json:"name"`
	Parent infinity.ThreadID `json:"parent,omitempty"`
	Closed bool              `json:"closed"`
	Items  int               `json:"items"`
}

// jsonEvent writes ev as a demoEvent; p.mu is held.
func (p *printer) jsonEvent(ev actors.Event) {
	e := demoEvent{At: time.Since(p.start).Seconds(), Thread: ev.Thread, Name: p.name(ev.Thread)}
	switch ev.Kind {
	case actors.EventThreadCreated:
		e.Event, e.Parent = "spawned", ev.Info.Parent
	case actors.EventThreadClosed:
		e.Event = "closed"
	case actors.EventSliceError:
		e.Event, e.Error = "error", ev.Err.Error()
	case actors.EventItem:
		it := ev.Item
		e.Event, e.Item = "item", &it
	default:
		return
	}
	_ = json.NewEncoder(p.w).Encode(e) // a broken stdout shows when the demo ends
}

// done writes the demoDone line of a finished tree.
func (p *printer) done(ctx context.Context, conv infinity.ConversationStore, rt *actors.Runtime, root infinity.ThreadID, answer, what string) error {
	u, err := rt.Usage(ctx, root, true)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	d := demoDone{Event: "done", Answer: answer, Tokens: u}
	var walk func(id infinity.ThreadID) error
	walk = func(id infinity.ThreadID) error {
		info, err := conv.Thread(ctx, id)
		if err != nil {
			return err
		}
		n, err := conv.Len(ctx, id)
		if err != nil {
			return err
		}
		p.mu.Lock()
		d.Threads = append(d.Threads, demoThread{ID: id, Name: p.name(id), Parent: info.Parent, Closed: info.Closed, Items: n})
		p.mu.Unlock()
		kids, err := conv.Children(ctx, id)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(k.ID); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d.At = time.Since(p.start).Seconds()
	if err := json.NewEncoder(p.w).Encode(d); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (p *printer) tree(ctx context.Context, conv infinity.ConversationStore, id infinity.ThreadID, prefix, branch string) error {
	info, err := conv.Thread(ctx, id)
	if err != nil {
		return err
	}
	n, err := conv.Len(ctx, id)
	if err != nil {
		return err
	}
	state := "open"
	if info.Closed {
		state = "closed"
	}
	p.mu.Lock()
	fmt.Fprintf(p.w, "%s%s%s  %s  (%s, %d items)\n", prefix, branch, p.name(id), id, state, n)
	p.mu.Unlock()
	kids, err := conv.Children(ctx, id)
	if err != nil {
		return err
	}
	switch branch {
	case "├── ":
		prefix += "│   "
	case "└── ":
		prefix += "    "
	}
	for i, k := range kids {
		b := "├── "
		if i == len(kids)-1 {
			b = "└── "
		}
		if err := p.tree(ctx, conv, k.ID, prefix, b); err != nil {
			return err
		}
	}
	return nil
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // never split a character
		}
		return s[:cut] + "…"
	}
	return s
}
