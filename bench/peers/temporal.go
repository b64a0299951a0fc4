package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
)

const taskQueue = "sleepsignal"

// temporalEngine drives a Temporal dev server (a child process) with a worker
// and a starter in this process.
type temporalEngine struct {
	srv *devServer
	c   client.Client
	w   worker.Worker
}

// TemporalSleepSignal is the workload as a Temporal workflow.
func TemporalSleepSignal(ctx workflow.Context, i int, delayMS int64) (int, error) {
	rec := active.Load()
	d := time.Duration(delayMS) * time.Millisecond
	if !workflow.IsReplaying(ctx) {
		rec.sleeping(i, d)
	}
	if err := workflow.Sleep(ctx, d); err != nil {
		return 0, fmt.Errorf("sleep: %w", err)
	}
	if !workflow.IsReplaying(ctx) {
		rec.wake(i)
	}
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return i, nil
}

func newTemporal(ctx context.Context, cfg config, rec *recorder) (*temporalEngine, error) {
	srv, err := startDevServer(ctx, cfg.temporalBin)
	if err != nil {
		return nil, err
	}
	t := &temporalEngine{srv: srv}
	var out io.Writer = io.Discard
	if os.Getenv("PEERS_DEBUG") != "" {
		out = os.Stderr
	}
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.c, err = dialRetry(ctx, client.Options{
		HostPort: srv.hostPort,
		Logger:   quiet,
		ConnectionOptions: client.ConnectionOptions{
			DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(commitObserver(rec))},
		},
	})
	if err != nil {
		t.close()
		return nil, err
	}
	srv.markBase()
	t.w = worker.New(t.c, taskQueue, worker.Options{})
	t.w.RegisterWorkflowWithOptions(TemporalSleepSignal, workflow.RegisterOptions{Name: "SleepSignal"})
	if err := t.w.Start(); err != nil {
		t.close()
		return nil, fmt.Errorf("start temporal worker: %w", err)
	}
	return t, nil
}

func dialRetry(ctx context.Context, opts client.Options) (client.Client, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := client.Dial(opts)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("temporal dev server not answering at %s: %w", opts.HostPort, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// commitObserver watches RespondWorkflowTaskCompleted calls: when one returns
// OK the server has durably committed its timers and completions.
func commitObserver(rec *recorder) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		r, ok := req.(*workflowservice.RespondWorkflowTaskCompletedRequest)
		if err != nil || !ok || !strings.HasSuffix(method, "RespondWorkflowTaskCompleted") {
			return err
		}
		timers := 0
		for _, cmd := range r.GetCommands() {
			switch cmd.GetCommandType() {
			case enumspb.COMMAND_TYPE_START_TIMER:
				timers++
			case enumspb.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
				p := cmd.GetCompleteWorkflowExecutionCommandAttributes().GetResult().GetPayloads()
				var i int
				if len(p) == 1 && json.Unmarshal(p[0].GetData(), &i) == nil {
					rec.finish(i)
				}
			}
		}
		rec.timerCommitted(timers)
		return nil
	}
}

func (t *temporalEngine) start(ctx context.Context, i int, d time.Duration) error {
	_, err := t.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflowID(i), TaskQueue: taskQueue},
		"SleepSignal", i, d.Milliseconds())
	if err != nil {
		return fmt.Errorf("start workflow: %w", err)
	}
	return nil
}

func (t *temporalEngine) signal(ctx context.Context, i int) error {
	if err := t.c.SignalWorkflow(ctx, workflowID(i), "", "go", 1); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	return nil
}

func (t *temporalEngine) pids() map[string]int {
	return map[string]int{"worker": 0, "server": t.srv.cmd.Process.Pid}
}

func (t *temporalEngine) diskBytes() int64 { return t.srv.diskBytes() }

func (t *temporalEngine) close() error {
	if t.w != nil {
		t.w.Stop()
	}
	if t.c != nil {
		t.c.Close()
	}
	return t.srv.stop()
}
