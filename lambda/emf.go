package lambda

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/infinity-runtime/infinity/actors"
)

// EMFNamespace is the CloudWatch namespace of the agent function's metrics.
const EMFNamespace = "Infinity"

// The metrics of an EMF line, their units, and the dimensions.
const (
	MetricSliceDuration  = "SliceDuration"  // Milliseconds, the slice's
	MetricSlices         = "Slices"         // Count, 1; also by Outcome
	MetricLoadDuration   = "LoadDuration"   // Milliseconds, each load
	MetricModelCalls     = "ModelCalls"     // Count
	MetricModelErrors    = "ModelErrors"    // Count
	MetricModelDuration  = "ModelDuration"  // Milliseconds, each call
	MetricInputTokens    = "InputTokens"    // Count
	MetricOutputTokens   = "OutputTokens"   // Count
	MetricToolCalls      = "ToolCalls"      // Count
	MetricToolErrors     = "ToolErrors"     // Count
	MetricCommitDuration = "CommitDuration" // Milliseconds, each commit

	DimFunction = "Function"
	DimOutcome  = "Outcome"
)

// maxEMFValues is the most values a metric's array may hold.
const maxEMFValues = 100

// EMF is an actors.Probe that writes one CloudWatch embedded-metric-format
// line per slice: the slice's duration and outcome with the figures of its
// steps (model calls, their durations and tokens, tool calls and errors,
// load and commit durations) folded in, and the thread's id, the request's
// id, the agent and the model as properties (not dimensions, which would
// make a metric per thread). One line per slice keeps the log volume at
// the batch's size (at most ten message groups a FIFO batch, so ten lines
// an invocation) whatever the slices do, and still says which thread each
// figure is about; a line per step would grow with every tool call.
//
// Metrics have the dimension Function (the function's name); Slices has
// Function and Outcome as well (committed, noop, dropped, model_error,
// failed). Durations are arrays with a value per step (a load or commit
// may be retried, a slice makes several model calls), at most 100.
type EMF struct {
	w        io.Writer
	function string
	now      func() time.Time

	mu sync.Mutex // one line at a time on w
}

// NewEMF writes to w (the function's stdout, which Lambda sends to its
// log group) with the dimension Function = function.
func NewEMF(w io.Writer, function string) *EMF {
	if strings.TrimSpace(function) == "" {
		function = "infinity-agent"
	}
	return &EMF{w: w, function: function, now: time.Now}
}

// sliceFigures collects a slice's steps.
type sliceFigures struct {
	mu    sync.Mutex
	start time.Time
	line  emfLine
	done  bool // the slice ended: later steps are not counted
}

type emfKey struct{}

// Begin implements actors.Probe.
func (m *EMF) Begin(ctx context.Context, s actors.Step) (context.Context, func(actors.StepEnd)) {
	start := m.now()
	if s.Kind == actors.StepSlice {
		f := &sliceFigures{start: start}
		f.line.Thread, f.line.Messages = string(s.Thread), s.Messages
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			f.line.RequestID = lc.AwsRequestID
		}
		return context.WithValue(ctx, emfKey{}, f), func(e actors.StepEnd) { m.write(f, e) }
	}
	f, _ := ctx.Value(emfKey{}).(*sliceFigures)
	if f == nil {
		return ctx, func(actors.StepEnd) {} // a step outside a slice
	}
	return ctx, func(e actors.StepEnd) {
		took := millis(m.now().Sub(start))
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.done {
			return
		}
		l := &f.line
		switch s.Kind {
		case actors.StepLoad:
			l.LoadDuration = appendValue(l.LoadDuration, took)
		case actors.StepModel:
			l.ModelCalls++
			l.ModelDuration = appendValue(l.ModelDuration, took)
			l.InputTokens += e.Usage.Input
			l.OutputTokens += e.Usage.Output
			if e.Err != nil {
				l.ModelErrors++
			}
			l.Agent, l.Model = s.Agent, s.Model
		case actors.StepTool:
			l.ToolCalls++
			if e.Err != nil {
				l.ToolErrors++
			}
		case actors.StepCommit:
			l.CommitDuration = appendValue(l.CommitDuration, took)
		}
	}
}

