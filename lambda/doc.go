// Package lambda holds the handlers of the cloud mode's Lambda functions:
// the agent handler (an SQS FIFO batch in, one slice per message group,
// batch item failures out), the delay relay and the RAP receiver. They are
// plain functions over aws-lambda-go's event types, tested by calling them
// with real event JSON; cmd/infinity-lambda starts them with lambda.Start
// and package cloudlocal drives them on a laptop.
//
// It imports the engine (actors), the root package and aws-lambda-go's
// events; the AWS adapters are wired in by its callers.
//
// # Metrics and traces
//
// Telemetry is the agent function's view of its slices, fed by the
// runtime's probe (cloud.Options.Probe) and set from the environment by
// TelemetryFromEnv:
//
//   - CloudWatch embedded-metric-format lines (EMF), on by default: one
//     JSON line per slice on stdout, which Lambda sends to the function's
//     log group, where CloudWatch extracts the metrics (no IAM permission
//     beyond writing the log). Namespace Infinity, dimension Function (the
//     function's name): SliceDuration, Slices (also by Function and
//     Outcome: committed, noop, dropped, model_error, failed), LoadDuration,
//     ModelCalls, ModelErrors, ModelDuration (a value per call),
//     InputTokens, OutputTokens, ToolCalls, ToolErrors, CommitDuration; the
//     thread's id (ThreadId), the request's id, the agent, the model, the
//     messages taken, the items committed and a failed slice's error are
//     properties, searchable in Logs Insights but not dimensions. A line
//     per slice keeps the log to at most ten lines an invocation (a FIFO
//     batch's size) whatever the slices do. INFINITY_EMF=off turns them
//     off.
//   - OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT (or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: the daemon's spans (a
//     "slice" span with "load", "model …", "tool …" and "commit" children,
//     each carrying infinity.thread), sent over OTLP/HTTP with the JSON
//     encoding by package telemetry/otlpjson, which keeps the OpenTelemetry
//     SDK out of the bootstrap. Handler wraps the agent handler so that the
//     invocation's spans are sent before it answers (Lambda freezes the
//     process after), within OTEL_EXPORTER_OTLP_TIMEOUT (default 2 s) and
//     never closer than a second to the deadline; spans a dead collector
//     did not take are dropped with a warning, and the batch is unaffected.
//     OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME (default: the
//     function's name) and OTEL_RESOURCE_ATTRIBUTES apply; the collector
//     must take OTLP/HTTP (port 4318), not gRPC.
//
// The relay and receiver functions run no slices and have neither.
package lambda
