package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/examples"
)

const runLong = `Starts a root thread on the daemon. AGENT is an agent file (YAML; see
examples/ and agentfile/doc.go), a folder holding an agent.yaml, or the name
of a bundled example ("infinity run --list" describes them):
  %s
MESSAGE is the first user message; without it, the bundled demo uses its own
prompt and other agents read it from standard input.

--model provider/model runs the thread (and the threads it spawns) on
another model than the agent's default: one of the models its file lists
under models (the daemon refuses others and lists the choices).

With --follow (-f), prints the transcript of the whole tree until every
thread of it is closed, failed or waiting for input; the exit status is 5
when a thread of it failed. Children are named by their parent and the
order they were spawned in (root/1 is the root's first child, root/1/2 its
second; event threads are root/e1, ..., compaction threads root/c1, ...,
counted apart); a parent's line that brings in a child's report comes after the
child's own lines.`

const demoPrompt = "Run the offline demo: split the work across three child threads and summarise their reports."

func (a *app) runCommand() *cobra.Command {
	var (
		follow, asJSON, list bool
		id, model            string
		budget               []string
	)
	cmd := &cobra.Command{
		Use:   "run [flags] AGENT [MESSAGE]",
		Short: "start a root thread from an agent file or a bundled example",
		Long:  fmt.Sprintf(runLong, strings.Join(examples.Names(), ", ")),
		Args:  argsBetween(0, 2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 || list {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return exampleNames(toComplete), cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			switch {
			case list && len(pos) > 0:
				return usagef("run: --list takes no arguments")
			case list:
				return listExamples(stdout)
			case len(pos) == 0:
				return usagef("run: missing AGENT")
			}
			src, origin, bundled, err := loadAgent(pos[0])
			if err != nil {
				return err
			}
			if model != "" {
				if _, err := infinity.ParseModelRef(model); err != nil {
					return usagef("run: --model: %w", err)
				}
			}
			if asJSON && follow {
				return usagef("run: --json and --follow together would mix JSON and text: start with --json, then follow with \"infinity logs -f --json THREAD\"")
			}
			b, err := budgetOf(budget)
			if err != nil {
				return err
			}
			text := ""
			if len(pos) == 2 {
				text = pos[1]
			} else if bundled == "demo" {
				text = demoPrompt
			} else {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), daemon.MaxBody))
				if err != nil {
					return fmt.Errorf("run: read the first message from standard input: %w", err)
				}
				text = strings.TrimSpace(string(b))
				if text == "" {
					return usagef("run: no first message: give it after the agent (infinity run %s \"...\")", pos[0])
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			agent := "demo"
			if bundled != "demo" {
				info, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: origin, AgentSource: src})
				if err != nil {
					return fmt.Errorf("run: %w", err)
				}
				agent = info.Key
			}
			started, err := c.Start(ctx, daemon.StartRequest{Agent: agent, Text: text, ID: infinity.ThreadID(id), Model: model, Budget: b})
			if err != nil {
				return fmt.Errorf("run: %w", err)
			}
			switch {
			case asJSON:
				if err := printJSON(stdout, started); err != nil {
					return err
				}
			case model != "":
				fmt.Fprintf(stdout, "started thread %s (agent %s, model %s)\n", started.Thread, agent, model)
			default:
				fmt.Fprintf(stdout, "started thread %s (agent %s)\n", started.Thread, agent)
			}
			if follow {
				return followTree(ctx, c, started.Thread, stdout, a.styleOf(stdout))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "print the tree's transcript until every thread of it is closed, failed or waiting for input")
	f.BoolVar(&asJSON, "json", false, "print the started thread as JSON")
	f.StringVar(&id, "id", "", "the thread id to use (makes a retried run harmless)")
	f.StringVar(&model, "model", "", "run on this model (provider/model) instead of the agent's default")
	f.StringArrayVar(&budget, "budget", nil, "cap what the tree may spend: 5usd, 200000tokens, 50calls, 2h (wall time), 10threads (repeat, or separate with commas; see infinity budget --help)")
	f.BoolVar(&list, "list", false, "list the bundled examples, one line each, and exit")
	_ = cmd.RegisterFlagCompletionFunc("id", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("model", cobra.NoFileCompletions)
	return cmd
}

// loadAgent reads an agent file, or a bundled example by name. A scripted
// model's script travels with the file.
// A folder stands for its agent.yaml (examples/approval); a name that is
// no file (or a folder without one) may be a bundled example.
func loadAgent(arg string) (src daemon.AgentSource, origin, bundled string, err error) {
	file := arg
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		file = filepath.Join(arg, "agent.yaml")
	}
	b, rerr := os.ReadFile(file)
	if errors.Is(rerr, fs.ErrNotExist) || errors.Is(rerr, fs.ErrInvalid) {
		if eb, ok := examples.Get(arg); ok {
			script, _ := examples.Script(arg)
			return daemon.AgentSource{YAML: string(eb), Script: string(script)}, arg + ".yaml", arg, nil
		}
		if file != arg {
			return src, "", "", &notFoundError{fmt.Errorf("run: %s is a folder without an agent.yaml", arg)}
		}
		return src, "", "", &notFoundError{fmt.Errorf("run: %q is neither an agent file nor a bundled example (%s)", arg, strings.Join(examples.Names(), ", "))}
	}
	arg = file
	if rerr != nil {
		return src, "", "", fmt.Errorf("run: %w", rerr)
	}
	abs, _ := filepath.Abs(arg)
	af, err := agentfile.Parse(abs, b)
	if err != nil {
		return src, "", "", fmt.Errorf("run: %w", err)
	}
	src.YAML = string(b)
	if p := af.ScriptPath(); p != "" {
		s, err := os.ReadFile(p)
		if err != nil {
			return src, "", "", fmt.Errorf("run: %s: model.script: %w", arg, missing(err))
		}
		src.Script = string(s)
	}
	return src, arg, "", nil
}

