package lambda

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/telemetry/otlpjson"
)

// EnvEMF turns the agent function's embedded-metric-format lines off
// (INFINITY_EMF=off); they are on by default.
const EnvEMF = "INFINITY_EMF"

// Telemetry is what the agent function shows of its slices: CloudWatch
// embedded-metric-format lines on stdout (EMF) and OpenTelemetry spans sent
// over OTLP/HTTP (Traces), both fed by the runtime's Probe. Either is nil
// when off.
type Telemetry struct {
	EMF    *EMF
	Traces *otlpjson.Exporter
	Logger *slog.Logger
}

// TelemetryFromEnv reads INFINITY_EMF (on by default; off, false or 0
// turns the EMF lines off) and the standard OTEL_* variables (traces are
// on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set; see package otlpjson). EMF lines go to stdout with the dimension
// Function = AWS_LAMBDA_FUNCTION_NAME, which is also the spans' default
// service.name.
func TelemetryFromEnv(getenv func(string) string, stdout io.Writer, logger *slog.Logger) (*Telemetry, error) {
	if logger == nil {
		logger = slog.Default()
	}
	t := &Telemetry{Logger: logger}
	function := getenv("AWS_LAMBDA_FUNCTION_NAME")
	switch v := getenv(EnvEMF); v {
	case "", "on", "true", "1":
		t.EMF = NewEMF(stdout, function)
	case "off", "false", "0":
	default:
		return nil, fmt.Errorf("lambda: %s=%q: want on or off: %w", EnvEMF, v, infinity.ErrInvalid)
	}
	service := function
	if service == "" {
		service = "infinity-lambda"
	}
	res := map[string]string{"service.name": service, "cloud.provider": "aws", "cloud.platform": "aws_lambda"}
	for k, env := range map[string]string{"cloud.region": "AWS_REGION", "faas.name": "AWS_LAMBDA_FUNCTION_NAME", "faas.version": "AWS_LAMBDA_FUNCTION_VERSION"} {
		if v := getenv(env); v != "" {
			res[k] = v
		}
	}
	traces, err := otlpjson.FromEnv(getenv, res)
	if err != nil {
		return nil, fmt.Errorf("lambda: traces: %w", err)
	}
	t.Traces = traces
	return t, nil
}

// Probe is the runtime's Config.Probe: nil (nothing observed, nothing
// spent) when both are off.
func (t *Telemetry) Probe() actors.Probe {
	var ps []actors.Probe
	if t.EMF != nil {
		ps = append(ps, t.EMF)
	}
	if t.Traces != nil {
		ps = append(ps, t.Traces)
	}
	return actors.Probes(ps...)
}

// flushMargin is kept free before the invocation's deadline when sending
// spans: the invocation's answer must still get out.
const flushMargin = time.Second

// Flush sends the spans the invocation made, within the exporter's timeout
// and never closer than a second to ctx's deadline; spans that cannot be
// sent are dropped, with a warning (a frozen process cannot retry).
func (t *Telemetry) Flush(ctx context.Context) {
	if t == nil || t.Traces == nil {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-flushMargin))
		defer cancel()
	}
	if err := t.Traces.Flush(ctx); err != nil {
		t.Logger.Warn("spans not sent", "err", err)
	}
}

// AgentHandler is the agent function's handler (Agent.Handle).
type AgentHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// Handler returns h flushing the spans before it returns: Lambda freezes
// the process once the invocation has answered. Without traces it is h.
func (t *Telemetry) Handler(h AgentHandler) AgentHandler {
	if t == nil || t.Traces == nil {
		return h
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := h(ctx, ev)
		t.Flush(ctx)
		return resp, err
	}
}
