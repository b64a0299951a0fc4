// Package otlpjson traces slices as package telemetry's Tracer does (the
// same span names and attributes: a "slice" span with "load", "model
// provider/model", "tool name" and "commit" children, each carrying
// infinity.thread), without the OpenTelemetry SDK: spans are kept in
// memory and sent by Flush in one OTLP/HTTP request with the protocol's
// JSON encoding (POST {endpoint}/v1/traces, Content-Type
// application/json). It is for the Lambda bootstrap, which must stay small
// and must send its spans before its invocation returns (Lambda freezes the
// process after): the SDK's batching exporter, with its timers and
// goroutine, fits neither.
//
// FromEnv reads the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (the
// base URL; /v1/traces is appended) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// (the full URL), OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT and
// OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (milliseconds; default 2 s, shorter
// than the SDK's 10 s, so that a dead collector cannot hold an
// invocation), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
// OTEL_TRACES_EXPORTER=none turns tracing off. Without an endpoint it
// returns nil: nothing is traced and nothing is spent. Requests are not
// compressed (OTEL_EXPORTER_OTLP_COMPRESSION is ignored), and
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc is an error: this exporter speaks
// OTLP/HTTP only (collectors take its JSON on the port, 4318, where they
// take protobuf).
package otlpjson

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity/actors"
)

// Span attribute keys, the same in both exporters (package telemetry
// uses these).
const (
	AttrThread   = "infinity.thread"
	AttrMessages = "infinity.messages"
	AttrOutcome  = "infinity.outcome"
	AttrItems    = "infinity.items"
	AttrAgent    = "infinity.agent"
	AttrModel    = "infinity.model"
	AttrTool     = "infinity.tool"
	AttrToolKind = "infinity.tool_kind"
	AttrCall     = "infinity.call"
	AttrTokensIn = "infinity.tokens.input"
	AttrTokensOu = "infinity.tokens.output"
)

// ScopeName is the instrumentation scope of the spans, the Tracer's.
const ScopeName = "github.com/infinity-runtime/infinity"

// OTLP span kinds and status codes (integers, as the JSON encoding wants).
const (
	KindInternal = 1
	KindClient   = 3
	StatusError  = 2
)

// DefaultTimeout bounds a Flush when the environment sets no timeout.
const DefaultTimeout = 2 * time.Second

// DefaultMaxSpans is how many ended spans wait for a Flush at most; later
// ones are dropped (and counted) until the next Flush.
const DefaultMaxSpans = 4096

// Config configures an Exporter.
type Config struct {
	// URL is where spans are posted: the collector's /v1/traces.
	URL string
	// Headers are sent with every request (credentials, say).
	Headers map[string]string
	// Resource is the resource's attributes; service.name among them.
	Resource map[string]string
	// Timeout bounds a Flush (DefaultTimeout if zero).
	Timeout time.Duration
	// MaxSpans bounds the spans kept between flushes (DefaultMaxSpans if
	// zero).
	MaxSpans int
	// Client sends the requests (a client of its own if nil).
	Client *http.Client
}

// Exporter is an actors.Probe that records a span for each step and
// sends them on Flush. Its methods may be called from any goroutine.
type Exporter struct {
	c        Config
	resource []KeyValue

	mu      sync.Mutex
	spans   []Span
	dropped int
}

