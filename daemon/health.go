package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthPath answers without the token, for process supervisors and load
// balancers: 200 {"status":"ok"} once the daemon is open and serving, 503
// {"status":"stopping"} from the moment it begins to close.
const healthPath = "/healthz"

// Health is GET /healthz.
type Health struct {
	Status string `json:"status"`
}

func (d *Daemon) getHealth(w http.ResponseWriter, _ *http.Request) {
	if !d.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "stopping"})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// countCallbacks counts the RAP callbacks by outcome: "accepted", or why
// they were refused.
func (d *Daemon) countCallbacks(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		d.metrics.RAPCallback(callbackOutcome(sw.status))
	})
}

func callbackOutcome(status int) string {
	switch {
	case status < 300:
		return "accepted"
	case status == http.StatusUnauthorized:
		return "bad_token"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusRequestEntityTooLarge:
		return "too_large"
	case status < 500:
		return "bad_request"
	}
	return "error"
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// listenMetrics opens the listener of Options.MetricsAddr, where Serve
// answers /metrics and /healthz without the token until Close.
func (d *Daemon) listenMetrics() error {
	if d.opts.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", d.opts.MetricsAddr)
	if err != nil {
		return fmt.Errorf("daemon: metrics listener on %s: %w", d.opts.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler())
	mux.HandleFunc("GET /healthz", d.getHealth)
	port := portOf(ln.Addr().String())
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No token here, so at least no DNS rebinding: a loopback Host
		// with this listener's port, unless remote access was allowed.
		if !d.opts.AllowRemote && !loopbackHostPort(r.Host, port) {
			writeError(w, apiErr(http.StatusForbidden, CodeBadHost, "Host %q is not this listener's loopback address", r.Host))
			return
		}
		mux.ServeHTTP(w, r)
	})
	d.metricsSrv = &http.Server{Handler: guarded, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	d.metricsLn = ln
	return nil
}

// MetricsAddr is the address of the separate metrics listener, or "".
func (d *Daemon) MetricsAddr() string {
	if d.metricsLn == nil {
		return ""
	}
	return d.metricsLn.Addr().String()
}

func (d *Daemon) serveMetrics() {
	if d.metricsSrv == nil {
		return
	}
	if err := d.metricsSrv.Serve(d.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		d.log.Error("metrics listener stopped", "addr", d.metricsLn.Addr().String(), "err", err)
	}
}

func (d *Daemon) closeMetrics(ctx context.Context) {
	if d.metricsSrv != nil {
		_ = d.metricsSrv.Shutdown(ctx)
	}
	if d.metricsLn != nil {
		d.metricsLn.Close() // when Serve never ran, Shutdown does not know it
	}
}
