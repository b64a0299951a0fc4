// Package telemetry is what the runtime shows of itself: Prometheus metrics
// (Metrics: slices, model and tool calls, commits, timers, threads, the
// inbox, RAP callbacks) and OpenTelemetry traces (Tracer: a span per slice
// with children for its load, model calls, tool calls and commit), both fed
// by an actors.Probe. The Lambda functions link neither the Prometheus
// client nor the OpenTelemetry SDK (their binary has a size budget): they
// write CloudWatch embedded-metric-format lines (package lambda) and send
// the same spans with package otlpjson, a small OTLP/HTTP JSON exporter.
//
// Tracing is off unless the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: TracerFromEnv then exports
// over OTLP/HTTP, else it returns nil and nothing is traced.
package telemetry
