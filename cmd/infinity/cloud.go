//go:build cloud

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/cloudctl"
	"github.com/infinity-runtime/infinity/daemon"
)

// cloudBuilt says whether this binary has the cloud commands.
const cloudBuilt = true

const cloudLong = `Talks to a deployed stack, not to the daemon. Where it is:
  --stack NAME [--agent ID]   the outputs of a CloudFormation stack holding the
                              InfinityAgent construct (DescribeStacks); --agent
                              picks one construct when the stack has several
  (no --stack)                the environment "infinity cloud-local" prints:
                              INFINITY_INPUT_QUEUE_URL, INFINITY_OUTPUT_QUEUE_URL,
                              INFINITY_DEAD_LETTER_QUEUE_URL, and
                              INFINITY_DSQL_ENDPOINT (IAM auth as INFINITY_DSQL_USER,
                              default admin) or INFINITY_DATABASE_URL, with the
                              AWS_ENDPOINT_URL_* variables of the emulators

AWS credentials and the region come from the AWS SDK's usual sources
(environment, profiles, SSO, instance roles); AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE> are honoured. Threads and transcripts are read
from the conversation store (Aurora DSQL), input goes through the FIFO input
queue, and "logs -f" wakes up on the output queue's display events.`

func (a *app) cloudCommand() *cobra.Command {
	t := &cloudTarget{}
	cmd := &cobra.Command{
		Use:               "cloud",
		Short:             cloudShort,
		Long:              cloudLong,
		Args:              subcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              groupRun,
		Annotations:       group,
	}
	cmd.PersistentFlags().StringVar(&t.stack, "stack", "", "the CloudFormation stack of the deployment (default: the INFINITY_* environment)")
	cmd.PersistentFlags().StringVar(&t.agent, "agent", "", "with --stack: the InfinityAgent construct's id, when the stack has several")
	for _, name := range []string{"stack", "agent"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	cmd.AddCommand(t.startCommand(), t.sendCommand(), t.logsCommand(), t.lsCommand(), t.treeCommand(), t.dlqCommand(), t.migrateCommand())
	return cmd
}

// cloudTarget is where the deployment is: the cloud commands' --stack and
// --agent.
type cloudTarget struct {
	stack, agent string
}

// client reads where the deployment is and opens a client of it; need
// names what the command cannot do without.
func (t *cloudTarget) client(ctx context.Context, name string, need cloudctl.Need) (*cloudctl.Client, error) {
	cfg, awsCfg, err := t.locate(ctx, name, need)
	if err != nil {
		return nil, err
	}
	c, err := cloudctl.Open(ctx, cfg, awsCfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// locate reads where the deployment is, with the AWS configuration to
// reach it.
func (t *cloudTarget) locate(ctx context.Context, name string, need cloudctl.Need) (cloudctl.Config, aws.Config, error) {
	if t.agent != "" && t.stack == "" {
		return cloudctl.Config{}, aws.Config{}, usagef("%s: --agent picks a construct of a stack: give --stack too", name)
	}
	cfg := cloudctl.FromEnv(os.Getenv)
	if t.stack == "" {
		if err := cfg.Require(need); err != nil {
			return cfg, aws.Config{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return cfg, awsCfg, fmt.Errorf("%s: AWS configuration: %w", name, err)
	}
	if awsCfg.Region == "" {
		return cfg, awsCfg, fmt.Errorf("%s: no AWS region: set AWS_REGION (or a profile's region): %w", name, cloudctl.ErrNotConfigured)
	}
	if t.stack != "" {
		if cfg, err = cloudctl.FromStack(ctx, cloudformation.NewFromConfig(awsCfg), t.stack, t.agent, os.Getenv(cloud.EnvDSQLUser)); err != nil {
			return cfg, awsCfg, fmt.Errorf("%s: %w", name, err)
		}
		if err := cfg.Require(need); err != nil {
			return cfg, awsCfg, fmt.Errorf("%s: %w", name, err)
		}
	}
	return cfg, awsCfg, nil
}

const cloudStartLong = `Starts a root thread: MESSAGE goes to the input queue on a new message group,
and the agent function creates the root thread for user text addressed to a
thread that does not exist. Prints the thread's id (--thread picks it).
--id makes a repeated start harmless: the same message is applied once.
With --follow (-f), prints the tree's transcript until every thread of it is
closed or waits for input (this needs the conversation store too).`

func (t *cloudTarget) startCommand() *cobra.Command {
	var (
		thread, id     string
		follow, asJSON bool
	)
	cmd := &cobra.Command{
		Use:               "start [flags] MESSAGE...",
		Short:             "start a root thread (prints its id)",
		Long:              cloudStartLong,
		Args:              argsBetween(1, -1, "MESSAGE"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			text := strings.Join(pos, " ")
			root := infinity.ThreadID(thread)
			if root == "" {
				root = infinity.NewThreadID()
			} else if !infinity.ValidThreadID(root) {
				return usagef("cloud start: --thread %q: %s", root, infinity.ThreadIDRule)
			}
			if strings.TrimSpace(text) == "" {
				return usagef("cloud start: empty MESSAGE")
			}
			need := cloudctl.NeedInput
			if follow {
				need |= cloudctl.NeedDatabase
			}
			c, err := t.client(ctx, "cloud start", need)
			if err != nil {
				return err
			}
			defer c.Close()
			// With the store at hand, an existing thread is refused: this would
			// be input to it, not a start (unless --id says it repeats one).
			if c.Conversations != nil && thread != "" && id == "" {
				if _, err := c.Thread(ctx, root); err == nil {
					return fmt.Errorf("cloud start: thread %s exists: send it input with \"infinity cloud send %s ...\" (or give --id to repeat a start): %w", root, root, infinity.ErrExists)
				} else if !errors.Is(err, infinity.ErrNotFound) {
					return fmt.Errorf("cloud start: %w", err)
				}
			}
			sent, err := c.Send(ctx, root, text, infinity.MessageID(id))
			if err != nil {
				return fmt.Errorf("cloud start: %w", err)
			}
			switch {
			case asJSON && follow:
				// One JSON object a line, the transcript's lines after it.
				err = printCompactJSON(stdout, sent)
			case asJSON:
				err = printJSON(stdout, sent)
			default:
				_, err = fmt.Fprintf(stdout, "started thread %s (message %s)\n", sent.Thread, sent.Message)
			}
			if err != nil || !follow {
				return err
			}
			return cloudTranscript(ctx, c, root, cloudctl.LogOptions{Follow: true, UntilSettled: true, Starting: true}, asJSON, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&thread, "thread", "", "the root thread's id (default: a new random one)")
	f.StringVar(&id, "id", "", "the message id (makes a repeated start harmless)")
	f.BoolVarP(&follow, "follow", "f", false, "print the tree's transcript until it settles")
	f.BoolVar(&asJSON, "json", false, "print the started thread as JSON (with --follow, one object a line, the transcript's lines after it)")
	for _, name := range []string{"thread", "id"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	return cmd
}

const cloudSendLong = `Sends user input to a thread through the input queue (its message group).
The message id is stable: give --id to make a resend harmless (SQS drops a
repeat within five minutes, and the thread applies each id once). With the
conversation store configured, an unknown or closed thread is refused.`

func (t *cloudTarget) sendCommand() *cobra.Command {
	var (
		id     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:               "send [flags] THREAD MESSAGE...",
		Short:             "send user input to a thread",
		Long:              cloudSendLong,
		Args:              argsBetween(2, -1, "THREAD", "MESSAGE"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			thread := infinity.ThreadID(pos[0])
			if !infinity.ValidThreadID(thread) {
				return usagef("cloud send: thread %q: %s", thread, infinity.ThreadIDRule)
			}
			text := strings.Join(pos[1:], " ")
			if strings.TrimSpace(text) == "" {
				return usagef("cloud send: empty MESSAGE")
			}
			c, err := t.client(ctx, "cloud send", cloudctl.NeedInput)
			if err != nil {
				return err
			}
			defer c.Close()
			if c.Conversations != nil {
				info, err := c.Thread(ctx, thread)
				switch {
				case errors.Is(err, infinity.ErrNotFound):
					return fmt.Errorf("cloud send: no thread %s (list them with \"infinity cloud ls --all\"; start one with \"infinity cloud start\"): %w", thread, infinity.ErrNotFound)
				case err != nil:
					return fmt.Errorf("cloud send: %w", err)
				case info.Closed:
					return fmt.Errorf("cloud send: thread %s is closed; closed threads take no input: %w", thread, infinity.ErrClosed)
				}
			}
			sent, err := c.Send(ctx, thread, text, infinity.MessageID(id))
			if err != nil {
				return fmt.Errorf("cloud send: %w", err)
			}
			if asJSON {
				return printJSON(stdout, sent)
			}
			fmt.Fprintf(stdout, "sent message %s to %s\n", sent.Message, sent.Thread)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the message id (makes a resend harmless)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.RegisterFlagCompletionFunc("id", cobra.NoFileCompletions)
	return cmd
}

const cloudLogsLong = `Prints the transcript of the tree below THREAD, read from the conversation
store: every thread's items, children named in spawn order (root/1, root/2,
root/2/1, ...; event threads root/e1, compaction threads root/c1), every line in causal order (a child's lines before its
parent's line about the child). With -f (--follow), goes on as the tree
grows until THREAD closes (Ctrl-C stops it); the output queue's display
events wake it up, and show what the store does not keep (OAuth requests,
tool views).`

func (t *cloudTarget) logsCommand() *cobra.Command {
	var follow, asJSON bool
	cmd := &cobra.Command{
		Use:               "logs [flags] THREAD",
		Short:             "a thread tree's transcript, in causal order",
		Long:              cloudLogsLong,
		Args:              argsBetween(1, 1, "THREAD"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx := cmd.Context()
			thread := infinity.ThreadID(pos[0])
			if !infinity.ValidThreadID(thread) {
				return usagef("cloud logs: thread %q: %s", thread, infinity.ThreadIDRule)
			}
			c, err := t.client(ctx, "cloud logs", cloudctl.NeedDatabase)
			if err != nil {
				return err
			}
			defer c.Close()
			return cloudTranscript(ctx, c, thread, cloudctl.LogOptions{Follow: follow}, asJSON, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow: keep printing new lines until the thread closes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// cloudTranscript prints a tree's transcript.
func cloudTranscript(ctx context.Context, c *cloudctl.Client, thread infinity.ThreadID, o cloudctl.LogOptions, asJSON bool, w io.Writer) error {
	tr := newTranscript(w)
	end, err := c.Logs(ctx, thread, o, func(l cloudctl.Line) error {
		if asJSON {
			return printCompactJSON(w, l)
		}
		printCloudLine(tr, l)
		return nil
	})
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, infinity.ErrNotFound):
		return fmt.Errorf("cloud logs: no thread %s (list them with \"infinity cloud ls --all\"): %w", thread, err)
	case err != nil:
		return fmt.Errorf("cloud logs: %w", err)
	}
	if asJSON {
		return nil
	}
	switch end {
	case cloudctl.EndClosed:
		fmt.Fprintln(w, "-- closed")
	case cloudctl.EndSettled:
		fmt.Fprintf(w, "-- %s settled: every thread of it is closed or waits for input\n", thread)
	}
	return nil
}

func printCloudLine(tr *transcript, l cloudctl.Line) {
	at := l.At.Local().Format("15:04:05")
	switch {
	case l.Item != nil:
		tr.line(l.Name, daemon.ItemLine{Index: l.Index, Item: l.Item})
	case l.Event == cloudctl.EventSpawned:
		fmt.Fprintf(tr.w, "%s  + %s: thread %s\n", at, l.Name, l.Thread)
	case l.Event == cloudctl.EventClosed:
		fmt.Fprintf(tr.w, "%s  x %s closed\n", at, l.Name)
	case l.OAuth != nil:
		fmt.Fprintf(tr.w, "%s  %s  authorize %s: open %s\n", at, l.Name, l.OAuth.Tool, l.OAuth.URL)
	case l.View != nil:
		tr.line(l.Name, daemon.ItemLine{View: &daemon.ViewLine{Type: l.View.Type, Content: l.View.Content}})
	}
}

const cloudLsLong = `Lists root threads (--all: every thread), oldest first, from the conversation
store: their status (what each waits for, read from its history), items,
tokens (in/out) and children.`

func (t *cloudTarget) lsCommand() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:               "ls [flags]",
		Short:             "root threads (--all: every thread) and their status",
		Long:              cloudLsLong,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			c, err := t.client(ctx, "cloud ls", cloudctl.NeedDatabase)
			if err != nil {
				return err
			}
			defer c.Close()
			threads, err := c.Threads(ctx, all)
			if err != nil {
				return fmt.Errorf("cloud ls: %w", err)
			}
			if asJSON {
				return printJSON(stdout, threads)
			}
			if len(threads) == 0 {
				fmt.Fprintln(stdout, "no threads yet (start one with \"infinity cloud start MESSAGE\")")
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "THREAD\tPARENT\tAGENT\tMODEL\tSTATUS\tITEMS\tTOKENS IN/OUT\tCHILDREN\tCREATED")
			for _, t := range threads {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", t.ID, orDash(string(t.Parent)), orDash(t.Agent), orDash(t.Model),
					cloudStatusText(t), t.Items, inOut(t.Tokens), t.Children, t.Created.Local().Format("2006-01-02 15:04:05"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "list child threads too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cloudStatusText is a thread's status for people.
func cloudStatusText(t cloudctl.Thread) string { return describeStatus(t.Status, t.Detail, t.Until) }

const cloudTreeLong = `Shows the tree below ROOT (any thread), or every root's tree, from the
conversation store: each thread's name in spawn order, id, status, items
and tokens (in/out; a parent's with its subtree's).`

func (t *cloudTarget) treeCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "tree [flags] [ROOT]",
		Short:             "thread trees",
		Long:              cloudTreeLong,
		Args:              argsBetween(0, 1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			if len(pos) == 1 && !infinity.ValidThreadID(infinity.ThreadID(pos[0])) {
				return usagef("cloud tree: thread %q: %s", pos[0], infinity.ThreadIDRule)
			}
			c, err := t.client(ctx, "cloud tree", cloudctl.NeedDatabase)
			if err != nil {
				return err
			}
			defer c.Close()
			var trees []cloudctl.Tree
			if len(pos) == 1 {
				t, err := c.Tree(ctx, infinity.ThreadID(pos[0]))
				if errors.Is(err, infinity.ErrNotFound) {
					return fmt.Errorf("cloud tree: no thread %s (list them with \"infinity cloud ls --all\"): %w", pos[0], err)
				}
				if err != nil {
					return fmt.Errorf("cloud tree: %w", err)
				}
				if asJSON {
					return printJSON(stdout, t)
				}
				trees = append(trees, t)
			} else if trees, err = c.Trees(ctx); err != nil {
				return fmt.Errorf("cloud tree: %w", err)
			}
			if asJSON {
				return printJSON(stdout, trees)
			}
			if len(trees) == 0 {
				fmt.Fprintln(stdout, "no threads yet (start one with \"infinity cloud start MESSAGE\")")
			}
			for _, t := range trees {
				printCloudTree(stdout, t, "", "")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printCloudTree(w io.Writer, t cloudctl.Tree, prefix, branch string) {
	printBranches(w, t, prefix, branch, func(t cloudctl.Tree) string {
		sub := ""
		if len(t.Threads) > 0 {
			sub = "; subtree " + inOut(t.Subtree) + " tokens"
		}
		return fmt.Sprintf("%s  %s  %s  (%d items, %s tokens%s)", t.Name, t.ID, cloudStatusText(t.Thread), t.Items, inOut(t.Tokens), sub)
	}, func(t cloudctl.Tree) []cloudctl.Tree { return t.Threads })
}

// printBranches draws a tree, a node a line, its children below it on
// branches ("├── ", "└── ").
func printBranches[T any](w io.Writer, t T, prefix, branch string, label func(T) string, kids func(T) []T) {
	fmt.Fprintf(w, "%s%s%s\n", prefix, branch, label(t))
	switch branch {
	case "├── ":
		prefix += "│   "
	case "└── ":
		prefix += "    "
	}
	ks := kids(t)
	for i, k := range ks {
		b := "├── "
		if i == len(ks)-1 {
			b = "└── "
		}
		printBranches(w, k, prefix, b, label, kids)
	}
}

const cloudDLQLong = `Lists the records of the input queue's dead-letter queue without consuming
them (they are received, kept invisible while the listing runs, and made
visible again): each one's thread, body, receive count and the attributes
the agent function adds when it dead-letters a record itself
(infinity.error, infinity.thread, infinity.message_id,
infinity.receive_count). In a FIFO dead-letter queue SQS shows a thread's
later records only once its earlier ones are gone; the count of records
not shown says so.

"infinity cloud dlq redrive" sends records back.`

func (t *cloudTarget) dlqCommand() *cobra.Command {
	var (
		asJSON bool
		limit  int
	)
	cmd := &cobra.Command{
		Use:               "dlq [flags]",
		Short:             "the input queue's dead-letter records (dlq redrive: send them back)",
		Long:              cloudDLQLong,
		Args:              subcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return helpOf(cmd, args[1:])
			}
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			if limit < 1 {
				return usagef("cloud dlq: --limit %d: want 1 or more", limit)
			}
			c, err := t.client(ctx, "cloud dlq", cloudctl.NeedDeadLetter)
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := c.ListDeadLetters(ctx, limit)
			if err != nil {
				return fmt.Errorf("cloud dlq: %w", err)
			}
			if asJSON {
				if list.Records == nil {
					list.Records = []cloudctl.DeadLetter{}
				}
				return printJSON(stdout, list)
			}
			if len(list.Records) == 0 && list.Unseen == 0 {
				fmt.Fprintln(stdout, "the dead-letter queue is empty")
				return nil
			}
			for _, d := range list.Records {
				printDeadLetter(stdout, d)
			}
			if list.Unseen > 0 {
				why := "in flight elsewhere or past --limit"
				if list.FIFO {
					why = "in flight elsewhere, past --limit, or behind the records shown in their thread's group (redrive those to see them)"
				}
				fmt.Fprintf(stdout, "%d more record(s) not shown: %s\n", list.Unseen, why)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 1000, "list at most this many records")
	_ = cmd.RegisterFlagCompletionFunc("limit", cobra.NoFileCompletions)
	cmd.AddCommand(t.redriveCommand())
	return cmd
}

func printDeadLetter(w io.Writer, d cloudctl.DeadLetter) {
	receives := "-"
	if d.ReceiveCount > 0 {
		receives = fmt.Sprint(d.ReceiveCount)
	}
	sent := "-"
	if !d.SentAt.IsZero() {
		sent = d.SentAt.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(w, "%s  thread %s  receives %s  sent %s\n", d.MessageID, orDash(string(d.Thread)), receives, sent)
	if d.Error != "" {
		fmt.Fprintf(w, "    error: %s\n", clip(d.Error, 300))
	}
	if d.OriginalID != "" {
		fmt.Fprintf(w, "    original message: %s\n", d.OriginalID)
	}
	for _, k := range d.AttributeNames() {
		switch k {
		case cloudctl.AttrError, cloudctl.AttrMessageID, cloudctl.AttrThread, cloudctl.AttrReceiveCount:
			continue
		}
		fmt.Fprintf(w, "    %s: %s\n", k, clip(d.Attributes[k], 200))
	}
	fmt.Fprintf(w, "    body: %s\n", clip(d.Body, 300))
}

const cloudRedriveLong = `Sends dead-letter records back to the input queue, each on its thread's
message group (the thread is read from infinity.thread, the FIFO message
group, or the body's group_id), then deletes them from the dead-letter
queue, and prints what was moved. MESSAGE_ID is a record's id in the
dead-letter queue (as "infinity cloud dlq" lists it) or its original
message id (infinity.message_id); --all moves every record. A record that
comes back while the redrive runs is left in the queue. The exit status is
non-zero when a record named could not be moved.`

func (t *cloudTarget) redriveCommand() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:               "redrive [flags] (--all | MESSAGE_ID...)",
		Short:             "send dead-letter records back to the input queue",
		Long:              cloudRedriveLong,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, ids []string) error {
			ctx, stdout := cmd.Context(), cmd.OutOrStdout()
			switch {
			case all && len(ids) > 0:
				return usagef("cloud dlq redrive: give --all or message ids, not both")
			case !all && len(ids) == 0:
				return usagef("cloud dlq redrive: give --all or the message ids to move")
			}
			c, err := t.client(ctx, "cloud dlq redrive", cloudctl.NeedDeadLetter|cloudctl.NeedInput)
			if err != nil {
				return err
			}
			defer c.Close()
			moved, err := c.Redrive(ctx, ids)
			if asJSON {
				if moved == nil {
					moved = []cloudctl.Moved{}
				}
				if jerr := printJSON(stdout, map[string]any{"moved": moved}); jerr != nil {
					return jerr
				}
			} else {
				for _, m := range moved {
					fmt.Fprintf(stdout, "moved %s (thread %s) to the input queue as %s\n", m.MessageID, m.Thread, m.NewMessageID)
				}
				fmt.Fprintf(stdout, "%d record(s) moved\n", len(moved))
			}
			if err != nil {
				return fmt.Errorf("cloud dlq redrive: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "move every record")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was moved as JSON")
	return cmd
}

const cloudMigrateLong = `Creates or updates the conversation store's schema (Aurora DSQL, or the
PostgreSQL of INFINITY_DATABASE_URL). A deployment made with the CDK
construct does this itself on every deploy; run it by hand after restoring
a cluster, or for a stack made some other way. It is idempotent. It needs
only the database's settings (--stack's ClusterEndpoint output, or
INFINITY_DSQL_ENDPOINT / INFINITY_DATABASE_URL) and credentials allowed
dsql:DbConnectAdmin (or dsql:DbConnect as INFINITY_DSQL_USER) on the cluster,
from any source the AWS SDK supports.`

func (t *cloudTarget) migrateCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "migrate [flags]",
		Short:             "create or update the conversation store's schema",
		Long:              cloudMigrateLong,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, awsCfg, err := t.locate(ctx, "cloud migrate", cloudctl.NeedDatabase)
			if err != nil {
				return err
			}
			user := cfg.DSQLUser
			if user == "" {
				user = "admin"
			}
			target := cloud.Config{Role: cloud.RoleMigrate, Region: awsCfg.Region, DSQLEndpoint: cfg.DSQLEndpoint, DSQLUser: user, DatabaseURL: cfg.DatabaseURL}
			if err := cloud.Migrate(ctx, target, awsCfg); err != nil {
				return fmt.Errorf("cloud migrate: %w", err)
			}
			where := cfg.DSQLEndpoint
			if where == "" {
				where = "the database of " + cloud.EnvDatabaseURL
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"schema": "up to date", "database": where})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "schema up to date in %s\n", where)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the database migrated as JSON")
	return cmd
}