// New makes an exporter to c.URL.
func New(c Config) *Exporter {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxSpans <= 0 {
		c.MaxSpans = DefaultMaxSpans
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	e := &Exporter{c: c}
	keys := make([]string, 0, len(c.Resource))
	for k := range c.Resource {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e.resource = append(e.resource, str(k, c.Resource[k]))
	}
	return e
}

// spanRef is the span a step's context carries: its children's parent.
type spanRef struct {
	trace [16]byte
	span  [8]byte
}

type refKey struct{}

func newID(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := i; j < i+8 && j < len(b); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// Begin implements actors.Probe: a span named and attributed as the
// Tracer's, child of the span the context carries (a new trace for a
// slice).
func (e *Exporter) Begin(ctx context.Context, s actors.Step) (context.Context, func(actors.StepEnd)) {
	ref := spanRef{}
	parent, hasParent := ctx.Value(refKey{}).(spanRef)
	if hasParent {
		ref.trace = parent.trace
	} else {
		newID(ref.trace[:])
	}
	newID(ref.span[:])
	name, kind := s.Kind.String(), KindInternal
	attrs := make([]KeyValue, 1, 6)
	attrs[0] = str(AttrThread, string(s.Thread))
	switch s.Kind {
	case actors.StepSlice:
		attrs = append(attrs, integer(AttrMessages, s.Messages))
	case actors.StepModel:
		if s.Model != "" {
			name = "model " + s.Model
		}
		kind = KindClient
		attrs = append(attrs, str(AttrAgent, s.Agent), str(AttrModel, s.Model))
	case actors.StepTool:
		name = "tool " + s.Tool
		attrs = append(attrs, str(AttrTool, s.Tool), str(AttrToolKind, s.ToolKind), str(AttrCall, s.Call))
	}
	start := time.Now()
	ctx = context.WithValue(ctx, refKey{}, ref)
	return ctx, func(end actors.StepEnd) {
		now := time.Now()
		switch s.Kind {
		case actors.StepSlice:
			attrs = append(attrs, str(AttrOutcome, end.Outcome), integer(AttrItems, end.Items))
		case actors.StepModel:
			attrs = append(attrs, integer(AttrTokensIn, end.Usage.Input), integer(AttrTokensOu, end.Usage.Output))
		}
		sp := Span{
			TraceID: hex.EncodeToString(ref.trace[:]), SpanID: hex.EncodeToString(ref.span[:]),
			Flags: flagsSampled | flagsHasIsRemote, Name: name, Kind: kind,
			StartTimeUnixNano: strconv.FormatInt(start.UnixNano(), 10),
			EndTimeUnixNano:   strconv.FormatInt(now.UnixNano(), 10),
			Attributes:        attrs,
		}
		if hasParent {
			sp.ParentSpanID = hex.EncodeToString(parent.span[:])
		}
		if end.Err != nil {
			// As the SDK's RecordError and SetStatus(codes.Error, …) do.
			msg := end.Err.Error()
			sp.Events = []Event{{TimeUnixNano: sp.EndTimeUnixNano, Name: "exception",
				Attributes: []KeyValue{str("exception.type", typeName(end.Err)), str("exception.message", msg)}}}
			sp.Status = &Status{Code: StatusError, Message: msg}
		}
		e.mu.Lock()
		if len(e.spans) < e.c.MaxSpans {
			e.spans = append(e.spans, sp)
		} else {
			e.dropped++
		}
		e.mu.Unlock()
	}
}

// Span flags: W3C sampled, and "whether the parent is remote is known"
// (it never is), as the SDK's exporter sets them.
const (
	flagsSampled      = 0x01
	flagsHasIsRemote  = 0x100
	maxErrorBodyBytes = 512
)

// typeName is the error's type as the SDK's RecordError names it.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// Pending returns how many ended spans wait for the next Flush.
func (e *Exporter) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.spans)
}

// Flush sends the ended spans in one request and forgets them, sent or
// not: it is called before an invocation returns, and a frozen process
// cannot retry later. It gives up after the configured timeout (or ctx's
// deadline, if sooner). A connection error is retried once within that
// time: a connection kept across a freeze may have been closed by the
// collector meanwhile. Spans still open are left for the next Flush.
func (e *Exporter) Flush(ctx context.Context) error {
	e.mu.Lock()
	spans, dropped := e.spans, e.dropped
	e.spans, e.dropped = nil, 0
	e.mu.Unlock()
	var lost error
	if dropped > 0 {
		lost = fmt.Errorf("otlpjson: %d spans dropped (more than %d between flushes)", dropped, e.c.MaxSpans)
	}
	if len(spans) == 0 {
		return lost
	}
	body, err := json.Marshal(ExportRequest{ResourceSpans: []ResourceSpans{{
		Resource:   Resource{Attributes: e.resource},
		ScopeSpans: []ScopeSpans{{Scope: Scope{Name: ScopeName}, Spans: spans}},
	}}})
	if err != nil {
		return errors.Join(fmt.Errorf("otlpjson: encode %d spans: %w", len(spans), err), lost)
	}
	ctx, cancel := context.WithTimeout(ctx, e.c.Timeout)
	defer cancel()
	err = e.post(ctx, body)
	var status statusError
	if err != nil && !errors.As(err, &status) && ctx.Err() == nil {
		err = e.post(ctx, body)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("otlpjson: %d spans not sent to %s: %w", len(spans), e.c.URL, err), lost)
	}
	return lost
}

// statusError is a collector's answer other than 2xx.
type statusError struct {
	code int
	body string
}

func (s statusError) Error() string {
	return "collector answered " + strconv.Itoa(s.code) + ": " + s.body
}

