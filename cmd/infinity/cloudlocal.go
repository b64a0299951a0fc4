//go:build cloud

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloudlocal"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/internal/emulators"
	"github.com/infinity-runtime/infinity/lambda"
)

const cloudLocalLong = `Runs the cloud mode on this machine, with no AWS account: it starts
PostgreSQL (standing in for Aurora DSQL), DynamoDB Local, fauxqs (SQS) and a
Scheduler stand-in, creates the queues, the table and the schema, and runs
the agent and relay Lambda handlers against them, fed the way the Lambda
event source mapping feeds them (batches per message group, visibility
timeout, partial batch failures).

The emulators need PostgreSQL 15 and Java 17 (Debian packages), Node.js,
and two npm packages cached under ~/.cache/infinity/emulators
($INFINITY_EMULATORS_DIR). When something is missing, cloud-local lists it
with the command that installs it and stops; with --install it installs it
(apt-get as root or through passwordless sudo, npm into the cache), saying
what it runs on stderr first. Node.js it does not install.

With MESSAGE, it starts a root thread with it, prints the thread tree's
display events from the output queue as they arrive, and stops once every
child has closed and the root has answered (or at --timeout). Without
MESSAGE, it prints the environment the functions run with (queue URLs,
endpoints) and runs until interrupted, so that anything that can send to
SQS (aws sqs send-message with AWS_ENDPOINT_URL_SQS) can drive it.`

