package mcp

import "time"

// SetNow sets the clock a Source reads (for RetryAfter).
func SetNow(s *Source, now func() time.Time) { s.now = now }