func (e *Exporter) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.c.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range e.c.Headers {
		req.Header.Set(k, v)
	}
	resp, err := e.c.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	if resp.StatusCode/100 != 2 {
		return statusError{code: resp.StatusCode, body: strings.TrimSpace(string(msg))}
	}
	return nil
}

// The OTLP/JSON request: ExportTraceServiceRequest in the protocol's JSON
// encoding (lowerCamelCase field names, hex trace and span ids, enums as
// integers, 64-bit integers as decimal strings).
type (
	ExportRequest struct {
		ResourceSpans []ResourceSpans `json:"resourceSpans"`
	}
	ResourceSpans struct {
		Resource   Resource     `json:"resource"`
		ScopeSpans []ScopeSpans `json:"scopeSpans"`
	}
	Resource struct {
		Attributes []KeyValue `json:"attributes"`
	}
	ScopeSpans struct {
		Scope Scope  `json:"scope"`
		Spans []Span `json:"spans"`
	}
	Scope struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	Span struct {
		TraceID           string     `json:"traceId"`
		SpanID            string     `json:"spanId"`
		ParentSpanID      string     `json:"parentSpanId,omitempty"`
		Flags             uint32     `json:"flags,omitempty"`
		Name              string     `json:"name"`
		Kind              int        `json:"kind"`
		StartTimeUnixNano string     `json:"startTimeUnixNano"`
		EndTimeUnixNano   string     `json:"endTimeUnixNano"`
		Attributes        []KeyValue `json:"attributes,omitempty"`
		Events            []Event    `json:"events,omitempty"`
		Status            *Status    `json:"status,omitempty"`
	}
	Event struct {
		TimeUnixNano string     `json:"timeUnixNano"`
		Name         string     `json:"name"`
		Attributes   []KeyValue `json:"attributes,omitempty"`
	}
	Status struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	}
	KeyValue struct {
		Key   string   `json:"key"`
		Value AnyValue `json:"value"`
	}
	// AnyValue holds one of its fields; IntValue is an int64 as a
	// decimal string.
	AnyValue struct {
		StringValue *string `json:"stringValue,omitempty"`
		IntValue    string  `json:"intValue,omitempty"`
	}
)

func str(k, v string) KeyValue { return KeyValue{Key: k, Value: AnyValue{StringValue: &v}} }

func integer(k string, v int) KeyValue {
	return KeyValue{Key: k, Value: AnyValue{IntValue: strconv.Itoa(v)}}
}

// FromEnv makes an exporter from the standard OTEL_* variables (see the
// package doc), read with getenv. resource is the resource's attributes
// (service.name and the like) where OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME do not say otherwise. Without an endpoint, or with
// OTEL_TRACES_EXPORTER=none, it returns nil, nil. A malformed variable is
// an error that names it (never a header's value: headers hold
// credentials).
func FromEnv(getenv func(string) string, resource map[string]string) (*Exporter, error) {
	if getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, nil
	}
	var c Config
	var errs []error
	if v := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		c.URL = v
		errs = append(errs, checkURL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v))
	} else if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		c.URL = strings.TrimSuffix(v, "/") + "/v1/traces"
		errs = append(errs, checkURL("OTEL_EXPORTER_OTLP_ENDPOINT", v))
	} else {
		return nil, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if p := getenv(name); p == "grpc" {
			errs = append(errs, fmt.Errorf("%s=grpc: this exporter speaks OTLP/HTTP (JSON) only; point the endpoint at the collector's HTTP port (4318)", name))
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		h, err := pairs(getenv(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		for k, v := range h {
			if c.Headers == nil {
				c.Headers = map[string]string{}
			}
			c.Headers[k] = v
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"} {
		if v := getenv(name); v != "" {
			ms, err := strconv.Atoi(v)
			if err != nil || ms <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive number of milliseconds", name, v))
				continue
			}
			c.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	res, err := pairs(getenv("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		errs = append(errs, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err))
	}
	if res == nil {
		res = map[string]string{}
	}
	for k, v := range resource {
		if _, ok := res[k]; !ok {
			res[k] = v
		}
	}
	if v := getenv("OTEL_SERVICE_NAME"); v != "" {
		res["service.name"] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otlpjson: %w", err)
	}
	c.Resource = res
	return New(c), nil
}

func checkURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: want an http or https URL", name)
	}
	return nil
}

// pairs parses the OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES format:
// comma-separated key=value, values percent-encoded.
func pairs(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	m := map[string]string{}
	for i, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): bad percent-encoding", i+1, k)
		}
		m[k] = dv
	}
	return m, nil
}