func appendValue(vs []float64, v float64) []float64 {
	if len(vs) >= maxEMFValues {
		return vs
	}
	return append(vs, v)
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// emfLine is one slice's EMF document: the _aws metadata, the dimensions,
// the metrics, then the properties.
type emfLine struct {
	AWS      emfMetadata `json:"_aws"`
	Function string      `json:"Function"`
	Outcome  string      `json:"Outcome"`

	SliceDuration  float64   `json:"SliceDuration"`
	Slices         int       `json:"Slices"`
	LoadDuration   []float64 `json:"LoadDuration,omitempty"`
	ModelCalls     int       `json:"ModelCalls"`
	ModelErrors    int       `json:"ModelErrors"`
	ModelDuration  []float64 `json:"ModelDuration,omitempty"`
	InputTokens    int       `json:"InputTokens"`
	OutputTokens   int       `json:"OutputTokens"`
	ToolCalls      int       `json:"ToolCalls"`
	ToolErrors     int       `json:"ToolErrors"`
	CommitDuration []float64 `json:"CommitDuration,omitempty"`

	Thread    string `json:"ThreadId"`
	RequestID string `json:"RequestId,omitempty"`
	Messages  int    `json:"Messages"`
	Items     int    `json:"Items"`
	Agent     string `json:"Agent,omitempty"`
	Model     string `json:"Model,omitempty"`
	Error     string `json:"Error,omitempty"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

const (
	unitMs    = "Milliseconds"
	unitCount = "Count"
)

// maxEMFError bounds the Error property.
const maxEMFError = 500

func (m *EMF) write(f *sliceFigures, e actors.StepEnd) {
	end := m.now()
	f.mu.Lock()
	l := f.line
	f.done = true
	f.mu.Unlock()
	l.Function, l.Outcome = m.function, e.Outcome
	if l.Outcome == "" {
		l.Outcome = actors.OutcomeFailed
	}
	l.SliceDuration, l.Slices, l.Items = millis(end.Sub(f.start)), 1, e.Items
	if e.Err != nil {
		l.Error = e.Err.Error()
		if len(l.Error) > maxEMFError {
			l.Error = strings.ToValidUTF8(l.Error[:maxEMFError], "") + "…"
		}
	}
	metrics := []emfMetric{{MetricSliceDuration, unitMs}, {MetricSlices, unitCount},
		{MetricModelCalls, unitCount}, {MetricModelErrors, unitCount}, {MetricInputTokens, unitCount},
		{MetricOutputTokens, unitCount}, {MetricToolCalls, unitCount}, {MetricToolErrors, unitCount}}
	// An array metric is declared only when it has values: a declared
	// metric must be a member of the document.
	for _, a := range []struct {
		name string
		vs   []float64
	}{{MetricLoadDuration, l.LoadDuration}, {MetricModelDuration, l.ModelDuration}, {MetricCommitDuration, l.CommitDuration}} {
		if len(a.vs) > 0 {
			metrics = append(metrics, emfMetric{a.name, unitMs})
		}
	}
	l.AWS = emfMetadata{Timestamp: end.UnixMilli(), CloudWatchMetrics: []emfDirective{
		{Namespace: EMFNamespace, Dimensions: [][]string{{DimFunction}}, Metrics: metrics},
		{Namespace: EMFNamespace, Dimensions: [][]string{{DimFunction, DimOutcome}}, Metrics: []emfMetric{{MetricSlices, unitCount}}},
	}}
	b, err := json.Marshal(l)
	if err != nil {
		return // nothing in the line can fail to encode
	}
	b = append(b, '\n')
	m.mu.Lock()
	m.w.Write(b)
	m.mu.Unlock()
}
