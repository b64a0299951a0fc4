package telemetry

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// Gauges read the runtime's state when /metrics is scraped (never on the
// engine's hot path). A nil function leaves its series out.
type Gauges struct {
	// Active is the number of threads with a live actor.
	Active func() int
	// Stored is the number of threads stored and Waiting the number of
	// messages in the inbox (waiting for their time or their slice).
	Stored func() (threads, waiting int, err error)
	// Timers is the number of messages the sender holds for a later time.
	Timers func() int
	// Store is the store's commit pipeline: batches written and fsyncs.
	Store func() (batches, fsyncs uint64)
	// ModelCalls are the model streams in flight and the slices waiting
	// for a place among them (actors.Runtime.ModelCalls).
	ModelCalls func() actors.ModelCalls
	// Host is how busy the actor host is (actors.Runtime.HostStats).
	Host func() actors.HostStats
}

// CostFunc prices a model call's usage for the agent's model ("provider/
// model"); ok is false when the model has no price.
type CostFunc func(agent, model string, u infinity.Usage) (usd float64, ok bool)

// Metrics is a Prometheus registry of the runtime's series, fed by its
// Probe (slices, model and tool calls, commits), by ObserveTimer (timer
// lateness), by RAPCallback, and by the Gauges at scrape time.
type Metrics struct {
	reg *prometheus.Registry
	// Cost, when set, adds each priced model call's cost to
	// infinity_model_cost_usd_total.
	cost CostFunc

	slices        *prometheus.CounterVec
	sliceSeconds  *prometheus.HistogramVec
	sliceItems    prometheus.Counter
	loadSeconds   prometheus.Histogram
	commitSeconds prometheus.Histogram
	commits       *prometheus.CounterVec
	modelCalls    *prometheus.CounterVec
	modelSeconds  *prometheus.HistogramVec
	modelTokens   *prometheus.CounterVec
	modelCost     *prometheus.CounterVec
	toolCalls     *prometheus.CounterVec
	toolSeconds   *prometheus.HistogramVec
	timerLateness prometheus.Histogram
	rapCallbacks  *prometheus.CounterVec
	budget        *prometheus.CounterVec
}

// Outcomes of model and tool calls and commits, in their "outcome" label.
const (
	OK    = "ok"
	Error = "error"
)

// NewMetrics makes the registry: the runtime's series, the gauges g reads
// at scrape time, and the Go and process collectors. cost may be nil.
func NewMetrics(g Gauges, cost CostFunc) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), cost: cost}
	fast := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	slow := []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m.slices = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_slices_total",
		Help: "Slices run, by outcome: committed, noop, dropped, model_error, failed."}, []string{"outcome"})
	m.sliceSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "infinity_slice_duration_seconds",
		Help: "How long a slice took, from taking its messages to its acknowledgement.", Buckets: slow}, []string{"outcome"})
	m.sliceItems = prometheus.NewCounter(prometheus.CounterOpts{Name: "infinity_items_committed_total",
		Help: "History items committed by slices."})
	m.loadSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infinity_load_duration_seconds",
		Help: "How long loading a thread's history took, per slice.", Buckets: fast})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infinity_commit_duration_seconds",
		Help: "How long a slice's commit took, until durable.", Buckets: fast})
	m.commits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_commits_total",
		Help: "Slice commits, by outcome: ok, error, or a race the slice re-runs after (conflict, applied)."}, []string{"outcome"})
	m.modelCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_model_calls_total",
		Help: "Model streams, by model and outcome (ok, error)."}, []string{"model", "outcome"})
	m.modelSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "infinity_model_call_duration_seconds",
		Help: "How long a model stream took.", Buckets: slow}, []string{"model"})
	m.modelTokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_model_tokens_total",
		Help: "Tokens used by model calls, by model and direction (input, output)."}, []string{"model", "direction"})
	m.modelCost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_model_cost_usd_total",
		Help: "The cost of model calls in USD, by model (models with a price only)."}, []string{"model"})
	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_tool_calls_total",
		Help: "Tool calls, by kind (builtin, sync, async: an async call counts when started), tool and outcome (ok, error)."},
		[]string{"kind", "tool", "outcome"})
	m.toolSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "infinity_tool_call_duration_seconds",
		Help: "How long a tool call took inside its slice (an async call: its start).", Buckets: fast}, []string{"kind"})
	m.timerLateness = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infinity_timer_lateness_seconds",
		Help:    "How late a timer (a sleep's wake-up, a delayed message) was taken for delivery after its time.",
		Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .02, .05, .1, .5, 1}})
	m.rapCallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_rap_callbacks_total",
		Help: "Callbacks from RAP tool servers, by outcome (accepted, or the reason for refusing)."}, []string{"outcome"})
	m.budget = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infinity_budget_notices_total",
		Help: "Budget notices added to histories: budget_warning (a tree used 80 % of a cap), budget_spent (a thread stopped), budget_raised."}, []string{"notice"})
	m.reg.MustRegister(m.budget)
	m.reg.MustRegister(m.slices, m.sliceSeconds, m.sliceItems, m.loadSeconds, m.commitSeconds, m.commits,
		m.modelCalls, m.modelSeconds, m.modelTokens, m.modelCost, m.toolCalls, m.toolSeconds, m.timerLateness, m.rapCallbacks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(gaugeCollector{g: g})
	return m
}

