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
	// sends to one thread arrive in order. It returns ErrInvalid for a
	// message without an id or thread, and a wrapped transport error
	// otherwise.
	Send(ctx context.Context, msg InputMessage, at time.Time) error
}

// HTTPClient is what tools use to reach tool servers: plain HTTP locally,
// SigV4-signed requests in the cloud.
type HTTPClient interface {
	// Do sends req and returns the response, as http.Client.Do does.
	Do(req *http.Request) (*http.Response, error)
}

// Clock tells time and runs functions later; tests inject a fake one.
type Clock interface {
	// Now returns the current time.
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

// Inbox is the local runtime's durable inbox. A local sender records every
// message here before it delivers it, so that a message a caller saw
// accepted, or a timer a slice set, survives a crash. A message leaves the
// inbox when its thread marks it processed (StateStore.MarkProcessed of the
// same store), when it is dropped, or, in a store that keeps both (the file
// store), when a commit of its thread applies it (Commit.Applied, in the
// commit's own record). The cloud needs none: SQS holds its messages.
type Inbox interface {
	// Put records msg as due at at (zero: now) and returns once it is
	// durable. It reports false, recording nothing, when the thread already
	// processed msg.ID. A message without an id or thread is ErrInvalid.
	// Putting a waiting id again keeps the first.
	Put(ctx context.Context, msg InputMessage, at time.Time) (bool, error)
	// Drop removes waiting messages; absent ids are ignored.
	Drop(ctx context.Context, id ThreadID, msgs ...MessageID) error
	// Waiting returns every waiting message, in the order they were put.
	Waiting(ctx context.Context) ([]Queued, error)
}

// Queued is a message waiting in an Inbox.
type Queued struct {
	// Message is the message as it was put (ID and GroupID set).
	Message InputMessage `json:"message"`
	// At is when it is due; zero means now.
	At time.Time `json:"at,omitzero"`
}
