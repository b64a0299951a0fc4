package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/history"
	"github.com/cschleiden/go-workflows/backend/sqlite"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/core"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
)

// goWorkflows runs go-workflows in this process on its SQLite backend
// (modernc.org/sqlite, CGO-free; WAL is set by the backend, synchronous=FULL
// by the DSN pragma).
type goWorkflows struct {
	dir    string
	db     string
	base   int64
	b      backend.Backend
	c      *client.Client
	w      *worker.Worker
	cancel context.CancelFunc
}

// SleepSignal is the workload as a go-workflows workflow.
func SleepSignal(ctx workflow.Context, i int, delayMS int64) (int, error) {
	rec := active.Load()
	d := time.Duration(delayMS) * time.Millisecond
	if !workflow.Replaying(ctx) {
		rec.sleeping(i, d)
	}
	if err := workflow.Sleep(ctx, d); err != nil {
		return 0, fmt.Errorf("sleep: %w", err)
	}
	if !workflow.Replaying(ctx) {
		rec.wake(i)
	}
	workflow.NewSignalChannel[int](ctx, "go").Receive(ctx)
	return i, nil
}

func newGoWorkflows(ctx context.Context, cfg config, rec *recorder) (*goWorkflows, error) {
	dir, err := os.MkdirTemp("", "peers-gowf-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	g := &goWorkflows{dir: dir, db: filepath.Join(dir, "gowf.sqlite")}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := openSqlite(func() backend.Backend {
		return sqlite.NewSqliteBackend(g.db+"?_pragma=synchronous(FULL)",
			sqlite.WithBackendOptions(backend.WithLogger(quiet)))
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	g.b = &trackedBackend{Backend: b, rec: rec}
	g.base = filesSize(sqliteFiles(g.db)...)
	g.c = client.New(g.b)
	g.w = worker.New(g.b, nil)
	if err := g.w.RegisterWorkflow(SleepSignal); err != nil {
		g.close()
		return nil, fmt.Errorf("register workflow: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	if err := g.w.Start(wctx); err != nil {
		g.close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return g, nil
}

// openSqlite converts the backend constructor's panics into errors.
func openSqlite(open func() backend.Backend) (b backend.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("open go-workflows sqlite backend: %v", r)
		}
	}()
	return open(), nil
}

func (g *goWorkflows) start(ctx context.Context, i int, d time.Duration) error {
	_, err := g.c.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: workflowID(i)},
		SleepSignal, i, d.Milliseconds())
	if err != nil {
		return fmt.Errorf("create instance: %w", err)
	}
	return nil
}

func (g *goWorkflows) signal(ctx context.Context, i int) error {
	if err := g.c.SignalWorkflow(ctx, workflowID(i), "go", 1); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	return nil
}

func (g *goWorkflows) pids() map[string]int { return map[string]int{"worker": 0} }

func (g *goWorkflows) diskBytes() int64 {
	logf("go-workflows process write_bytes (/proc io): %d", ioWriteBytes(0))
	return filesSize(sqliteFiles(g.db)...) - g.base
}

func (g *goWorkflows) close() error {
	if g.cancel != nil {
		g.cancel()
		if g.w != nil {
			_ = g.w.WaitForCompletion()
		}
	}
	var err error
	if g.b != nil {
		err = g.b.Close()
	}
	os.RemoveAll(g.dir)
	if err != nil {
		return fmt.Errorf("close backend: %w", err)
	}
	return nil
}

// trackedBackend observes durable commits: timers scheduled and workflows
// finished, at the moment the backend's transaction returns.
type trackedBackend struct {
	backend.Backend
	rec *recorder
}

func (t *trackedBackend) CompleteWorkflowTask(ctx context.Context, task *backend.WorkflowTask, state core.WorkflowInstanceState,
	executed, activities, timers []*history.Event, events []*history.WorkflowEvent) error {
	err := t.Backend.CompleteWorkflowTask(ctx, task, state, executed, activities, timers, events)
	if err != nil {
		return err
	}
	t.rec.timerCommitted(len(timers))
	for _, e := range executed {
		if e.Type == history.EventType_WorkflowExecutionFinished {
			t.rec.finish(workflowIndex(task.WorkflowInstance.InstanceID))
		}
	}
	return nil
}
