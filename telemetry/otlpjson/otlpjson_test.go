package otlpjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/persistence/memory"
	"github.com/infinity-runtime/infinity/telemetry/otlpjson"
)

// collector is an OTLP/HTTP endpoint that keeps what it is sent, decoded
// as generic JSON (so the field names are checked, not a Go struct's).
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

type request struct {
	path, contentType string
	header            http.Header
	body              map[string]any
}

func newCollector(t *testing.T, h http.HandlerFunc) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil {
			h(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("the collector got invalid JSON: %v: %s", err, b)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.requests = append(c.requests, request{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), header: r.Header.Clone(), body: body})
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) got() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]request(nil), c.requests...)
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// span is a decoded span, as a collector sees it.
type span struct {
	traceID, spanID, parent, name string
	kind                          float64
	start, end                    string
	attrs                         map[string]string
	status                        map[string]any
	events                        []any
}

// spans returns the spans of a request, checking the envelope.
func spans(t *testing.T, body map[string]any) (resource map[string]string, out []span) {
	t.Helper()
	rss := body["resourceSpans"].([]any)
	if len(rss) != 1 {
		t.Fatalf("resourceSpans: %v", rss)
	}
	rs := rss[0].(map[string]any)
	resource = attrs(t, rs["resource"].(map[string]any)["attributes"])
	sss := rs["scopeSpans"].([]any)
	if len(sss) != 1 {
		t.Fatalf("scopeSpans: %v", sss)
	}
	ss := sss[0].(map[string]any)
	if name := ss["scope"].(map[string]any)["name"]; name != "github.com/infinity-runtime/infinity" {
		t.Errorf("scope %v", name)
	}
	for _, x := range ss["spans"].([]any) {
		m := x.(map[string]any)
		s := span{traceID: str(m["traceId"]), spanID: str(m["spanId"]), parent: str(m["parentSpanId"]), name: str(m["name"]),
			start: str(m["startTimeUnixNano"]), end: str(m["endTimeUnixNano"]), attrs: attrs(t, m["attributes"])}
		s.kind, _ = m["kind"].(float64)
		s.status, _ = m["status"].(map[string]any)
		s.events, _ = m["events"].([]any)
		out = append(out, s)
	}
	return resource, out
}

func str(v any) string { s, _ := v.(string); return s }

// attrs decodes OTLP key-values; an intValue must be a decimal string.
func attrs(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, _ := v.([]any)
	for _, x := range list {
		kv := x.(map[string]any)
		val := kv["value"].(map[string]any)
		switch {
		case val["stringValue"] != nil:
			out[kv["key"].(string)] = val["stringValue"].(string)
		case val["intValue"] != nil:
			s, ok := val["intValue"].(string)
			if _, err := strconv.ParseInt(s, 10, 64); !ok || err != nil {
				t.Errorf("attribute %v: intValue %v is not an int64 as a decimal string", kv["key"], val["intValue"])
			}
			out[kv["key"].(string)] = "int:" + s
		default:
			t.Errorf("attribute %v: value %v", kv["key"], val)
		}
	}
	return out
}

var (
	hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// echo answers with its arguments; fail answers with an error.
type echo struct{ name string }

func (e echo) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: e.name, Description: "Echoes.", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (e echo) Invoke(_ context.Context, _ infinity.ToolEnv, c infinity.ToolCall) (*infinity.ToolResult, error) {
	if e.name == "fail" {
		return nil, errors.New("no luck")
	}
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: string(c.Args)}}}, nil
}

type discard struct{}

func (discard) Send(context.Context, infinity.InputMessage, time.Time) error { return nil }

