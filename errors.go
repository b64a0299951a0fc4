package infinity

import "errors"

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
)