// listExamples prints each bundled example with its description.
func listExamples(w io.Writer) error {
	for _, n := range examples.Names() {
		d, err := readDescription(n)
		if err != nil {
			return fmt.Errorf("run --list: %w", err)
		}
		fmt.Fprintf(w, "%-10s  %s\n", n, d)
	}
	return nil
}

// readDescription reads a bundled example's description.
func readDescription(name string) (string, error) {
	b, _ := examples.Get(name)
	var a struct {
		Description string `yaml:"description"`
	}
	if err := yaml.Unmarshal(b, &a); err != nil {
		return "", fmt.Errorf("bundled example %s: %w", name, err)
	}
	return a.Description, nil
}

// exampleDescription is a bundled example's description, or "bundled
// example" when it has none.
func exampleDescription(name string) string {
	if d, err := readDescription(name); err == nil && d != "" {
		return d
	}
	return "bundled example"
}

func (a *app) sendCommand() *cobra.Command {
	var (
		id     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:               "send [flags] THREAD MESSAGE...",
		Short:             "send user input to a thread",
		Long:              "Sends user input to a thread; it is durable once this command returns. The\nwords of MESSAGE are joined with spaces.",
		Args:              argsBetween(2, -1, "THREAD", "MESSAGE"),
		ValidArgsFunction: a.completeThreads(isOpen),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Send(cmd.Context(), infinity.ThreadID(pos[0]), daemon.MessageRequest{Text: strings.Join(pos[1:], " "), ID: infinity.MessageID(id)})
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent message %s to %s\n", res.Message, res.Thread)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the message id (makes a resend harmless)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.RegisterFlagCompletionFunc("id", cobra.NoFileCompletions)
	return cmd
}

const lsLong = `Lists root threads (--all: every thread), oldest first, with their model,
status, tokens (in/out) and cost in USD, their own and their subtree's (the
thread and all its descendants). The cost comes from the daemon's prices
("infinity daemon --help"); "-" means a model that answered has no price.

On a terminal the table fits its width (else $COLUMNS, when set): long
statuses and agents are cut with "…", then the less needed columns go
(subtree cost and tokens, parent, created, items, cost, model, tokens);
thread ids are never cut. --wide prints every column in full.

--status keeps the threads with one of the statuses named (running,
sleeping, waiting, failed, over_budget, closed; repeat it or separate them
with commas),
--agent those of one agent (its name, or its key as "ls" shows it), --root
the threads of one tree (THREAD and everything below it). -q (--quiet)
prints only the thread ids, one a line.`

const treeLong = `Shows the tree below THREAD, or every root's tree, with each thread's
tokens (in/out) and cost in USD, and a parent's subtree totals ("-": cost
unknown, a model without a price).`

const logsLong = `Prints a thread's transcript, with the tokens and cost of each model
response; with -f (--follow), follows it live until the thread closes, with
a line per slice (its tokens and cost) and when the history is compacted.
A followed thread that fails ends it with the exit status 5; a daemon that
goes away, with 4.

Every result names its tool, also when its call is not shown (before
--from, or in the parent's history for a child's first item; "(earlier
call)" when it cannot be found). What a tool shows people (display_as) is
printed under its result: text and diffs as their lines, an image as
"[image …]".`

// lsStatuses are the statuses --status takes.
var lsStatuses = []string{daemon.StatusRunning, daemon.StatusSleeping, daemon.StatusWaiting, daemon.StatusFailed, daemon.StatusOverBudget, daemon.StatusClosed}

func (a *app) lsCommand() *cobra.Command {
	var (
		all, asJSON, wide, quiet bool
		statuses                 []string
		agent, root              string
	)
	cmd := &cobra.Command{
		Use:               "ls [flags]",
		Short:             "list threads with their status and tokens",
		Long:              lsLong,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stdout := cmd.OutOrStdout()
			if asJSON && quiet {
				return usagef("ls: give --json or --quiet, not both")
			}
			want := map[string]bool{}
			for _, st := range statuses {
				st = strings.ToLower(strings.TrimSpace(st))
				if !slices.Contains(lsStatuses, st) {
					return usagef("ls: --status %q: want %s", st, strings.Join(lsStatuses, ", "))
				}
				want[st] = true
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			threads, err := listThreads(cmd.Context(), c, all, root, agent, want)
			if err != nil {
				return fmt.Errorf("ls: %w", err)
			}
			switch {
			case asJSON:
				return printJSON(stdout, threads)
			case quiet:
				for _, t := range threads {
					fmt.Fprintln(stdout, t.ID)
				}
				return nil
			case len(threads) == 0 && (len(want) > 0 || agent != "" || root != ""):
				fmt.Fprintln(stdout, "no thread matches")
				return nil
			case len(threads) == 0:
				fmt.Fprintln(stdout, "no threads yet (start one with \"infinity run demo\")")
				return nil
			}
			st := a.styleOf(stdout)
			if wide {
				st.width = 0
			}
			return printThreads(stdout, st, threads, wide)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "list child threads too")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVarP(&wide, "wide", "w", false, "print every column in full, whatever the width")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the thread ids, one a line")
	f.StringSliceVar(&statuses, "status", nil, "only threads with this status: "+strings.Join(lsStatuses, ", ")+" (repeat it, or separate with commas)")
	f.StringVar(&agent, "agent", "", "only the threads of this agent (its name or key)")
	f.StringVar(&root, "root", "", "only the threads of this tree: THREAD and everything below it")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(lsStatuses, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("agent", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("root", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return a.threadIDs(cmd.Context(), toComplete, nil), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// listThreads lists the threads ls shows: the tree below root (when set)
// or the roots (every thread with all), of the agent named (its name or
// key; "" any) and with a status of want (none: any). The daemon filters
// what its query can (roots=, status= when one status is wanted, q= for the
// agent); the rest is filtered here.
func listThreads(ctx context.Context, c *daemon.Client, all bool, root, agent string, want map[string]bool) ([]daemon.ThreadView, error) {
	var threads []daemon.ThreadView
	if root != "" {
		t, err := c.Tree(ctx, infinity.ThreadID(root))
		if err != nil {
			return nil, err
		}
		var flatten func(t daemon.Tree)
		flatten = func(t daemon.Tree) {
			threads = append(threads, t.ThreadView)
			for _, k := range t.Threads {
				flatten(k)
			}
		}
		flatten(t)
	} else {
		q := daemon.ListQuery{Roots: !all, Search: agent}
		if len(want) == 1 {
			for st := range want {
				q.Status = st
			}
		}
		var err error
		if threads, _, err = c.ListThreads(ctx, q); err != nil {
			return nil, err
		}
	}
	out := threads[:0]
	for _, t := range threads {
		if (len(want) == 0 || want[t.Status]) && (agent == "" || agentIs(t.Agent, agent)) {
			out = append(out, t)
		}
	}
	return out, nil
}

// agentIs reports whether an agent key ("name-0123456789", or a bundled
// example's bare name) is the agent named: the key itself or its name.
func agentIs(key, name string) bool {
	if key == name {
		return true
	}
	base, hash, ok := cutLast(key, "-")
	return ok && base == name && len(hash) == 10 && strings.Trim(hash, "0123456789abcdef") == ""
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// printThreads writes ls's table. Unless wide, a status's detail is cut
// at 80 characters.
func printThreads(w io.Writer, st style, threads []daemon.ThreadView, wide bool) error {
	parents := false
	for _, t := range threads {
		parents = parents || t.Parent != ""
	}
	parentDrop := 3
	if !parents {
		parentDrop = 1 // all "-": the first to go
	}
	cols := []column{
		{title: "THREAD"},
		{title: "PARENT", drop: parentDrop},
		{title: "AGENT", soft: 20, min: 8},
		{title: "MODEL", drop: 7},
		{title: "STATUS", soft: 34, min: 12},
		{title: "ITEMS", drop: 5},
		{title: "TOKENS IN/OUT", drop: 8},
		{title: "COST", drop: 6},
		{title: "SUBTREE IN/OUT", drop: 2},
		{title: "SUBTREE COST", drop: 1},
		{title: "CREATED", drop: 4},
	}
	if !parents {
		cols[8].drop, cols[9].drop = 3, 2
	}
	rows := make([][]cell, 0, len(threads))
	for _, t := range threads {
		parent := string(t.Parent)
		if parent == "" {
			parent = "-"
		}
		model := t.Model
		if model == "" {
			model = "-"
		}
		status := statusText(t)
		if wide {
			status = describeStatusFull(t.Status, t.Detail, t.Until)
		}
		rows = append(rows, []cell{
			{text: string(t.ID)}, {text: parent}, {text: t.Agent}, {text: model},
			{text: status, color: statusColor(t.Status)}, {text: strconv.Itoa(t.Items)},
			{text: inOut(t.Tokens)}, {text: usd(t.Cost)}, {text: inOut(t.Subtree.Tokens)}, {text: usd(t.Subtree.Cost)},
			{text: t.Created.Local().Format("2006-01-02 15:04:05")},
		})
	}
	return printTable(w, st, cols, rows)
}

// statusText is a thread's status for people.
func statusText(t daemon.ThreadView) string { return describeStatus(t.Status, t.Detail, t.Until) }

// describeStatus says a status (the daemon's or the cloud's, which share
// their words) for people: when a sleeper wakes, what a waiter waits for,
// the detail of any other.
func describeStatus(status, detail string, until *time.Time) string {
	if status != daemon.StatusSleeping && status != daemon.StatusWaiting {
		detail = clip(detail, 80)
	}
	return describeStatusFull(status, detail, until)
}

// describeStatusFull is describeStatus with the whole detail.
func describeStatusFull(status, detail string, until *time.Time) string {
	switch {
	case status == daemon.StatusSleeping && until != nil:
		return "sleeping until " + until.Local().Format("2006-01-02 15:04:05")
	case status == daemon.StatusWaiting:
		return "waiting for " + detail
	case detail != "":
		return status + ": " + strings.ReplaceAll(detail, "\n", " ")
	}
	return status
}

func (a *app) treeCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "tree [flags] [THREAD]",
		Short:             "show thread trees",
		Long:              treeLong,
		Args:              argsBetween(0, 1),
		ValidArgsFunction: a.completeThreads(nil),
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			c, err := a.client()
			if err != nil {
				return err
			}
			var roots []infinity.ThreadID
			if len(pos) == 1 {
				roots = []infinity.ThreadID{infinity.ThreadID(pos[0])}
			} else {
				ts, err := c.Threads(ctx, true)
				if err != nil {
					return fmt.Errorf("tree: %w", err)
				}
				for _, t := range ts {
					roots = append(roots, t.ID)
				}
			}
			trees := []daemon.Tree{} // [] in JSON when there is none
			for _, r := range roots {
				t, err := c.Tree(ctx, r)
				if err != nil {
					return fmt.Errorf("tree: %w", err)
				}
				trees = append(trees, t)
			}
			if asJSON {
				if len(pos) == 1 {
					return printJSON(stdout, trees[0])
				}
				return printJSON(stdout, trees)
			}
			st := a.styleOf(stdout)
			for _, t := range trees {
				printTree(stdout, st, t, "", "")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printTree writes t below prefix, its line starting with branch; children
// come in the order the daemon lists them, the order they were spawned in.
func printTree(w io.Writer, st style, t daemon.Tree, prefix, branch string) {
	sub := ""
	if len(t.Threads) > 0 {
		sub = fmt.Sprintf("; subtree %s tokens, %s", inOut(t.Subtree.Tokens), usd(t.Subtree.Cost))
	}
	fmt.Fprintf(w, "%s%s%s  %s  (%d items, %s tokens, %s%s)\n", prefix, branch, t.ID, st.paint(statusColor(t.Status), statusText(t.ThreadView)), t.Items,
		inOut(t.Tokens), usd(t.Cost), sub)
	switch branch {
	case "├── ":
		prefix += "│   "
	case "└── ":
		prefix += "    "
	}
	for i, k := range t.Threads {
		b := "├── "
		if i == len(t.Threads)-1 {
			b = "└── "
		}
		printTree(w, st, k, prefix, b)
	}
}

func (a *app) logsCommand() *cobra.Command {
	var (
		follow, asJSON bool
		from           int
	)
	cmd := &cobra.Command{
		Use:               "logs [flags] THREAD",
		Short:             "print (and follow) a thread's transcript",
		Long:              logsLong,
		Args:              argsBetween(1, 1, "THREAD"),
		ValidArgsFunction: a.completeThreads(nil),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if from < 0 {
				return usagef("logs: --from %d: want a position, 0 or more", from)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return printLogs(cmd.Context(), c, infinity.ThreadID(pos[0]), from, follow, asJSON, cmd.OutOrStdout(), a.styleOf(cmd.OutOrStdout()))
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow: keep printing new entries until the thread closes or fails")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().IntVar(&from, "from", 0, "start at this position")
	_ = cmd.RegisterFlagCompletionFunc("from", cobra.NoFileCompletions)
	return cmd
}

// failPoll is how often a followed thread's status is read, to end when
// it fails.
const failPoll = 250 * time.Millisecond

// printLogs prints a thread's transcript from position from; with follow,
// until the thread closes (nil), fails (errThreadFailed), the daemon goes
// away (errDaemonGone) or ctx ends (nil).
func printLogs(ctx context.Context, c *daemon.Client, id infinity.ThreadID, from int, follow, asJSON bool, w io.Writer, st style) error {
	tr := newTranscript(w)
	tr.st, tr.lookup = st, historyLookup(ctx, c, id, from)
	next, ended := from, false
	show := func(l daemon.ItemLine) error {
		if l.Item != nil {
			next = l.Index + 1
		}
		if l.End != "" {
			ended = true
		}
		if asJSON {
			return printCompactJSON(w, l)
		}
		tr.line("", l)
		return nil
	}
	if !follow {
		if err := c.Items(ctx, id, from, false, show); err != nil && ctx.Err() == nil {
			return fmt.Errorf("logs: %w", err)
		}
		return nil
	}
	// The stream ends when the thread closes; a failed thread waits for
	// new input, so its status is read beside the stream.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	failed := make(chan daemon.ThreadView, 1)
	go func() {
		tick := time.NewTicker(failPoll)
		defer tick.Stop()
		for {
			if v, err := c.Thread(sctx, id); err == nil && v.Status == daemon.StatusFailed {
				failed <- v
				stop()
				return
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	err := c.Items(sctx, id, from, true, show)
	select {
	case v := <-failed:
		// What the stream had not shown yet, then the failure.
		if err := c.Items(ctx, id, next, false, show); err != nil && ctx.Err() == nil {
			return fmt.Errorf("logs: %w", err)
		}
		if asJSON {
			if err := printCompactJSON(w, daemon.ItemLine{Index: next, End: daemon.StatusFailed}); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(w, st.paint(statusColor(daemon.StatusFailed), "-- failed: "+v.Detail))
		}
		return fmt.Errorf("logs: thread %s failed: %s: %w", id, v.Detail, errThreadFailed)
	default:
	}
	switch {
	case ctx.Err() != nil:
		return nil
	case err == nil && !ended:
		return daemonGone("logs", nil)
	case err == nil:
		return nil
	case errors.Is(err, daemon.ErrNoDaemon):
		return err
	case streamBroke(err):
		return daemonGone("logs", err)
	}
	return fmt.Errorf("logs: %w", err)
}

func (a *app) closeCommand() *cobra.Command {
	return a.threadCommand(threadAction{name: "close", short: "close a thread and everything below it",
		long: "Closes a thread and every thread below it; a child's parent is told.", complete: isOpen, jsonHelp: "print the result as JSON",
		do: func(ctx context.Context, c *daemon.Client, id infinity.ThreadID) (any, string, error) {
			res, err := c.Close(ctx, id)
			return res, fmt.Sprintf("closing %s and its subtree", id), err
		}})
}

const rmLong = `Deletes a closed tree for good: the root THREAD and every thread below it,
with their history, state, timers and waiting messages. Only a closed root
can be deleted (close it first: infinity close THREAD); export first if
you may want it back (infinity export). The daemon can also delete closed
trees by age: infinity daemon --retain-closed DURATION.`

func (a *app) rmCommand() *cobra.Command {
	return a.threadCommand(threadAction{name: "rm", short: "delete a closed tree for good (history, state, timers)",
		long: rmLong, complete: isClosedRoot, jsonHelp: "print the deleted threads as JSON",
		do: func(ctx context.Context, c *daemon.Client, id infinity.ThreadID) (any, string, error) {
			del, err := c.Delete(ctx, id)
			return del, fmt.Sprintf("deleted %s and %d thread(s) below it", id, len(del.Threads)-1), err
		}})
}

const compactLong = `Asks a thread to compact its history now: a compaction thread summarises it,
and the thread continues from the summary and its latest items (threads also
compact on their own when a model call uses more than three quarters of their
model's context window). Children spawned earlier keep their history; nothing
is deleted: "infinity logs" still shows every item.`

func (a *app) compactCommand() *cobra.Command {
	return a.threadCommand(threadAction{name: "compact", short: "summarise a thread's history now (compaction)",
		long: compactLong, complete: isOpen, jsonHelp: "print the result as JSON",
		do: func(ctx context.Context, c *daemon.Client, id infinity.ThreadID) (any, string, error) {
			res, err := c.Compact(ctx, id)
			return res, fmt.Sprintf("compacting %s (follow it with: infinity logs -f %s)", id, id), err
		}})
}

// threadAction is a command that does one thing to one thread and says
// what it did (as text, or the API's answer with --json).
type threadAction struct {
	name, short, long, jsonHelp string
	// complete filters the thread ids completion offers.
	complete func(daemon.ThreadView) bool
	// do calls the daemon: the answer for --json, the line for people.
	do func(ctx context.Context, c *daemon.Client, id infinity.ThreadID) (any, string, error)
}

func (a *app) threadCommand(t threadAction) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               t.name + " [flags] THREAD",
		Short:             t.short,
		Long:              t.long,
		Args:              argsBetween(1, 1, "THREAD"),
		ValidArgsFunction: a.completeThreads(t.complete),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, line, err := t.do(cmd.Context(), c, infinity.ThreadID(pos[0]))
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, t.jsonHelp)
	return cmd
}

const answerLong = `Answers the user choice a tool of the thread asked for (shown by "infinity ls"
and "infinity logs"): CHOICE is one of its labels or a zero-based index. With
--dismiss, the choice's default is sent instead. The answer goes to the tool,
which then sends its result to the thread.`

func (a *app) answerCommand() *cobra.Command {
	var (
		id              string
		dismiss, asJSON bool
	)
	cmd := &cobra.Command{
		Use:               "answer [flags] THREAD [CHOICE]",
		Short:             "answer a thread's pending user choice",
		Long:              answerLong,
		Args:              argsBetween(1, 2, "THREAD"),
		ValidArgsFunction: a.completeAnswer(),
		RunE: func(cmd *cobra.Command, pos []string) error {
			req := daemon.AnswerRequest{ID: id, Dismiss: dismiss}
			switch {
			case dismiss && len(pos) == 2:
				return usagef("answer: give a CHOICE or --dismiss, not both")
			case !dismiss && len(pos) == 1:
				return usagef("answer: give a CHOICE (a label or an index) or --dismiss")
			case len(pos) == 2:
				req.Choice = pos[1]
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ans, err := c.Answer(cmd.Context(), infinity.ThreadID(pos[0]), req)
			if err != nil {
				return fmt.Errorf("answer: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ans)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "answered %s: %q (choice %d)\n", ans.Thread, ans.Label, ans.Selected)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the choice to answer, when the thread waits for several")
	cmd.Flags().BoolVar(&dismiss, "dismiss", false, "dismiss the choice: send its default")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the answer as JSON")
	_ = cmd.RegisterFlagCompletionFunc("id", cobra.NoFileCompletions)
	return cmd
}

func (a *app) exportCommand() *cobra.Command {
	var (
		out    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "export [flags]",
		Short: "write every thread to sessions.json (readable JSON)",
		Long: "Writes every thread, its history and state, and the agents they use, as\n" +
			"indented JSON (default HOME/sessions.json; -o - for standard output).",
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			home, err := a.homeDir()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if out == "-" {
				return c.Export(ctx, stdout)
			}
			path := out
			if path == "" {
				path = filepath.Join(home, daemon.SessionsFile)
			}
			if err := exportTo(ctx, c, path); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if asJSON {
				return printJSON(stdout, map[string]string{"path": path})
			}
			fmt.Fprintf(stdout, "exported to %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the file to write (- for standard output)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the file written as JSON")
	return cmd
}

// exportTo writes the export to path atomically.
func exportTo(ctx context.Context, c *daemon.Client, path string) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(fh, 1<<20)
	err = c.Export(ctx, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (a *app) importCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import [flags] FILE",
		Short: "load threads from a sessions.json export",
		Long: "Loads threads from an \"infinity export\" file. A session whose root exists\n" +
			"with other content is skipped; one an earlier import left half written (it\n" +
			"was killed part-way) is completed.",
		Args: argsBetween(1, 1, "FILE"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return []cobra.Completion{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, pos []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			fh, err := os.Open(pos[0])
			if err != nil {
				return fmt.Errorf("import: %w", missing(err))
			}
			defer fh.Close()
			rep, err := c.Import(cmd.Context(), bufio.NewReader(fh))
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d sessions, skipped %d that exist\n", len(rep.Imported), len(rep.Skipped))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the imported and skipped roots as JSON")
	return cmd
}

// settled reports whether a thread has nothing more to do until someone
// acts: it is closed, failed, or waits for user input.
func settled(v daemon.ThreadView) bool {
	return v.Status == daemon.StatusClosed || v.Status == daemon.StatusFailed ||
		v.Status == daemon.StatusWaiting && v.Detail == daemon.WaitingForInput
}

// firstFailed returns the first failed thread of a tree, depth first.
func firstFailed(t daemon.Tree) (daemon.ThreadView, bool) {
	if t.Status == daemon.StatusFailed {
		return t.ThreadView, true
	}
	for _, k := range t.Threads {
		if v, ok := firstFailed(k); ok {
			return v, true
		}
	}
	return daemon.ThreadView{}, false
}

// followError is the error of a followed tree's request: the daemon went
// away when it cannot be reached any more.
func followError(err error) error {
	if streamBroke(err) {
		return daemonGone("run", err)
	}
	return fmt.Errorf("run: %w", err)
}
