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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/examples"
)

const runUsage = `Usage: infinity run [flags] AGENT [MESSAGE]

Starts a root thread on the daemon. AGENT is an agent file (YAML; see
examples/ and agentfile/doc.go) or the name of a bundled example (%s;
"infinity run --list" describes them). MESSAGE is the first user message;
without it, the bundled demo uses its own prompt and other agents read it
from standard input.

--model provider/model runs the thread (and the threads it spawns) on
another model than the agent's default: one of the models its file lists
under models (the daemon refuses others and lists the choices).

Flags:
`

const demoPrompt = "Run the offline demo: split the work across three child threads and summarise their reports."

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("run", fmt.Sprintf(runUsage, strings.Join(examples.Names(), ", ")), stderr)
	follow := f.Bool("follow", false, "print the transcript of the whole tree until the agent waits for input")
	asJSON := f.Bool("json", false, "print the started thread as JSON")
	id := f.String("id", "", "the thread id to use (makes a retried run harmless)")
	model := f.String("model", "", "run on this model (provider/model) instead of the agent's default")
	list := f.Bool("list", false, "list the bundled examples, one line each, and exit")
	pos, err := f.parse(args, 0, 2)
	if err != nil {
		return err
	}
	switch {
	case *list && len(pos) > 0:
		return fmt.Errorf("run: --list takes no arguments: %w", errUsage)
	case *list:
		return listExamples(stdout)
	case len(pos) == 0:
		f.Usage()
		return fmt.Errorf("run: missing arguments: %w", errUsage)
	}
	src, origin, bundled, err := loadAgent(pos[0])
	if err != nil {
		return err
	}
	if *model != "" {
		if _, err := infinity.ParseModelRef(*model); err != nil {
			return fmt.Errorf("run: --model: %w", err)
		}
	}
	text := ""
	if len(pos) == 2 {
		text = pos[1]
	} else if bundled == "demo" {
		text = demoPrompt
	} else {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, daemon.MaxBody))
		if err != nil {
			return fmt.Errorf("run: read the first message from standard input: %w", err)
		}
		text = strings.TrimSpace(string(b))
		if text == "" {
			return fmt.Errorf("run: no first message: give it after the agent (infinity run %s \"...\")", pos[0])
		}
	}
	c, err := f.client()
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
	started, err := c.Start(ctx, daemon.StartRequest{Agent: agent, Text: text, ID: infinity.ThreadID(*id), Model: *model})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	switch {
	case *asJSON:
		if err := printJSON(stdout, started); err != nil {
			return err
		}
	default:
		if *model != "" {
			fmt.Fprintf(stdout, "started thread %s (agent %s, model %s)\n", started.Thread, agent, *model)
		} else {
			fmt.Fprintf(stdout, "started thread %s (agent %s)\n", started.Thread, agent)
		}
	}
	if *follow {
		return followTree(ctx, c, started.Thread, stdout)
	}
	return nil
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
			return src, "", "", fmt.Errorf("run: %s is a folder without an agent.yaml", arg)
		}
		return src, "", "", fmt.Errorf("run: %q is neither an agent file nor a bundled example (%s)", arg, strings.Join(examples.Names(), ", "))
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
			return src, "", "", fmt.Errorf("run: %s: model.script: %w", arg, err)
		}
		src.Script = string(s)
	}
	return src, arg, "", nil
}

// listExamples prints each bundled example with its description.
func listExamples(w io.Writer) error {
	for _, n := range examples.Names() {
		b, _ := examples.Get(n)
		var a struct {
			Description string `yaml:"description"`
		}
		if err := yaml.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("run --list: bundled example %s: %w", n, err)
		}
		fmt.Fprintf(w, "%-10s  %s\n", n, a.Description)
	}
	return nil
}

func sendCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("send", "Usage: infinity send [flags] THREAD MESSAGE\n\nSends user input to a thread; it is durable once this command returns.\n\nFlags:\n", stderr)
	id := f.String("id", "", "the message id (makes a resend harmless)")
	asJSON := f.Bool("json", false, "print the result as JSON")
	pos, c, err := f.connect(args, 2, -1)
	if err != nil {
		return err
	}
	res, err := c.Send(ctx, infinity.ThreadID(pos[0]), daemon.MessageRequest{Text: strings.Join(pos[1:], " "), ID: infinity.MessageID(*id)})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "sent message %s to %s\n", res.Message, res.Thread)
	return nil
}

const lsUsage = `Usage: infinity ls [flags]

Lists root threads (--all: every thread), oldest first, with their model,
status, tokens (in/out) and cost in USD, their own and their subtree's (the
thread and all its descendants). The cost comes from the daemon's prices
("infinity daemon --help"); "-" means a model that answered has no price.

Flags:
`

const treeUsage = `Usage: infinity tree [flags] [THREAD]

Shows the tree below THREAD, or every root's tree, with each thread's
tokens (in/out) and cost in USD, and a parent's subtree totals ("-": cost
unknown, a model without a price).

Flags:
`

