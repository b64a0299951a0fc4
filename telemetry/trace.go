package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/telemetry/otlpjson"
)

// Span attribute keys (shared with package otlpjson, the Lambda
// functions' exporter).
const (
	AttrThread   = otlpjson.AttrThread
	AttrMessages = otlpjson.AttrMessages
	AttrOutcome  = otlpjson.AttrOutcome
	AttrItems    = otlpjson.AttrItems
	AttrAgent    = otlpjson.AttrAgent
	AttrModel    = otlpjson.AttrModel
	AttrTool     = otlpjson.AttrTool
	AttrToolKind = otlpjson.AttrToolKind
	AttrCall     = otlpjson.AttrCall
	AttrTokensIn = otlpjson.AttrTokensIn
	AttrTokensOu = otlpjson.AttrTokensOu
)

// TracingConfigured reports whether the environment asks for traces:
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// (and OTEL_TRACES_EXPORTER is not "none").
func TracingConfigured() bool {
	if os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// TracerFromEnv makes a tracer provider that exports spans over OTLP/HTTP
// to the endpoint the standard OTEL_EXPORTER_OTLP_* variables name (their
// headers, timeout and so on too), as service (unless OTEL_SERVICE_NAME
// says otherwise). Without an endpoint it returns nil and a no-op
// shutdown: tracing is off and costs nothing. shutdown flushes the spans
// still buffered.
func TracerFromEnv(ctx context.Context, service string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if !TracingConfigured() {
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		// A malformed OTEL_RESOURCE_ATTRIBUTES still gives a usable
		// (partial) resource; anything else does not.
		_ = exp.Shutdown(ctx)
		return nil, nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return p, p.Shutdown, nil
}

// Tracer is a Probe that makes an OpenTelemetry span of each step: a slice
// span with children for its load, model calls, tool calls and commit,
// each carrying the thread's id.
type Tracer struct{ t trace.Tracer }

// NewTracer traces with tp; a nil tp gives a nil Probe (no tracing).
func NewTracer(tp trace.TracerProvider) actors.Probe {
	if tp == nil {
		return nil
	}
	return Tracer{t: tp.Tracer("github.com/infinity-runtime/infinity")}
}

// Begin implements actors.Probe.
func (t Tracer) Begin(ctx context.Context, s actors.Step) (context.Context, func(actors.StepEnd)) {
	attrs := []attribute.KeyValue{attribute.String(AttrThread, string(s.Thread))}
	name := s.Kind.String()
	kind := trace.SpanKindInternal
	switch s.Kind {
	case actors.StepSlice:
		attrs = append(attrs, attribute.Int(AttrMessages, s.Messages))
	case actors.StepModel:
		if s.Model != "" {
			name = "model " + s.Model
		}
		kind = trace.SpanKindClient
		attrs = append(attrs, attribute.String(AttrAgent, s.Agent), attribute.String(AttrModel, s.Model))
	case actors.StepTool:
		name = "tool " + s.Tool
		attrs = append(attrs, attribute.String(AttrTool, s.Tool), attribute.String(AttrToolKind, s.ToolKind), attribute.String(AttrCall, s.Call))
	}
	ctx, span := t.t.Start(ctx, name, trace.WithAttributes(attrs...), trace.WithSpanKind(kind))
	return ctx, func(e actors.StepEnd) {
		switch s.Kind {
		case actors.StepSlice:
			span.SetAttributes(attribute.String(AttrOutcome, e.Outcome), attribute.Int(AttrItems, e.Items))
		case actors.StepModel:
			span.SetAttributes(attribute.Int(AttrTokensIn, e.Usage.Input), attribute.Int(AttrTokensOu, e.Usage.Output))
		}
		if e.Err != nil {
			span.RecordError(e.Err)
			span.SetStatus(codes.Error, e.Err.Error())
		}
		span.End()
	}
}
