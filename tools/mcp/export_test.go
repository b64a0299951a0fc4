package mcp

import "time"

// SetNow sets the clock a Source reads (for RetryAfter).
func SetNow(s *Source, now func() time.Time) { s.now = now }

// Pid returns a local server's process id, or 0 when it is not running.
func Pid(s *Server) int { return s.pid() }

// WithBackoff sets a local server's restart backoff.
func WithBackoff(lo, hi time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = lo, hi }
}
