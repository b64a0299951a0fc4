package infinity

import (
	"errors"
	"fmt"
	"math"
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

// RetryAfter reads how long a response asks callers to wait
// (ParseRetryAfter), counted from now. It returns zero when the response
// does not say, or says a wait of none or over a day.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	d, ok := ParseRetryAfter(h, now)
	if !ok || d <= 0 || d > 24*time.Hour {
		return 0
	}
	return d
}

// ParseRetryAfter reads the wait a response asks for: the
// retry-after-ms header (milliseconds), else retry-after (seconds, or an
// HTTP date counted from now; a date in the past is no wait). A header
// that is negative or unreadable is skipped; ok says one was read. A wait
// too long for a Duration is the longest one.
func ParseRetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	for _, hd := range []struct {
		name string
		unit time.Duration
	}{{"Retry-After-Ms", time.Millisecond}, {"Retry-After", time.Second}} {
		v := h.Get(hd.name)
		if v == "" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0:
			if w := f * float64(hd.unit); w < math.MaxInt64 {
				return time.Duration(w), true
			}
			return math.MaxInt64, true
		case errors.Is(err, strconv.ErrRange) && math.IsInf(f, 1):
			return math.MaxInt64, true
		case err != nil && hd.unit == time.Second:
			if t, perr := http.ParseTime(v); perr == nil {
				return max(t.Sub(now), 0), true
			}
		}
	}
	return 0, false
}