// runSlice runs one real slice (a model call asking for echo, the tool, a
// second model call, the commit) with probe.
func runSlice(t *testing.T, probe actors.Probe, id infinity.ThreadID) {
	t.Helper()
	ctx := t.Context()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{{Name: "echo", Args: []byte(`{"x":1}`)}}}},
		{When: scripted.Match{LastTool: "echo"}, Reply: scripted.Reply{Text: "Echoed."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	conv := memory.NewConversationStore()
	rt, err := actors.New(actors.Config{
		Conversations: conv, State: memory.NewStateStore(nil), Model: model,
		Sender:   func(actors.Deliverer) infinity.InputSender { return discard{} },
		StepOnly: true, Agents: []actors.Agent{{Name: "a", Tools: []infinity.Tool{echo{"echo"}}}}, Probe: probe,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Agent: "a", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Step(ctx, []infinity.InputMessage{{ID: "m1", GroupID: id, Content: infinity.TextContent("Echo something.")}}); err != nil {
		t.Fatal(err)
	}
}

// A real slice's spans reach the collector in one OTLP/JSON request on
// Flush: one trace, a root "slice" span whose children are the load, both
// model calls, the tool call and the commit, each with the thread's id.
func TestSliceSpansAsOTLPJSON(t *testing.T) {
	c := newCollector(t, nil)
	exp, err := otlpjson.FromEnv(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.URL + "/",
		"OTEL_EXPORTER_OTLP_HEADERS":  "Authorization=Bearer%20abc, x-tenant = t1",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test,service.name=from-attrs",
	}), map[string]string{"service.name": "infinity-test", "cloud.provider": "aws"})
	if err != nil || exp == nil {
		t.Fatalf("FromEnv = %v, %v", exp, err)
	}
	runSlice(t, exp, "t1")
	if len(c.got()) != 0 {
		t.Fatal("spans were sent before Flush")
	}
	if n := exp.Pending(); n != 6 {
		t.Fatalf("%d spans pending, want 6", n)
	}
	if err := exp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.path != "/v1/traces" || r.contentType != "application/json" || r.header.Get("Authorization") != "Bearer abc" || r.header.Get("X-Tenant") != "t1" {
		t.Fatalf("request to %s, content type %q, headers %v", r.path, r.contentType, r.header)
	}
	resource, got := spans(t, r.body)
	if resource["service.name"] != "from-attrs" || resource["deployment.environment"] != "test" || resource["cloud.provider"] != "aws" {
		t.Errorf("resource %v", resource)
	}
	var root *span
	for i := range got {
		if got[i].name == "slice" {
			root = &got[i]
		}
	}
	if root == nil || root.parent != "" || !hex32.MatchString(root.traceID) || !hex16.MatchString(root.spanID) {
		t.Fatalf("root span %+v", root)
	}
	if root.attrs["infinity.outcome"] != "committed" || root.attrs["infinity.messages"] != "int:1" || root.attrs["infinity.items"] != "int:4" || root.kind != otlpjson.KindInternal {
		t.Errorf("slice span %+v", root)
	}
	var names []string
	for _, s := range got {
		if s.traceID != root.traceID || s.attrs["infinity.thread"] != "t1" || !hex16.MatchString(s.spanID) {
			t.Errorf("span %+v: not in the slice's trace, or no thread", s)
		}
		start, err1 := strconv.ParseInt(s.start, 10, 64)
		end, err2 := strconv.ParseInt(s.end, 10, 64)
		if err1 != nil || err2 != nil || end < start || time.Since(time.Unix(0, start)) > time.Minute {
			t.Errorf("span %s: start %q end %q", s.name, s.start, s.end)
		}
		if s.status != nil {
			t.Errorf("span %s has a status: %v", s.name, s.status)
		}
		if s.spanID == root.spanID {
			continue
		}
		if s.parent != root.spanID {
			t.Errorf("span %s: parent %s, want the slice %s", s.name, s.parent, root.spanID)
		}
		names = append(names, s.name)
		switch {
		case strings.HasPrefix(s.name, "model"):
			if s.kind != otlpjson.KindClient || s.attrs["infinity.agent"] != "a" || s.attrs["infinity.model"] != strings.TrimPrefix(strings.TrimPrefix(s.name, "model"), " ") ||
				s.attrs["infinity.tokens.input"] == "" || s.attrs["infinity.tokens.output"] == "" {
				t.Errorf("model span %+v", s)
			}
		case s.name == "tool echo":
			if s.attrs["infinity.tool"] != "echo" || s.attrs["infinity.tool_kind"] != actors.ToolSync || s.attrs["infinity.call"] == "" || s.kind != otlpjson.KindInternal {
				t.Errorf("tool span %+v", s)
			}
		}
	}
	slices.Sort(names)
	// The runtime's default model has no name: its spans are "model".
	if want := []string{"commit", "load", "model", "model", "tool echo"}; !slices.Equal(names, want) {
		t.Fatalf("the slice's children are %v, want %v", names, want)
	}
	// Everything was sent: a second Flush sends nothing.
	if err := exp.Flush(t.Context()); err != nil || len(c.got()) != 1 {
		t.Fatalf("second flush: %v, %d requests", err, len(c.got()))
	}
}

// A failed step's span has an error status and an exception event, as the
// SDK's RecordError and SetStatus make them.
func TestFailedStepSpan(t *testing.T) {
	c := newCollector(t, nil)
	exp := otlpjson.New(otlpjson.Config{URL: c.URL + "/v1/traces"})
	ctx, end := exp.Begin(t.Context(), actors.Step{Kind: actors.StepSlice, Thread: "t9", Messages: 2})
	_, endTool := exp.Begin(ctx, actors.Step{Kind: actors.StepTool, Thread: "t9", Tool: "fail", ToolKind: actors.ToolSync, Call: "c1"})
	endTool(actors.StepEnd{Err: errors.New("no luck")})
	end(actors.StepEnd{Outcome: actors.OutcomeFailed, Err: errors.New("store unreachable")})
	if err := exp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, got := spans(t, c.got()[0].body)
	if len(got) != 2 || got[0].name != "tool fail" || got[1].name != "slice" || got[0].parent != got[1].spanID {
		t.Fatalf("spans %+v", got)
	}
	for _, s := range got {
		if s.status["code"] != float64(otlpjson.StatusError) || s.status["message"] == "" || len(s.events) != 1 {
			t.Fatalf("span %s: status %v, events %v", s.name, s.status, s.events)
		}
		ev := s.events[0].(map[string]any)
		a := attrs(t, ev["attributes"])
		if ev["name"] != "exception" || a["exception.message"] != s.status["message"] || a["exception.type"] != "*errors.errorString" {
			t.Fatalf("event %v", ev)
		}
	}
}

// A dead collector cannot hold the caller past the timeout; the spans are
// given up, not kept for ever.
func TestFlushGivesUpOnADeadCollector(t *testing.T) {
	release := make(chan struct{})
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	exp, err := otlpjson.FromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.URL + "/custom", "OTEL_EXPORTER_OTLP_TIMEOUT": "5000", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "200"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, end := exp.Begin(t.Context(), actors.Step{Kind: actors.StepSlice, Thread: "t1"})
	end(actors.StepEnd{Outcome: actors.OutcomeNoop})
	start := time.Now()
	err = exp.Flush(t.Context())
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("Flush = %v after %v, want an error within the 200 ms timeout", err, took)
	}
	if exp.Pending() != 0 {
		t.Fatal("spans kept after a failed flush")
	}
}

