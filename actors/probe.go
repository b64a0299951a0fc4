package actors

import (
	"context"
	"strconv"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// Probe watches the steps of slices, for metrics and traces (package
// telemetry has one on Prometheus and OpenTelemetry). Begin is called when
// a step starts, on the goroutine that runs it (a slice's parts may run on
// different goroutines: a model call that suspends its slice runs on a
// goroutine of its own, and the slice goes on on a worker); the context it
// returns is the one the step runs with (so steps nest: a model call
// inside its slice), and end is called exactly once, when the step is
// over. Neither may block: they run on the engine's hot path.
type Probe interface {
	Begin(ctx context.Context, s Step) (context.Context, func(StepEnd))
}

// StepKind tells the steps of a slice apart.
type StepKind uint8

// The steps a Probe sees. A slice holds the others: one load, then any
// number of model calls and tool calls, then at most one commit.
const (
	// StepSlice: a whole slice of Thread, from taking its messages to its
	// acknowledgement (Messages is how many it took).
	StepSlice StepKind = iota + 1
	// StepLoad: loading Thread's history and tools.
	StepLoad
	// StepModel: one model stream (a retried stream is a step of its own);
	// Model is "provider/model", Agent the thread's agent.
	StepModel
	// StepTool: one tool call: run inline (built-ins and synchronous
	// tools) or started (asynchronous tools); Tool and ToolKind say which.
	StepTool
	// StepCommit: committing the slice's items and outbox, until durable.
	StepCommit
)

var stepKindNames = [...]string{StepSlice: "slice", StepLoad: "load", StepModel: "model", StepTool: "tool", StepCommit: "commit"}

// String returns the kind's lowercase name ("slice", "load", "model",
// "tool", "commit"), or "StepKind(N)" for a value outside the constants.
func (k StepKind) String() string {
	if int(k) < len(stepKindNames) && stepKindNames[k] != "" {
		return stepKindNames[k]
	}
	return "StepKind(" + strconv.Itoa(int(k)) + ")"
}

// Tool kinds of a StepTool.
const (
	ToolBuiltin = "builtin" // sleep, spawn_thread, … run by the engine
	ToolSync    = "sync"    // a synchronous tool, run inside the slice
	ToolAsync   = "async"   // an asynchronous tool, started after the commit
)

// Step describes a step as it begins.
type Step struct {
	Kind   StepKind
	Thread infinity.ThreadID
	// Messages is the number of messages a StepSlice took.
	Messages int
	// Agent and Model are set on StepModel.
	Agent, Model string
	// Tool and ToolKind (ToolBuiltin, ToolSync, ToolAsync) are set on
	// StepTool; Call is the call's id.
	Tool, ToolKind, Call string
}

// Slice outcomes, in StepEnd.Outcome of a StepSlice.
const (
	// OutcomeCommitted: the slice committed new items.
	OutcomeCommitted = "committed"
	// OutcomeNoop: nothing to apply (repeats, or a run with nothing new).
	OutcomeNoop = "noop"
	// OutcomeDropped: the input was for a closed or unknown thread.
	OutcomeDropped = "dropped"
	// OutcomeModelError: committed, but the model failed for good (the
	// thread waits for new input; Err says why).
	OutcomeModelError = "model_error"
	// OutcomeFailed: the slice failed (Err); its input is retried.
	OutcomeFailed = "failed"
)

// StepEnd is how a step ended.
type StepEnd struct {
	// Err is the step's failure: a failed slice, stream, commit, or a
	// tool call answered with an error.
	Err error
	// Outcome is set on a StepSlice (OutcomeCommitted, …).
	Outcome string
	// Usage is a StepModel's token usage (zero when it failed).
	Usage infinity.Usage
	// Items is the number of items a StepSlice committed.
	Items int
}

// noProbe is the Probe of a runtime configured without one.
type noProbe struct{}

func noEnd(StepEnd) {}

func (noProbe) Begin(ctx context.Context, _ Step) (context.Context, func(StepEnd)) {
	return ctx, noEnd
}

// Probes joins probes into one: each sees every step, in order, and the
// context is passed from one to the next. Nil probes are skipped.
func Probes(ps ...Probe) Probe {
	return join(ps, func(j []Probe) Probe { return joinedProbes(j) })
}

type joinedProbes []Probe

func (j joinedProbes) Begin(ctx context.Context, s Step) (context.Context, func(StepEnd)) {
	ends := make([]func(StepEnd), len(j))
	for i, p := range j {
		ctx, ends[i] = p.Begin(ctx, s)
	}
	return ctx, func(e StepEnd) {
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](e)
		}
	}
}

// TimedProbe is a Probe made of one function called when a step ends, with
// its duration: the simplest way to collect figures.
type TimedProbe func(s Step, e StepEnd, took time.Duration)

// Begin implements Probe.
func (f TimedProbe) Begin(ctx context.Context, s Step) (context.Context, func(StepEnd)) {
	start := time.Now()
	return ctx, func(e StepEnd) { f(s, e, time.Since(start)) }
}
