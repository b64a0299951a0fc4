package daemon_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// scrape reads /metrics at url (with the token when tok is set) into
// families.
func scrape(t *testing.T, url, tok string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not in the text format: %v", err)
	}
	return fams
}

// value is the value of the series of name whose labels include want
// (a counter, a gauge, or a histogram's count), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAfterWorkload runs the demo's tree through the daemon, then
// checks /metrics against what the histories hold: slices, model calls and
// their tokens, tool calls by kind, timers, threads, commits, callbacks.
func TestMetricsAfterWorkload(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemonWith(t, daemon.Options{Home: home, MetricsAddr: "127.0.0.1:0"})
	ctx := t.Context()
	tok, err := daemon.ReadToken(home)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "demo", Text: "Run the offline demo."})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)

	// What the histories say happened.
	tr, err := c.Tree(ctx, st.Thread)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}  // model calls by model
	tokens := map[string]int{} // input tokens by model
	tools := map[string]int{}  // tool calls by name
	var all []daemon.ThreadView
	var walk func(daemon.Tree)
	walk = func(n daemon.Tree) {
		all = append(all, n.ThreadView)
		for _, k := range n.Threads {
			walk(k)
		}
	}
	walk(tr)
	for _, th := range all {
		err := c.Items(ctx, th.ID, 0, false, func(l daemon.ItemLine) error {
			if it := l.Item; it != nil {
				if it.Usage != nil {
					calls[it.Model]++
					tokens[it.Model] += it.Usage.Input
				}
				// Events put into the history as calls were never called.
				if it.Kind == infinity.KindToolCall && it.Call.Name != "receive_event__injected" {
					tools[it.Call.Name]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) == 0 || tools["spawn_thread"] != 3 {
		t.Fatalf("the demo's histories: model calls %v, tool calls %v", calls, tools)
	}

	// A callback with a bad token is counted as refused.
	forged := `{"type":"tool_result","group_id":"t1","id":"c1","text":"done"}`
	if code, _ := raw(t, d, http.MethodPost, "/rap/callback/forged?call=c1", forged, nil); code != http.StatusUnauthorized {
		t.Fatalf("a forged callback: %d", code)
	}

	// /metrics needs the token on the API's address.
	if code, body := raw(t, d, http.MethodGet, "/metrics", "", nil); code != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) {
		t.Fatalf("/metrics without the token: %d %s", code, body)
	}
	fams := scrape(t, "http://"+d.Addr()+"/metrics", tok)
	want := func(name string, labels map[string]string, ok func(float64) bool, what string) {
		t.Helper()
		v, found := value(fams, name, labels)
		if !found || !ok(v) {
			t.Errorf("%s%v = %v (found %v), want %s", name, labels, v, found, what)
		}
	}
	eq := func(n int) func(float64) bool { return func(v float64) bool { return v == float64(n) } }
	atLeast := func(n int) func(float64) bool { return func(v float64) bool { return v >= float64(n) } }
	for m, n := range calls {
		want("infinity_model_calls_total", map[string]string{"model": m, "outcome": "ok"}, eq(n), "the histories' responses")
		want("infinity_model_tokens_total", map[string]string{"model": m, "direction": "input"}, eq(tokens[m]), "the histories' input tokens")
		want("infinity_model_call_duration_seconds", map[string]string{"model": m}, eq(n), "one duration per call")
	}
	for name, n := range tools {
		want("infinity_tool_calls_total", map[string]string{"kind": "builtin", "tool": name, "outcome": "ok"}, eq(n), "the histories' calls")
	}
	want("infinity_slices_total", map[string]string{"outcome": "committed"}, atLeast(len(all)), "a slice per thread at least")
	want("infinity_slice_duration_seconds", map[string]string{"outcome": "committed"}, atLeast(len(all)), "a duration per slice")
	want("infinity_commits_total", map[string]string{"outcome": "ok"}, atLeast(len(all)), "a commit per slice")
	want("infinity_load_duration_seconds", nil, atLeast(len(all)), "a load per slice")
	want("infinity_timer_lateness_seconds", nil, atLeast(tools["sleep"]), "a wake-up per sleep")
	want("infinity_threads_stored", nil, eq(len(all)), "the tree's threads")
	active, _ := value(fams, "infinity_threads_active", nil)
	want("infinity_threads_passivated", nil, eq(len(all)-int(active)), "the stored threads that are not active")
	want("infinity_inbox_messages", nil, eq(0), "nothing waiting once the tree is done")
	want("infinity_timers_pending", nil, eq(0), "no timer left")
	want("infinity_store_fsyncs_total", nil, atLeast(1), "fsyncs")
	want("infinity_store_batches_total", nil, atLeast(1), "batches")
	want("infinity_rap_callbacks_total", map[string]string{"outcome": "bad_token"}, eq(1), "the forged callback")
	want("infinity_model_calls_in_flight", nil, eq(0), "no model call once the tree is done")
	want("infinity_model_calls_waiting", nil, eq(0), "no slice waiting for one")
	want("infinity_host_queued_runs", nil, eq(0), "no actor run waiting for a worker")
	want("infinity_host_detached_slices", nil, eq(0), "no slice detached")
	want("go_goroutines", nil, atLeast(1), "the Go collector")

	// The separate listener serves the same without the token.
	fams = scrape(t, "http://"+d.MetricsAddr()+"/metrics", "")
	if _, ok := value(fams, "infinity_slices_total", map[string]string{"outcome": "committed"}); !ok {
		t.Error("the metrics listener has no infinity_slices_total")
	}
	// It has no token, so it takes only its own loopback Host (no DNS
	// rebinding), and only a loopback address unless remote is allowed.
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.MetricsAddr()+"/metrics", nil)
	req.Host = "attacker.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the metrics listener with a foreign Host: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	_, err = daemon.Open(ctx, daemon.Options{Home: t.TempDir(), Addr: "127.0.0.1:0", MetricsAddr: "0.0.0.0:0"})
	if !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("a non-loopback metrics address: %v, want ErrInvalid", err)
	}
}