// gaugeCollector reads the Gauges once per scrape each (the stored counts
// and the store's counters are one call for their series).
type gaugeCollector struct{ g Gauges }

var (
	activeDesc     = prometheus.NewDesc("infinity_threads_active", "Threads with a live actor (running a slice or recently).", nil, nil)
	storedDesc     = prometheus.NewDesc("infinity_threads_stored", "Threads stored (open and closed).", nil, nil)
	passivatedDesc = prometheus.NewDesc("infinity_threads_passivated", "Stored threads with no live actor (waiting, asleep or closed): they cost only their stored rows.", nil, nil)
	inboxDesc      = prometheus.NewDesc("infinity_inbox_messages", "Messages in the inbox: waiting for their time or their slice.", nil, nil)
	timersDesc     = prometheus.NewDesc("infinity_timers_pending", "Messages held for a later time (sleeps, delayed messages, retries).", nil, nil)
	batchesDesc    = prometheus.NewDesc("infinity_store_batches_total", "Batches written by the store (slices, sends, acknowledgements).", nil, nil)
	fsyncsDesc     = prometheus.NewDesc("infinity_store_fsyncs_total", "fsyncs of the store's log (batches share them: group commit).", nil, nil)
	inFlightDesc   = prometheus.NewDesc("infinity_model_calls_in_flight", "Model streams open now (at most the runtime's MaxModelCalls).", nil, nil)
	modelWaitDesc  = prometheus.NewDesc("infinity_model_calls_waiting", "Slices waiting for a place among the model streams in flight.", nil, nil)
	queuedDesc     = prometheus.NewDesc("infinity_host_queued_runs", "Actor runs waiting for one of the host's workers.", nil, nil)
	workingDesc    = prometheus.NewDesc("infinity_host_workers", "The host's workers at work (at most MaxConcurrentSlices).", nil, nil)
	detachedDesc   = prometheus.NewDesc("infinity_host_detached_slices", "Slices waiting for their model without holding a worker.", nil, nil)
)

func (c gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{activeDesc, storedDesc, passivatedDesc, inboxDesc, timersDesc, batchesDesc, fsyncsDesc,
		inFlightDesc, modelWaitDesc, queuedDesc, workingDesc, detachedDesc} {
		ch <- d
	}
}

