package infinity

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors shared by every implementation. Compare with errors.Is;
// implementations wrap them with context.
var (
	// ErrNotFound: the thread (or record) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the thread (or record) already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict: an optimistic-concurrency check failed (stale version or
	// history position).
	ErrConflict = errors.New("conflict")
	// ErrApplied: an input message was already applied by an earlier commit.
	ErrApplied = errors.New("input already applied")
	// ErrClosed: the thread is closed and accepts no more history.
	ErrClosed = errors.New("thread closed")
	// ErrRetryable marks a transient failure (throttling, 5xx, a broken
	// stream) that may succeed if tried again.
	ErrRetryable = errors.New("retryable")
	// ErrInvalid: a malformed argument or message.
	ErrInvalid = errors.New("invalid")
	// ErrNotImplemented: the feature is not there yet; the message says which.
	ErrNotImplemented = errors.New("not implemented")
	// ErrAwaitingUser: a step cannot go on until a person acts (say, a
	// tool server's authorization). It is not a failure: the runtime puts
	// the slice's input back without logging an error or backing off,
	// and the thread runs again when woken (Runtime.Wake) or, failing
	// that, after a few minutes.
	ErrAwaitingUser = errors.New("waiting for the user")
)

// ErrRateLimited marks a model call the provider refused for its rate
// limits (HTTP 429). It is also ErrRetryable. The runtime backs off the
// whole provider, for RateLimitedError.RetryAfter when the error says.
var ErrRateLimited = errors.New("rate limited")

// RateLimitedError is a provider's refusal for rate limits, with how long
// it asked callers to wait (its retry-after headers; zero when it did not
// say). It matches ErrRateLimited and ErrRetryable.
type RateLimitedError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RateLimitedError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter)
	}
	return e.Err.Error()
}

// Unwrap gives the provider's error and the sentinels.
func (e *RateLimitedError) Unwrap() []error { return []error{e.Err, ErrRateLimited, ErrRetryable} }

// RetryAfter reads how long a response asks callers to wait: the
// retry-after-ms header (milliseconds), else retry-after (seconds or an
// HTTP date, counted from now). It returns zero when neither says, or says
// something unreadable or over a day.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		d = time.Duration(ms * float64(time.Millisecond))
	} else if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			d = time.Duration(s * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	if d <= 0 || d > 24*time.Hour {
		return 0
	}
	return d
}