// A connection the collector closed (as across a Lambda freeze) is retried
// once; a collector's refusal is not retried.
func TestFlushRetriesAClosedConnectionOnce(t *testing.T) {
	var calls, answer atomic.Int32
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.WriteHeader(int(answer.Load()))
		w.Write([]byte(`{"message":"bad"}`))
	})
	exp := otlpjson.New(otlpjson.Config{URL: c.URL + "/v1/traces", Timeout: 5 * time.Second})
	one := func() {
		_, end := exp.Begin(t.Context(), actors.Step{Kind: actors.StepSlice, Thread: "t1"})
		end(actors.StepEnd{Outcome: actors.OutcomeNoop})
	}
	answer.Store(http.StatusOK)
	one()
	if err := exp.Flush(t.Context()); err != nil || calls.Load() != 2 {
		t.Fatalf("Flush = %v after %d calls, want success on the second", err, calls.Load())
	}
	answer.Store(http.StatusBadRequest)
	one()
	if err := exp.Flush(t.Context()); err == nil || !strings.Contains(err.Error(), "400") || calls.Load() != 3 {
		t.Fatalf("Flush = %v after %d calls, want the 400, not retried", err, calls.Load())
	}
}

// Spans beyond MaxSpans are dropped and counted, never buffered without
// bound.
func TestMaxSpans(t *testing.T) {
	c := newCollector(t, nil)
	exp := otlpjson.New(otlpjson.Config{URL: c.URL + "/v1/traces", MaxSpans: 3})
	for range 5 {
		_, end := exp.Begin(t.Context(), actors.Step{Kind: actors.StepSlice, Thread: "t1"})
		end(actors.StepEnd{Outcome: actors.OutcomeNoop})
	}
	err := exp.Flush(t.Context())
	if err == nil || !strings.Contains(err.Error(), "2 spans dropped") {
		t.Fatalf("Flush = %v", err)
	}
	if _, got := spans(t, c.got()[0].body); len(got) != 3 {
		t.Fatalf("%d spans sent, want 3", len(got))
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		off  bool
		err  string // in the error; "" for none
	}{
		{name: "nothing set", env: map[string]string{}, off: true},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, off: true},
		{name: "base endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "not a URL", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
		{name: "http/protobuf", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
		{name: "bad timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "2s"}, err: "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{name: "bad headers", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=s3cret%zz"}, err: "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{name: "header without value", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "s3cret"}, err: "OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := otlpjson.FromEnv(env(tc.env), nil)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err = %v, want one naming %s (and no secret)", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.off != (exp == nil):
				t.Fatalf("exporter %v, want off = %v", exp, tc.off)
			}
		})
	}
}