const logsUsage = `Usage: infinity logs [flags] THREAD

Prints a thread's transcript, with the tokens and cost of each model
response; with -f, follows it live until the thread closes, with a line per
slice (its tokens and cost) and when the history is compacted.

Flags:
`

func lsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("ls", lsUsage, stderr)
	all := f.Bool("all", false, "list child threads too")
	asJSON := f.Bool("json", false, "print JSON")
	_, c, err := f.connect(args, 0, 0)
	if err != nil {
		return err
	}
	threads, err := c.Threads(ctx, !*all)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	if *asJSON {
		return printJSON(stdout, threads)
	}
	if len(threads) == 0 {
		fmt.Fprintln(stdout, "no threads yet (start one with \"infinity run demo\")")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "THREAD\tPARENT\tAGENT\tMODEL\tSTATUS\tITEMS\tTOKENS IN/OUT\tCOST\tSUBTREE IN/OUT\tSUBTREE COST\tCREATED")
	for _, t := range threads {
		parent := string(t.Parent)
		if parent == "" {
			parent = "-"
		}
		model := t.Model
		if model == "" {
			model = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, parent, t.Agent, model, statusText(t), t.Items,
			inOut(t.Tokens), usd(t.Cost), inOut(t.Subtree.Tokens), usd(t.Subtree.Cost), t.Created.Local().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

// statusText is a thread's status for people.
func statusText(t daemon.ThreadView) string { return describeStatus(t.Status, t.Detail, t.Until) }

// describeStatus says a status (the daemon's or the cloud's, which share
// their words) for people: when a sleeper wakes, what a waiter waits for,
// the detail of any other.
func describeStatus(status, detail string, until *time.Time) string {
	switch {
	case status == daemon.StatusSleeping && until != nil:
		return "sleeping until " + until.Local().Format("2006-01-02 15:04:05")
	case status == daemon.StatusWaiting:
		return "waiting for " + detail
	case detail != "":
		return status + ": " + clip(detail, 80)
	}
	return status
}

func treeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("tree", treeUsage, stderr)
	asJSON := f.Bool("json", false, "print JSON")
	pos, c, err := f.connect(args, 0, 1)
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
	var trees []daemon.Tree
	for _, r := range roots {
		t, err := c.Tree(ctx, r)
		if err != nil {
			return fmt.Errorf("tree: %w", err)
		}
		trees = append(trees, t)
	}
	if *asJSON {
		if len(pos) == 1 {
			return printJSON(stdout, trees[0])
		}
		return printJSON(stdout, trees)
	}
	for _, t := range trees {
		printTree(stdout, t, "", "")
	}
	return nil
}

func printTree(w io.Writer, t daemon.Tree, prefix, branch string) {
	sub := ""
	if len(t.Threads) > 0 {
		sub = fmt.Sprintf("; subtree %s tokens, %s", inOut(t.Subtree.Tokens), usd(t.Subtree.Cost))
	}
	fmt.Fprintf(w, "%s%s%s  %s  (%d items, %s tokens, %s%s)\n", prefix, branch, t.ID, statusText(t.ThreadView), t.Items,
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
		printTree(w, k, prefix, b)
	}
}

func logsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("logs", logsUsage, stderr)
	follow := f.Bool("f", false, "follow: keep printing new entries")
	asJSON := f.Bool("json", false, "print one JSON object per line")
	from := f.Int("from", 0, "start at this position")
	pos, c, err := f.connect(args, 1, 1)
	if err != nil {
		return err
	}
	tr := newTranscript(stdout)
	err = c.Items(ctx, infinity.ThreadID(pos[0]), *from, *follow, func(l daemon.ItemLine) error {
		if *asJSON {
			return printCompactJSON(stdout, l)
		}
		tr.line("", l)
		return nil
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}

func closeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("close", "Usage: infinity close [flags] THREAD\n\nCloses a thread and every thread below it; a child's parent is told.\n\nFlags:\n", stderr)
	pos, c, err := f.connect(args, 1, 1)
	if err != nil {
		return err
	}
	if _, err := c.Close(ctx, infinity.ThreadID(pos[0])); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Fprintf(stdout, "closing %s and its subtree\n", pos[0])
	return nil
}

const rmUsage = `Usage: infinity rm [flags] THREAD

Deletes a closed tree for good: the root THREAD and every thread below it,
with their history, state, timers and waiting messages. Only a closed root
can be deleted (close it first: infinity close THREAD); export first if
you may want it back (infinity export). The daemon can also delete closed
trees by age: infinity daemon --retain-closed DURATION.

Flags:
`

func rmCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("rm", rmUsage, stderr)
	asJSON := f.Bool("json", false, "print the deleted threads as JSON")
	pos, c, err := f.connect(args, 1, 1)
	if err != nil {
		return err
	}
	del, err := c.Delete(ctx, infinity.ThreadID(pos[0]))
	if err != nil {
		return fmt.Errorf("rm: %w", err)
	}
	if *asJSON {
		return printJSON(stdout, del)
	}
	fmt.Fprintf(stdout, "deleted %s and %d thread(s) below it\n", pos[0], len(del.Threads)-1)
	return nil
}