func (c gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	active := 0
	if c.g.Active != nil {
		active = c.g.Active()
		gauge(activeDesc, active)
	}
	if c.g.Stored != nil {
		if threads, waiting, err := c.g.Stored(); err != nil {
			ch <- prometheus.NewInvalidMetric(storedDesc, err)
		} else {
			gauge(storedDesc, threads)
			gauge(passivatedDesc, max(threads-active, 0))
			gauge(inboxDesc, waiting)
		}
	}
	if c.g.Timers != nil {
		gauge(timersDesc, c.g.Timers())
	}
	if c.g.Store != nil {
		batches, fsyncs := c.g.Store()
		ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.CounterValue, float64(batches))
		ch <- prometheus.MustNewConstMetric(fsyncsDesc, prometheus.CounterValue, float64(fsyncs))
	}
	if c.g.ModelCalls != nil {
		mc := c.g.ModelCalls()
		gauge(inFlightDesc, mc.InFlight)
		gauge(modelWaitDesc, mc.Waiting)
	}
	if c.g.Host != nil {
		hs := c.g.Host()
		gauge(queuedDesc, hs.Queued)
		gauge(workingDesc, hs.Working)
		gauge(detachedDesc, hs.Detached)
	}
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	// A series that cannot be read (the store closing) leaves it out
	// instead of failing the whole scrape.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry, for tests and to add series.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveTimer records how late a timer was taken for delivery.
func (m *Metrics) ObserveTimer(late time.Duration) {
	m.timerLateness.Observe(max(late, 0).Seconds())
}

// BudgetNotice counts a budget notice (infinity.Notice*) added to a
// history.
func (m *Metrics) BudgetNotice(notice string) {
	m.budget.WithLabelValues(notice).Inc()
}

// RAPCallback counts a tool server's callback by outcome.
func (m *Metrics) RAPCallback(outcome string) {
	m.rapCallbacks.WithLabelValues(outcome).Inc()
}

// Probe feeds the step series: pass it as actors.Config.Probe (joined with
// a tracing probe by actors.Probes).
func (m *Metrics) Probe() actors.Probe { return actors.TimedProbe(m.end) }

// commitOutcome tells a commit's normal races (another run committed
// first, or this batch was committed before) from its failures.
func commitOutcome(err error) string {
	switch {
	case errors.Is(err, infinity.ErrConflict):
		return "conflict"
	case errors.Is(err, infinity.ErrApplied):
		return "applied"
	}
	return outcome(err)
}

func outcome(err error) string {
	if err != nil {
		return Error
	}
	return OK
}

func (m *Metrics) end(s actors.Step, e actors.StepEnd, took time.Duration) {
	sec := took.Seconds()
	switch s.Kind {
	case actors.StepSlice:
		m.slices.WithLabelValues(e.Outcome).Inc()
		m.sliceSeconds.WithLabelValues(e.Outcome).Observe(sec)
		m.sliceItems.Add(float64(e.Items))
	case actors.StepLoad:
		m.loadSeconds.Observe(sec)
	case actors.StepCommit:
		m.commits.WithLabelValues(commitOutcome(e.Err)).Inc()
		if e.Err == nil {
			m.commitSeconds.Observe(sec)
		}
	case actors.StepModel:
		m.modelCalls.WithLabelValues(s.Model, outcome(e.Err)).Inc()
		m.modelSeconds.WithLabelValues(s.Model).Observe(sec)
		if e.Err != nil {
			return
		}
		m.modelTokens.WithLabelValues(s.Model, "input").Add(float64(e.Usage.Input))
		m.modelTokens.WithLabelValues(s.Model, "output").Add(float64(e.Usage.Output))
		if m.cost != nil {
			if usd, ok := m.cost(s.Agent, s.Model, e.Usage); ok {
				m.modelCost.WithLabelValues(s.Model).Add(usd)
			}
		}
	case actors.StepTool:
		m.toolCalls.WithLabelValues(s.ToolKind, s.Tool, outcome(e.Err)).Inc()
		m.toolSeconds.WithLabelValues(s.ToolKind).Observe(sec)
	}
}
