package httpapi

import "testing"

func TestServerDelay(t *testing.T) {
	for _, c := range []struct {
		ms, s     string
		d         int64 // milliseconds
		found, tl bool
	}{
		{"", "", 0, false, false},
		{"250", "9", 250, true, false},
		{"x", "2", 2000, true, false},
		{"-1", "", 0, false, false},
		{"", "0.5", 500, true, false},
		{"", "121", 0, true, true},
		{"1e400", "", 0, true, true},
		{"", "Thu, 01 Jan 1970 00:00:00 GMT", 0, true, false},
		{"", "soon", 0, false, false},
		{"NaN", "", 0, false, false},
	} {
		h := make(map[string][]string)
		if c.ms != "" {
			h["Retry-After-Ms"] = []string{c.ms}
		}
		if c.s != "" {
			h["Retry-After"] = []string{c.s}
		}
		d, found, tl := ServerDelay(h)
		if d.Milliseconds() != c.d || found != c.found || tl != c.tl {
			t.Errorf("%q %q: %v %v %v", c.ms, c.s, d, found, tl)
		}
	}
	for retry := range 8 {
		d, ok := RetryDelay(nil, retry)
		want := min(BackoffBase<<retry, BackoffMax)
		if !ok || d > want || d < want*3/4 {
			t.Errorf("retry %d: %v", retry, d)
		}
	}
}
