package lambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
	"github.com/infinity-runtime/infinity/telemetry/otlpjson"
)

// tool answers with its arguments, or fails when named "fail".
type tool struct{ name string }

func (e tool) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: e.name, Description: "A test tool.", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (e tool) Invoke(_ context.Context, _ infinity.ToolEnv, c infinity.ToolCall) (*infinity.ToolResult, error) {
	if e.name == "fail" {
		return nil, errors.New("no luck")
	}
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: string(c.Args)}}}, nil
}

// collector is an OTLP/HTTP endpoint keeping the requests it was sent.
type collector struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []otlpjson.ExportRequest
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req otlpjson.ExportRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
			t.Errorf("the collector got a bad request to %s", r.URL.Path)
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, req)
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) spans() []otlpjson.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []otlpjson.Span
	for _, b := range c.bodies {
		for _, rs := range b.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}

// telemetryFixture is the agent handler on a runtime whose probe is
// lambda.Telemetry's, made from env, its EMF lines going to stdout and its
// handler wrapped as the bootstrap wraps it.
type telemetryFixture struct {
	tel     *lambda.Telemetry
	stdout  bytes.Buffer
	logs    bytes.Buffer
	conv    infinity.ConversationStore
	handler awslambda.Handler
}

func newTelemetryFixture(t *testing.T, env map[string]string) *telemetryFixture {
	t.Helper()
	f := &telemetryFixture{conv: memory.NewConversationStore()}
	logger := slog.New(slog.NewTextHandler(&f.logs, nil))
	var err error
	f.tel, err = lambda.TelemetryFromEnv(func(k string) string { return env[k] }, &f.stdout, logger)
	if err != nil {
		t.Fatal(err)
	}
	// Each thread's first slice: a model call asking for both tools, the
	// tools (one fails), a second model call, the commit.
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "echo", Args: []byte(`{"x":1}`)}, {Name: "fail", Args: []byte(`{}`)}}}},
		{When: scripted.Match{LastTool: "fail"}, Reply: scripted.Reply{Text: "Done: $THREAD."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var agent *lambda.Agent
	rt, err := actors.New(actors.Config{
		StepOnly:      true,
		Conversations: f.conv,
		State:         memory.NewStateStore(nil),
		Model:         model,
		Sender:        func(actors.Deliverer) infinity.InputSender { return &recorder{} },
		Agents:        []actors.Agent{{Name: "helper", Tools: []infinity.Tool{tool{"echo"}, tool{"fail"}}}},
		Observer:      func(ev actors.Event) { agent.Observe(ev) },
		Probe:         f.tel.Probe(),
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	agent, err = lambda.NewAgent(lambda.AgentOptions{Runtime: rt, Conversations: f.conv, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = awslambda.NewHandler(f.tel.Handler(agent.Handle))
	return f
}

func (f *telemetryFixture) invoke(t *testing.T, payload []byte) events.SQSEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	out, err := f.handler.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

// emfUnits are the units CloudWatch takes.
var emfUnits = strings.Split("Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second Terabits/Second Count/Second None", " ")

// emfLines decodes the EMF lines of out, checking each against the
// embedded metric format's specification: a JSON object on one line, an
// _aws member with a millisecond Timestamp and MetricDirectives whose
// dimension and metric references are root members of the right type
// (strings for dimensions; a number, or an array of at most 100 numbers,
// for metrics). It returns the lines and the metrics each declares.
func emfLines(t *testing.T, out string) (lines []map[string]any, declared []map[string]string) {
	t.Helper()
	for _, s := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("not a JSON object: %v: %s", err, s)
		}
		aws, ok := m["_aws"].(map[string]any)
		if !ok {
			t.Fatalf("no _aws: %s", s)
		}
		ts, ok := aws["Timestamp"].(float64)
		if !ok || ts != math.Trunc(ts) || math.Abs(float64(time.Now().UnixMilli())-ts) > 60_000 {
			t.Fatalf("Timestamp %v is not now in milliseconds", aws["Timestamp"])
		}
		dirs, ok := aws["CloudWatchMetrics"].([]any)
		if !ok || len(dirs) == 0 {
			t.Fatalf("CloudWatchMetrics %v", aws["CloudWatchMetrics"])
		}
		units := map[string]string{}
		for _, d := range dirs {
			dir := d.(map[string]any)
			if dir["Namespace"] != lambda.EMFNamespace {
				t.Errorf("Namespace %v", dir["Namespace"])
			}
			sets, ok := dir["Dimensions"].([]any)
			if !ok || len(sets) == 0 {
				t.Fatalf("Dimensions %v", dir["Dimensions"])
			}
			for _, set := range sets {
				keys := set.([]any)
				if len(keys) > 30 {
					t.Errorf("dimension set %v: more than 30 keys", keys)
				}
				for _, k := range keys {
					v, ok := m[k.(string)].(string)
					if !ok || strings.TrimSpace(v) == "" || len(v) > 1024 {
						t.Errorf("dimension %v is %v, not a root string member", k, m[k.(string)])
					}
				}
			}
			metrics, ok := dir["Metrics"].([]any)
			if !ok || len(metrics) == 0 || len(metrics) > 100 {
				t.Fatalf("Metrics %v", dir["Metrics"])
			}
			for _, x := range metrics {
				def := x.(map[string]any)
				name, _ := def["Name"].(string)
				unit, _ := def["Unit"].(string)
				if !slices.Contains(emfUnits, unit) {
					t.Errorf("metric %s: unit %q", name, unit)
				}
				switch v := m[name].(type) {
				case float64:
				case []any:
					if len(v) == 0 || len(v) > 100 {
						t.Errorf("metric %s: %d values", name, len(v))
					}
					for _, e := range v {
						if _, ok := e.(float64); !ok {
							t.Errorf("metric %s: value %v", name, e)
						}
					}
				default:
					t.Errorf("metric %s is %v, not a root number or array of numbers", name, m[name])
				}
				units[name] = unit
			}
		}
		lines = append(lines, m)
		declared = append(declared, units)
	}
	return lines, declared
}

func num(m map[string]any, k string) float64 { v, _ := m[k].(float64); return v }

func values(m map[string]any, k string) []float64 {
	var out []float64
	list, _ := m[k].([]any)
	for _, v := range list {
		out = append(out, v.(float64))
	}
	return out
}

// The real batch through the wrapped handler: an EMF line per slice (per
// thread) with the slice's figures, and each slice's spans at the
// collector by the time the handler has returned.
func TestTelemetryFromARealBatch(t *testing.T) {
	c := newCollector(t)
	f := newTelemetryFixture(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.URL, "AWS_LAMBDA_FUNCTION_NAME": "infinity-agent-fn", "AWS_REGION": "us-east-1",
	})
	if f.tel.EMF == nil || f.tel.Traces == nil {
		t.Fatalf("telemetry %+v: want both on", f.tel)
	}
	payload, err := os.ReadFile("testdata/sqs-fifo-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	if resp := f.invoke(t, payload); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	// Flushed before the handler returned: no waiting here.
	spans := c.spans()
	if f.tel.Traces.Pending() != 0 || len(spans) == 0 {
		t.Fatalf("%d spans at the collector, %d pending after the invocation", len(spans), f.tel.Traces.Pending())
	}
	roots := map[string]otlpjson.Span{}
	for _, s := range spans {
		if s.Name == "slice" {
			roots[s.SpanID] = s
		}
	}
	threads := map[string][]string{}
	for _, s := range spans {
		thread := ""
		for _, a := range s.Attributes {
			if a.Key == otlpjson.AttrThread {
				thread = *a.Value.StringValue
			}
		}
		if s.Name == "slice" {
			continue
		}
		root, ok := roots[s.ParentSpanID]
		if !ok || root.TraceID != s.TraceID {
			t.Errorf("span %s (%s) is not a child of a slice", s.Name, thread)
		}
		threads[thread] = append(threads[thread], s.Name)
	}
	for _, th := range []string{"thread-alpha", "thread-beta"} {
		kids := threads[th]
		slices.Sort(kids)
		if want := []string{"commit", "load", "model", "model", "tool echo", "tool fail"}; !slices.Equal(kids, want) {
			t.Errorf("%s's slice spans: %v, want %v", th, kids, want)
		}
	}
	if len(roots) != 2 {
		t.Errorf("%d slice spans, want 2", len(roots))
	}

	lines, declared := emfLines(t, f.stdout.String())
	if len(lines) != 2 {
		t.Fatalf("%d EMF lines, want one per slice (2):\n%s", len(lines), f.stdout.String())
	}
	seen := map[string]bool{}
	for i, l := range lines {
		th, _ := l["ThreadId"].(string)
		seen[th] = true
		want := []string{"SliceDuration", "Slices", "ModelCalls", "ModelErrors", "InputTokens", "OutputTokens",
			"ToolCalls", "ToolErrors", "LoadDuration", "ModelDuration", "CommitDuration"}
		for _, name := range want {
			if declared[i][name] == "" {
				t.Errorf("%s: %s not declared (declared %v)", th, name, declared[i])
			}
		}
		if l["Function"] != "infinity-agent-fn" || l["Outcome"] != actors.OutcomeCommitted || l["RequestId"] != "req-1" || l["Agent"] != "helper" {
			t.Errorf("%s: properties %v", th, l)
		}
		if num(l, "Slices") != 1 || num(l, "ModelCalls") != 2 || num(l, "ModelErrors") != 0 || num(l, "ToolCalls") != 2 || num(l, "ToolErrors") != 1 ||
			num(l, "InputTokens") < 0 || num(l, "OutputTokens") < 0 || num(l, "Items") != 7-float64(boolInt(th == "thread-beta")) {
			t.Errorf("%s: figures %v", th, l)
		}
		model, commit := values(l, "ModelDuration"), values(l, "CommitDuration")
		total := num(l, "SliceDuration")
		if len(model) != 2 || len(commit) != 1 || len(values(l, "LoadDuration")) != 1 || total <= 0 || model[0]+model[1]+commit[0] > total {
			t.Errorf("%s: durations: slice %v, model %v, commit %v", th, total, model, commit)
		}
		if declared[i]["SliceDuration"] != "Milliseconds" || declared[i]["Slices"] != "Count" {
			t.Errorf("%s: units %v", th, declared[i])
		}
	}
	if !seen["thread-alpha"] || !seen["thread-beta"] {
		t.Errorf("threads of the EMF lines: %v", seen)
	}

	// The same batch again (SQS delivers at least once): noop slices, with
	// no model call, so no ModelDuration, declared or present.
	f.stdout.Reset()
	f.invoke(t, payload)
	lines, declared = emfLines(t, f.stdout.String())
	if len(lines) != 2 {
		t.Fatalf("%d EMF lines on redelivery", len(lines))
	}
	for i, l := range lines {
		if l["Outcome"] != actors.OutcomeNoop || num(l, "ModelCalls") != 0 || l["ModelDuration"] != nil || declared[i]["ModelDuration"] != "" {
			t.Errorf("redelivery line %v", l)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Off, the telemetry costs nothing: no probe, the handler unwrapped.
func TestTelemetryOff(t *testing.T) {
	tel, err := lambda.TelemetryFromEnv(func(k string) string { return map[string]string{lambda.EnvEMF: "off"}[k] }, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tel.EMF != nil || tel.Traces != nil || tel.Probe() != nil {
		t.Fatalf("telemetry %+v, probe %v: want all off", tel, tel.Probe())
	}
	h := func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}
	if reflect.ValueOf(tel.Handler(h)).Pointer() != reflect.ValueOf(h).Pointer() {
		t.Fatal("the handler was wrapped without traces to flush")
	}
	// EMF alone: the probe is the EMF writer itself.
	tel, err = lambda.TelemetryFromEnv(func(string) string { return "" }, io.Discard, nil)
	if err != nil || tel.EMF == nil || tel.Traces != nil || tel.Probe() != actors.Probe(tel.EMF) {
		t.Fatalf("default telemetry %+v, %v: want EMF on, traces off", tel, err)
	}
	if _, err := lambda.TelemetryFromEnv(func(k string) string { return map[string]string{lambda.EnvEMF: "sometimes"}[k] }, io.Discard, nil); !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), lambda.EnvEMF) {
		t.Fatalf("a bad %s: %v", lambda.EnvEMF, err)
	}
	if _, err := lambda.TelemetryFromEnv(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}[k]
	}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "grpc") {
		t.Fatalf("a gRPC endpoint: %v", err)
	}
}

// A collector that does not answer holds the invocation no longer than
// the exporter's timeout; the batch succeeds and the log says why the
// spans are missing.
func TestTelemetryDeadCollector(t *testing.T) {
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer dead.Close()
	defer close(release)
	f := newTelemetryFixture(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": dead.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "300", lambda.EnvEMF: "off"})
	start := time.Now()
	resp := f.invoke(t, eventJSON(t, record("a1", "ta", "100", text("ta", "hello"))))
	if took := time.Since(start); len(resp.BatchItemFailures) != 0 || took > 5*time.Second {
		t.Fatalf("failures %v after %v", failures(resp), took)
	}
	if f.stdout.Len() != 0 {
		t.Fatalf("EMF lines while off: %s", f.stdout.String())
	}
	if logs := f.logs.String(); !strings.Contains(logs, "spans not sent") {
		t.Fatalf("log: %s", logs)
	}
	if f.tel.Traces.Pending() != 0 {
		t.Fatal("spans kept after a failed flush")
	}
}

// Steps the runtime reports outside a slice are not counted, and a probe
// driven directly writes exactly one line per slice.
func TestEMFDrivenDirectly(t *testing.T) {
	var out bytes.Buffer
	m := lambda.NewEMF(&out, "")
	_, end := m.Begin(t.Context(), actors.Step{Kind: actors.StepTool, Thread: "t1", Tool: "x"})
	end(actors.StepEnd{})
	ctx, endSlice := m.Begin(t.Context(), actors.Step{Kind: actors.StepSlice, Thread: "t1", Messages: 3})
	for range 120 {
		_, end := m.Begin(ctx, actors.Step{Kind: actors.StepModel, Thread: "t1", Agent: "a", Model: "p/m"})
		end(actors.StepEnd{Usage: infinity.Usage{Input: 10, Output: 2}, Err: errors.New("overloaded")})
	}
	_, late := m.Begin(ctx, actors.Step{Kind: actors.StepCommit, Thread: "t1"})
	endSlice(actors.StepEnd{Outcome: actors.OutcomeModelError, Err: errors.New(strings.Repeat("x", 2000))})
	late(actors.StepEnd{}) // after its slice: not counted, and no second line
	lines, declared := emfLines(t, out.String())
	if len(lines) != 1 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	l := lines[0]
	if l["Function"] != "infinity-agent" || l["Outcome"] != actors.OutcomeModelError || num(l, "ModelCalls") != 120 || num(l, "ModelErrors") != 120 ||
		num(l, "InputTokens") != 1200 || num(l, "OutputTokens") != 240 || len(values(l, "ModelDuration")) != 100 || num(l, "ToolCalls") != 0 ||
		l["Model"] != "p/m" || num(l, "Messages") != 3 || len(l["Error"].(string)) > 510 || declared[0]["CommitDuration"] != "" {
		t.Fatalf("line %v", l)
	}
}
