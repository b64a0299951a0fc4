package dynamodb

import "time"

// WithRetry bounds the store's own retries, so tests of exhausted retries
// run fast.
func WithRetry(attempts int, base time.Duration) Option {
	return func(s *StateStore) { s.retry = backoff{attempts: attempts, base: base, max: base} }
}

// ItemSize is the store's estimate of an item's size against the 400 KB
// limit.
var ItemSize = itemSize