// TestHealth: /healthz answers without the token and whatever the Host.
func TestHealth(t *testing.T) {
	d, _ := startDaemon(t, t.TempDir())
	code, body := raw(t, d, http.MethodGet, "/healthz", "", map[string]string{"Host": "example.com"})
	if code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	// Nothing else is open without the token.
	if code, _ := raw(t, d, http.MethodGet, "/v1/status", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("/v1/status without the token: %d", code)
	}
}

const slowAgent = `name: slow
model:
  provider: scripted
  script: slow.json
`

const slowScript = `{"model":"m1","rules":[{"when":{},"reply":{"text":"late","delay":"2500ms"}}]}`

// Threads whose model takes its time wait for it without a worker: while
// their calls are in flight, /metrics counts them as detached slices and
// model calls in flight, and ls shows each thread running; then each is
// answered.
func TestSlowModelThroughTheDaemon(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemonWith(t, daemon.Options{Home: home})
	tok, err := daemon.ReadToken(home)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "slow.yaml", AgentSource: daemon.AgentSource{YAML: slowAgent, Script: slowScript}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []infinity.ThreadID
	for range 5 {
		st, err := c.Start(t.Context(), daemon.StartRequest{Agent: info.Key, Text: "take your time"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.Thread)
	}
	var detached, inFlight float64
	for deadline := time.Now().Add(20 * time.Second); detached < 5 || inFlight < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("detached slices %v, model calls in flight %v: want the five calls waiting at once", detached, inFlight)
		}
		fams := scrape(t, "http://"+d.Addr()+"/metrics", tok)
		detached, _ = value(fams, "infinity_host_detached_slices", nil)
		inFlight, _ = value(fams, "infinity_model_calls_in_flight", nil)
		time.Sleep(20 * time.Millisecond)
	}
	if st, err := c.Status(t.Context()); err != nil || st.Host.Detached < 5 || st.ModelCalls.InFlight < 5 {
		t.Errorf("daemon status while the models think: host %+v, model calls %+v, %v", st.Host, st.ModelCalls, err)
	}
	for _, id := range ids {
		if v, err := c.Thread(t.Context(), id); err != nil || v.Status != daemon.StatusRunning || !strings.HasPrefix(v.Detail, "calling its model (for ") {
			t.Errorf("%s while its model thinks: %+v, %v; want running, calling its model", id, v, err)
		}
	}
	for _, id := range ids {
		waitStatus(t, c, id, daemon.StatusWaiting, daemon.WaitingForInput)
	}
	fams := scrape(t, "http://"+d.Addr()+"/metrics", tok)
	if n, _ := value(fams, "infinity_host_detached_slices", nil); n != 0 {
		t.Errorf("detached slices after the answers: %v", n)
	}
}
