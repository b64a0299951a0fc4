// Package backoff computes the waits of retry loops (exponential from a
// base, capped, with jitter) and sleeps them unless the context ends. The
// stores and the tool clients share it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry n (1 is the first retry):
// base·2^(n-1), capped at max, with "equal jitter": a random point in its
// upper half, so that many callers retrying at once spread out. A
// non-positive result of the doubling (overflow) is max.
func Delay(base, max time.Duration, n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := base << min(n-1, 30)
	if d <= 0 || d > max {
		d = max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or returns ctx.Err() if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
