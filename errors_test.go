package infinity_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(30 * time.Second).Format(http.TimeFormat)}, 30 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"Retry-After": "999999"}, 0},
		{nil, 0},
	} {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		if got := infinity.RetryAfter(h, now); got != c.want {
			t.Errorf("%v: %s, want %s", c.h, got, c.want)
		}
	}
	err := &infinity.RateLimitedError{RetryAfter: time.Second, Err: errors.New("HTTP 429")}
	if !errors.Is(err, infinity.ErrRateLimited) || !errors.Is(err, infinity.ErrRetryable) || err.Error() != "HTTP 429 (retry after 1s)" {
		t.Errorf("RateLimitedError: %v", err)
	}
}

// FuzzRetryAfter: any header value gives a wait from zero to a day.
func FuzzRetryAfter(f *testing.F) {
	f.Add("7", "")
	f.Add("", "250")
	f.Add("Sun, 06 Dec 2026 12:00:30 GMT", "")
	f.Fuzz(func(t *testing.T, after, afterMs string) {
		h := http.Header{}
		h.Set("Retry-After", after)
		h.Set("Retry-After-Ms", afterMs)
		if d := infinity.RetryAfter(h, time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)); d < 0 || d > 24*time.Hour {
			t.Fatalf("%q, %q: %s", after, afterMs, d)
		}
	})
}
