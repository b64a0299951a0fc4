package infinity

import (
	"context"
	"net/http"
	"time"
)

// InputSender delivers input messages to threads.
type InputSender interface {
	// Send delivers msg to the thread msg.GroupID, not before at (a zero or
	// past at means now). msg.ID must be set. Delivery is at least once: a
	// repeat is harmless because the thread applies each id once. Immediate
	// sends to one thread arrive in order. It returns ErrInvalid for a message without an
	// id or thread, and a wrapped transport error otherwise.
	Send(ctx context.Context, msg InputMessage, at time.Time) error
}

// HTTPClient is what tools use to reach tool servers: plain HTTP locally,
// SigV4-signed requests in the cloud.
type HTTPClient interface {
	Do(req *http.Request) (*http.Response, error)
}

// Clock tells time and runs functions later; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine after d; stop cancels it and
	// reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc (a runtime timer, not a goroutine, until it
// fires).
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