const compactUsage = `Usage: infinity compact [flags] THREAD

Asks a thread to compact its history now: a compaction thread summarises it,
and the thread continues from the summary and its latest items (threads also
compact on their own when a model call uses more than three quarters of their
model's context window). Children spawned earlier keep their history; nothing
is deleted: "infinity logs" still shows every item.

Flags:
`

func compactCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("compact", compactUsage, stderr)
	pos, c, err := f.connect(args, 1, 1)
	if err != nil {
		return err
	}
	if _, err := c.Compact(ctx, infinity.ThreadID(pos[0])); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	fmt.Fprintf(stdout, "compacting %s (follow it with: infinity logs -f %s)\n", pos[0], pos[0])
	return nil
}

const answerUsage = `Usage: infinity answer [flags] THREAD [CHOICE]

Answers the user choice a tool of the thread asked for (shown by "infinity ls"
and "infinity logs"): CHOICE is one of its labels or a zero-based index. With
--dismiss, the choice's default is sent instead. The answer goes to the tool,
which then sends its result to the thread.

Flags:
`

func answerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("answer", answerUsage, stderr)
	id := f.String("id", "", "the choice to answer, when the thread waits for several")
	dismiss := f.Bool("dismiss", false, "dismiss the choice: send its default")
	pos, err := f.parse(args, 1, 2)
	if err != nil {
		return err
	}
	req := daemon.AnswerRequest{ID: *id, Dismiss: *dismiss}
	switch {
	case *dismiss && len(pos) == 2:
		return fmt.Errorf("answer: give a CHOICE or --dismiss, not both: %w", errUsage)
	case !*dismiss && len(pos) == 1:
		return fmt.Errorf("answer: give a CHOICE (a label or an index) or --dismiss: %w", errUsage)
	case len(pos) == 2:
		req.Choice = pos[1]
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	a, err := c.Answer(ctx, infinity.ThreadID(pos[0]), req)
	if err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	fmt.Fprintf(stdout, "answered %s: %q (choice %d)\n", a.Thread, a.Label, a.Selected)
	return nil
}

func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("export", "Usage: infinity export [flags]\n\nWrites every thread, its history and state, and the agents they use, as\nindented JSON (default HOME/sessions.json; -o - for standard output).\n\nFlags:\n", stderr)
	out := f.String("o", "", "the file to write (- for standard output)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	home, err := f.homeDir()
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if *out == "-" {
		return c.Export(ctx, stdout)
	}
	path := *out
	if path == "" {
		path = filepath.Join(home, daemon.SessionsFile)
	}
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("export: %w", err)
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
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "exported to %s\n", path)
	return nil
}

func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("import", "Usage: infinity import [flags] FILE\n\nLoads threads from an \"infinity export\" file. A session whose root exists\nwith other content is skipped; one an earlier import left half written (it\nwas killed part-way) is completed.\n\nFlags:\n", stderr)
	pos, c, err := f.connect(args, 1, 1)
	if err != nil {
		return err
	}
	fh, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer fh.Close()
	rep, err := c.Import(ctx, bufio.NewReader(fh))
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(stdout, "imported %d sessions, skipped %d that exist\n", len(rep.Imported), len(rep.Skipped))
	return nil
}

// settled reports whether a thread has nothing more to do until someone
// acts: it is closed, failed, or waits for user input.
func settled(v daemon.ThreadView) bool {
	return v.Status == daemon.StatusClosed || v.Status == daemon.StatusFailed ||
		v.Status == daemon.StatusWaiting && v.Detail == daemon.WaitingForInput
}

// followTree prints the transcript of every thread of root's tree until
// every thread in it is settled.
func followTree(ctx context.Context, c *daemon.Client, root infinity.ThreadID, w io.Writer) error {
	tr := newTranscript(w)
	next := map[infinity.ThreadID]int{}
	names := map[infinity.ThreadID]string{root: "root"}
	for {
		t, err := c.Tree(ctx, root)
		if err != nil {
			return fmt.Errorf("follow: %w", err)
		}
		busy := false
		var walk func(t daemon.Tree) error
		walk = func(t daemon.Tree) error {
			for i, k := range t.Threads {
				if _, ok := names[k.ID]; !ok {
					names[k.ID] = fmt.Sprintf("%s/%d", names[t.ID], i+1)
				}
			}
			if !settled(t.ThreadView) {
				busy = true
			}
			err := c.Items(ctx, t.ID, next[t.ID], false, func(l daemon.ItemLine) error {
				tr.line(names[t.ID], l)
				next[t.ID] = l.Index + 1
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range t.Threads {
				if err := walk(k); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(t); err != nil {
			return fmt.Errorf("follow: %w", err)
		}
		if !busy {
			fmt.Fprintf(w, "-- %s is %s\n", root, statusText(t.ThreadView))
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
