package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/infinity-runtime/infinity/telemetry/otlpjson"
)

// The Lambda bootstrap's exporter (package otlpjson, without the SDK) and
// the daemon's Tracer make the same spans of the same slice: names, kinds,
// parents, attributes, statuses and exception events.
func TestOTLPJSONExporterMatchesTracer(t *testing.T) {
	bodies := make(chan []byte, 1)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer collector.Close()
	rec := tracetest.NewSpanRecorder()
	exp := otlpjson.New(otlpjson.Config{URL: collector.URL + "/v1/traces"})

	ctx := context.Background()
	model, err := scripted.New(scripted.Script{Rules: []scripted.Rule{
		{When: scripted.Match{Last: "user"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			{Name: "echo", Args: []byte(`{"x":1}`)}, {Name: "fail", Args: []byte(`{}`)}}}},
		{When: scripted.Match{LastTool: "fail"}, Reply: scripted.Reply{Text: "Done."}},
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
		Agents:        []actors.Agent{{Name: "a", Tools: []infinity.Tool{echo{}, failing{}}}},
		Probe:         actors.Probes(telemetry.NewTracer(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))), exp),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: "t1", Root: "t1", Agent: "a", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Step(ctx, []infinity.InputMessage{{ID: "m1", GroupID: "t1", Content: infinity.TextContent("Go.")}}); err != nil {
		t.Fatal(err)
	}
	if err := exp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var req otlpjson.ExportRequest
	if err := json.Unmarshal(<-bodies, &req); err != nil {
		t.Fatal(err)
	}
	got := req.ResourceSpans[0].ScopeSpans[0].Spans
	want := rec.Ended()
	if len(got) != len(want) || len(want) < 6 {
		t.Fatalf("%d spans from otlpjson, %d from the Tracer", len(got), len(want))
	}
	// Both see the steps end in the same order.
	sdkIndex, jsonIndex := map[string]int{}, map[string]int{}
	for i := range want {
		sdkIndex[want[i].SpanContext().SpanID().String()] = i
		jsonIndex[got[i].SpanID] = i
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name() || g.Kind != int(w.SpanKind()) {
			t.Errorf("span %d: %q kind %d, the Tracer's %q kind %d", i, g.Name, g.Kind, w.Name(), w.SpanKind())
		}
		wp, gp := -1, -1
		if w.Parent().IsValid() {
			wp = sdkIndex[w.Parent().SpanID().String()]
		}
		if g.ParentSpanID != "" {
			gp = jsonIndex[g.ParentSpanID]
		}
		if wp != gp {
			t.Errorf("span %q: parent %d, the Tracer's %d", g.Name, gp, wp)
		}
		wa := map[string]string{}
		for _, a := range w.Attributes() {
			wa[string(a.Key)] = a.Value.Emit()
			if a.Value.Type() == attribute.INT64 {
				wa[string(a.Key)] = "int:" + a.Value.Emit()
			}
		}
		ga := map[string]string{}
		for _, a := range g.Attributes {
			if a.Value.StringValue != nil {
				ga[a.Key] = *a.Value.StringValue
			} else {
				ga[a.Key] = "int:" + a.Value.IntValue
			}
		}
		if len(wa) != len(ga) {
			t.Errorf("span %q: attributes %v, the Tracer's %v", g.Name, ga, wa)
		}
		for k, v := range wa {
			if ga[k] != v {
				t.Errorf("span %q: %s = %q, the Tracer's %q", g.Name, k, ga[k], v)
			}
		}
		// The API's codes.Error is OTLP's STATUS_CODE_ERROR (2) on the wire.
		wantStatus := otlpjson.Status{Message: w.Status().Description}
		if w.Status().Code == codes.Error {
			wantStatus.Code = otlpjson.StatusError
		}
		if (g.Status == nil && wantStatus != otlpjson.Status{}) || (g.Status != nil && *g.Status != wantStatus) {
			t.Errorf("span %q: status %+v, the Tracer's %+v", g.Name, g.Status, wantStatus)
		}
		if len(g.Events) != len(w.Events()) {
			t.Fatalf("span %q: events %+v, the Tracer's %+v", g.Name, g.Events, w.Events())
		}
		for j, we := range w.Events() {
			ge := g.Events[j]
			if ge.Name != we.Name || len(ge.Attributes) != len(we.Attributes) {
				t.Errorf("span %q: event %+v, the Tracer's %+v", g.Name, ge, we)
				continue
			}
			for k, a := range we.Attributes {
				if ge.Attributes[k].Key != string(a.Key) || *ge.Attributes[k].Value.StringValue != a.Value.Emit() {
					t.Errorf("span %q: event attribute %+v, the Tracer's %v", g.Name, ge.Attributes[k], a)
				}
			}
		}
	}
}

type failing struct{}

func (failing) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "fail", Description: "Fails.", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (failing) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return nil, errors.New("no luck")
}
