package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/infinity-runtime/infinity/daemon"
)

// collector is an OTLP/HTTP trace receiver: it keeps the spans' names and
// thread attributes.
type collector struct {
	mu      sync.Mutex
	spans   map[string]int    // by name
	threads map[string]string // span name → a thread id seen on it
	bad     []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		c.bad = append(c.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		http.Error(w, "not OTLP traces", http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		c.bad = append(c.bad, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans[s.Name]++
				for _, a := range s.Attributes {
					if a.Key == "infinity.thread" {
						c.threads[s.Name] = a.Value.GetStringValue()
					}
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{}) // an empty message always marshals
	w.Write(b)
}

// TestDaemonTracesAndJSONLogs runs the daemon command with
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP receiver and
// --log-format json: the demo's slices arrive as spans carrying their
// thread, and every log line is one JSON object with its time, level and
// message.
func TestDaemonTracesAndJSONLogs(t *testing.T) {
	col := &collector{spans: map[string]int{}, threads: map[string]string{}}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	home := t.TempDir()
	t.Setenv("INFINITY_HOME", home)

	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"daemon", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"}, &stdout, &stderr)
	}()
	c := waitDaemon(t, home, done)
	st, err := c.Start(t.Context(), daemon.StartRequest{Agent: "demo", Text: "Run the offline demo."})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "waiting for input", "ls")
	cancel() // stops the daemon, which flushes its spans
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, stderr.String())
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.bad) > 0 {
		t.Fatalf("the receiver got requests that are not OTLP traces: %v", col.bad)
	}
	for _, name := range []string{"slice", "load", "commit", "tool spawn_thread", "tool sleep", "model scripted/scripted"} {
		if col.spans[name] == 0 {
			t.Errorf("no %q span; got %v", name, col.spans)
		}
	}
	if col.threads["slice"] == "" || !strings.HasPrefix(col.threads["tool spawn_thread"], string(st.Thread)) {
		t.Errorf("spans without their thread: %v (root %s)", col.threads, st.Thread)
	}

	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	lines := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		if m["msg"] == nil || m["level"] == nil || m["time"] == nil {
			t.Errorf("a log line without msg, level or time: %q", sc.Text())
		}
		lines++
	}
	if lines == 0 {
		t.Error("the daemon logged nothing")
	}
}

// waitDaemon waits until the daemon in home answers, or the command
// running it ends.
func waitDaemon(t *testing.T, home string, done <-chan error) *daemon.Client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("the daemon ended: %v", err)
		default:
		}
		if c, _, err := daemon.Dial(home); err == nil {
			if _, err := c.Status(t.Context()); err == nil {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
