package telemetry_test

import (
	"context"
	"testing"

	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/telemetry"
)

// BenchmarkMetricsProbe is what the metrics cost a slice: its five steps
// (slice, load, model, tool, commit) through the metrics probe, without
// tracing.
func BenchmarkMetricsProbe(b *testing.B) {
	p := telemetry.NewMetrics(telemetry.Gauges{}, nil).Probe()
	ctx := context.Background()
	steps := []actors.Step{
		{Kind: actors.StepLoad, Thread: "t1"},
		{Kind: actors.StepModel, Thread: "t1", Agent: "a", Model: "scripted/scripted"},
		{Kind: actors.StepTool, Thread: "t1", Tool: "sleep", ToolKind: actors.ToolBuiltin},
		{Kind: actors.StepCommit, Thread: "t1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		sctx, endSlice := p.Begin(ctx, actors.Step{Kind: actors.StepSlice, Thread: "t1", Messages: 1})
		for _, s := range steps {
			_, end := p.Begin(sctx, s)
			end(actors.StepEnd{})
		}
		endSlice(actors.StepEnd{Outcome: actors.OutcomeCommitted, Items: 3})
	}
}
