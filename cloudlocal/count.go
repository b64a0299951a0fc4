package cloudlocal

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Counter counts AWS API calls (by operation: "sqs.SendMessage",
// "dynamodb.GetItem", "scheduler.CreateSchedule") and database statements
// and transactions. Use its Transport as Options.Transport and the Counter
// itself as Options.Tracer.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{counts: map[string]int{}} }

func (c *Counter) add(op string) {
	c.mu.Lock()
	c.counts[op]++
	c.mu.Unlock()
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	clear(c.counts)
	c.mu.Unlock()
}

// Transport wraps next and counts the calls through it. Every attempt is
// counted, SDK retries included: each is a billed request.
func (c *Counter) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		c.add(Operation(r))
		return next.RoundTrip(r)
	})
}

// Operation names an AWS request: the JSON protocols (SQS, DynamoDB) name
// it in X-Amz-Target, the REST ones (Scheduler) by method and path.
func Operation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		svc, op, _ := strings.Cut(t, ".")
		switch {
		case strings.HasPrefix(svc, "AmazonSQS"):
			svc = "sqs"
		case strings.HasPrefix(svc, "DynamoDB"):
			svc = "dynamodb"
		}
		return svc + "." + op
	}
	if strings.HasPrefix(r.URL.Path, "/schedules/") {
		switch r.Method {
		case http.MethodPost:
			return "scheduler.CreateSchedule"
		case http.MethodDelete:
			return "scheduler.DeleteSchedule"
		case http.MethodGet:
			return "scheduler.GetSchedule"
		}
	}
	return r.Method + " " + r.URL.Path
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TraceQueryStart counts a database statement, and a transaction at each
// BEGIN.
func (c *Counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	sql := strings.ToLower(strings.TrimSpace(d.SQL))
	switch {
	case strings.HasPrefix(sql, "begin"):
		c.add("db.transaction")
	case strings.HasPrefix(sql, "commit"), strings.HasPrefix(sql, "rollback"):
	default:
		c.add("db.statement")
	}
	return ctx
}

// TraceQueryEnd does nothing.
func (c *Counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart counts a pipelined batch as one round trip.
func (c *Counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	c.add("db.batch")
	return ctx
}

// TraceBatchQuery counts the statements of a batch.
func (c *Counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.add("db.statement")
}

// TraceBatchEnd does nothing.
func (c *Counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