func (a *app) cloudLocalCommand() *cobra.Command {
	var (
		agent, thread    string
		scale            float64
		timeout          time.Duration
		verbose, install bool
	)
	cmd := &cobra.Command{
		Use:               cloudLocalUse,
		Short:             cloudLocalShort,
		Long:              cloudLocalLong,
		Args:              argsBetween(0, 1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, pos []string) error {
			ctx, stdout, stderr := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			if scale <= 0 || scale > 1 {
				return usagef("cloud-local: --time-scale %v: want a number in (0, 1]", scale)
			}
			if thread != "" && !infinity.ValidThreadID(infinity.ThreadID(thread)) {
				return usagef("cloud-local: --thread %q: %s", thread, infinity.ThreadIDRule)
			}
			if agent != "" {
				if _, err := os.Stat(agent); err != nil {
					return fmt.Errorf("cloud-local: --agent: %w", missing(err))
				}
			}
			level := slog.LevelError + 4 // quiet
			if verbose {
				level = slog.LevelWarn
			}
			logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			fmt.Fprintln(stderr, "starting PostgreSQL, DynamoDB Local, fauxqs and the Scheduler stand-in…")
			started := time.Now()
			s, err := cloudlocal.Start(ctx, cloudlocal.Options{
				PostgresURL:      os.Getenv(emulators.EnvPostgres),
				DynamoDBEndpoint: os.Getenv(emulators.EnvDynamoDB),
				SQSEndpoint:      os.Getenv(emulators.EnvSQS),
				Install:          install,
				InstallHint:      `run "infinity cloud-local --install" to install them (it says what it runs first)`,
				Progress:         stderr,
				AgentFile:        agent,
				TimeScale:        scale,
				Logger:           logger,
			})
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(stderr, "ready in %.1fs\n", time.Since(started).Seconds())

			if len(pos) == 0 {
				printStackEnv(stdout, s)
				fmt.Fprintln(stderr, "running; press Ctrl-C to stop (everything is removed then)")
				a.serving = true
				<-ctx.Done()
				return nil
			}
			root := infinity.ThreadID(thread)
			if root == "" {
				root = infinity.ThreadID(fmt.Sprintf("cloud-%08x", rand.Uint32()))
			}
			if _, err := s.Send(ctx, root, pos[0]); err != nil {
				return fmt.Errorf("cloud-local: send: %w", err)
			}
			fmt.Fprintf(stderr, "sent to thread %s through the input queue\n", root)
			return followOutput(ctx, s, root, timeout, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&agent, "agent", "", "the agent file new root threads run (default: the bundled demo agent)")
	f.StringVar(&thread, "thread", "", "the root thread's id (default: a random one)")
	f.Float64Var(&scale, "time-scale", 1, "run the Scheduler stand-in's clock this much slower (0.001: a 20-minute sleep fires in 1.2 s)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "with MESSAGE, give up if the tree has not settled by then")
	f.BoolVarP(&verbose, "verbose", "v", false, "log the handlers' warnings and errors to stderr")
	f.BoolVar(&install, "install", false, "install what the emulators need and is missing: postgresql-15 and openjdk-17-jre-headless with apt-get (as root or through sudo), DynamoDB Local and fauxqs with npm")
	_ = cmd.RegisterFlagCompletionFunc("agent", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	for _, name := range []string{"thread", "time-scale", "timeout"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	return cmd
}

// printStackEnv prints what the functions run with, as export lines
// ("infinity cloud" reads the same).
func printStackEnv(w io.Writer, s *cloudlocal.Stack) {
	fmt.Fprintln(w, "# The emulators check no signatures: without AWS credentials, export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test too.")
	fmt.Fprintf(w, "export AWS_ENDPOINT_URL_SQS=%s\n", s.SQSEndpoint)
	fmt.Fprintf(w, "export AWS_ENDPOINT_URL_DYNAMODB=%s\n", s.DynamoDBEndpoint)
	fmt.Fprintf(w, "export AWS_ENDPOINT_URL_SCHEDULER=%s\n", s.SchedulerEndpoint)
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "export %s=%q\n", k, s.Env[k])
	}
}

// followOutput prints the output queue's display events until the tree
// under root settles.
func followOutput(ctx context.Context, s *cloudlocal.Stack, root infinity.ThreadID, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := newTranscript(w)
	names := map[infinity.ThreadID]string{root: "root"}
	// The output events of the last slices are sent after their commits:
	// once the tree has settled, one more empty receive says they are in.
	done := false
	for {
		out, err := s.SQS.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.Queues.Output.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cloud-local: thread %s did not settle within %v", root, timeout)
			}
			return fmt.Errorf("cloud-local: output queue: %w", err)
		}
		var events []lambda.OutputEvent
		for _, m := range out.Messages {
			var ev lambda.OutputEvent
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err == nil {
				events = append(events, ev)
			}
			s.SQS.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(s.Queues.Output.URL), ReceiptHandle: m.ReceiptHandle})
		}
		// The output queue is a standard queue: order events by their
		// items' times.
		sort.SliceStable(events, func(i, j int) bool { return firstAt(events[i]).Before(firstAt(events[j])) })
		for _, ev := range events {
			who, ok := names[ev.Thread]
			if !ok {
				who = fmt.Sprintf("child %d", len(names))
				names[ev.Thread] = who
			}
			for _, it := range ev.Items {
				tr.line(who, daemon.ItemLine{Item: &it})
			}
		}
		if done && len(out.Messages) == 0 {
			fmt.Fprintf(w, "-- %s settled: every child closed and the root answered\n", root)
			return nil
		}
		if !done {
			if done, err = treeSettled(ctx, s.Conversations, root); err != nil {
				return fmt.Errorf("cloud-local: %w", err)
			}
		}
	}
}

func firstAt(ev lambda.OutputEvent) time.Time {
	if len(ev.Items) == 0 {
		return time.Time{}
	}
	return ev.Items[0].At
}

// treeSettled reports whether every thread under root has closed and the root's
// last item is an answer (text, no call waiting).
func treeSettled(ctx context.Context, conv infinity.ConversationStore, root infinity.ThreadID) (bool, error) {
	items, err := conv.Items(ctx, root, 0, -1)
	if errors.Is(err, infinity.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(items) == 0 || items[len(items)-1].Kind != infinity.KindAssistant {
		return false, nil
	}
	queue := []infinity.ThreadID{root}
	for len(queue) > 0 {
		kids, err := conv.Children(ctx, queue[0])
		if err != nil {
			return false, err
		}
		queue = queue[1:]
		for _, k := range kids {
			if !k.Closed {
				return false, nil
			}
			queue = append(queue, k.ID)
		}
	}
	return true, nil
}
