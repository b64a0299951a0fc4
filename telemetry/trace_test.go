package telemetry_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
	"github.com/infinity-runtime/infinity/telemetry"
)

// echo is a synchronous tool that answers with its arguments, or fails.
type echo struct{}

func (echo) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "echo", Description: "Echoes.", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (echo) Invoke(_ context.Context, _ infinity.ToolEnv, c infinity.ToolCall) (*infinity.ToolResult, error) {
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: string(c.Args)}}}, nil
}

// TestSliceSpans runs one slice (a model call, a tool call, a second model
// call, the commit) and checks its span tree: one root "slice" span with
// the load, both model calls, the tool call and the commit as children,
// each carrying the thread's id.
func TestSliceSpans(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "echo", Args: []byte(`{"x":1}`)}}}},
		{When: scripted.Match{LastTool: "echo"}, Reply: scripted.Reply{Text: "Echoed."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{
		Conversations: conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(actors.Deliverer) infinity.InputSender { return discard{} },
		StepOnly:      true,
		Agents:        []actors.Agent{{Name: "a", Tools: []infinity.Tool{echo{}}}},
		Probe:         telemetry.NewTracer(tp),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: "t1", Root: "t1", Agent: "a", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Step(ctx, []infinity.InputMessage{{ID: "m1", GroupID: "t1", Content: infinity.TextContent("Echo something.")}}); err != nil {
		t.Fatal(err)
	}

	spans := rec.Ended()
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "slice" {
			if root != nil {
				t.Fatalf("two slice spans")
			}
			root = s
		}
	}
	if root == nil || root.Parent().IsValid() {
		t.Fatalf("no root slice span in %v", names(spans))
	}
	var kids []string
	for _, s := range spans {
		if s == root {
			continue
		}
		if s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("span %q is not a child of the slice", s.Name())
		}
		kids = append(kids, s.Name())
		if v, ok := attr(s, telemetry.AttrThread); !ok || v.AsString() != "t1" {
			t.Errorf("span %q has thread %v", s.Name(), v)
		}
	}
	slices.Sort(kids)
	// The runtime's default model has no name: its spans are "model".
	want := []string{"commit", "load", "model", "model", "tool echo"}
	if !slices.Equal(kids, want) {
		t.Fatalf("the slice's children are %v, want %v", kids, want)
	}
	if v, _ := attr(root, telemetry.AttrOutcome); v.AsString() != actors.OutcomeCommitted {
		t.Errorf("slice outcome %q", v.AsString())
	}
	if v, _ := attr(root, telemetry.AttrItems); v.AsInt64() != 4 {
		t.Errorf("slice items %d, want 4 (input, call, result, answer)", v.AsInt64())
	}
	for _, s := range spans {
		if strings.HasPrefix(s.Name(), "tool") {
			if v, _ := attr(s, telemetry.AttrToolKind); v.AsString() != actors.ToolSync {
				t.Errorf("tool kind %q", v.AsString())
			}
		}
		if s.Status().Code == codes.Error {
			t.Errorf("span %q failed: %s", s.Name(), s.Status().Description)
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name())
	}
	return n
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

type discard struct{}

func (discard) Send(context.Context, infinity.InputMessage, time.Time) error { return nil }

// TestTracingOffWithoutEndpoint: without an OTLP endpoint there is no
// tracer, and so no tracing probe.
func TestTracingOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, shutdown, err := telemetry.TracerFromEnv(context.Background(), "infinity")
	if err != nil || tp != nil || telemetry.NewTracer(tp) != nil {
		t.Fatalf("TracerFromEnv without an endpoint = %v, %v", tp, err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// boom is a synchronous tool that panics.
type boom struct{}

func (boom) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "boom", Description: "Panics.", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (boom) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	panic("boom")
}

// TestPanickingSliceEndsItsSpan: a slice that panics (here in a tool) still
// ends its slice span, as failed.
func TestPanickingSliceEndsItsSpan(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "boom"}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{
		Conversations: conv, State: memory.NewStateStore(nil), Model: model,
		Sender:   func(actors.Deliverer) infinity.InputSender { return discard{} },
		StepOnly: true,
		Agents:   []actors.Agent{{Name: "a", Tools: []infinity.Tool{boom{}}}},
		Probe:    telemetry.NewTracer(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: "t1", Root: "t1", Agent: "a", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Step(ctx, []infinity.InputMessage{{ID: "m1", GroupID: "t1", Content: infinity.TextContent("Go.")}}); err == nil {
		t.Fatal("a slice whose tool panics succeeded")
	}
	for _, s := range rec.Ended() {
		if s.Name() == "slice" {
			if v, _ := attr(s, telemetry.AttrOutcome); v.AsString() != actors.OutcomeFailed || s.Status().Code != codes.Error {
				t.Fatalf("the slice span ended with outcome %q, status %v", v.AsString(), s.Status())
			}
			return
		}
	}
	t.Fatalf("no slice span ended: %v", names(rec.Ended()))
}
