package httpapi

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// readAll reads every event of body, and the error that ended the stream.
func readAll(body string, max int) ([]string, error) {
	s := NewSSE(strings.NewReader(body), max)
	var out []string
	for {
		data, err := s.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(data))
	}
}

func TestSSE(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []string
		err        error
	}{
		{"two events", "data: a\n\ndata: b\n\n", []string{"a", "b"}, io.EOF},
		{"CRLF, comments, other fields", ": hi\r\nevent: x\r\nid: 1\r\ndata: a\r\n\r\n", []string{"a"}, io.EOF},
		{"data lines joined", "data: a\ndata:b\ndata:  c\n\n", []string{"a\nb\n c"}, io.EOF},
		{"events without data skipped", "event: ping\n\n\n\ndata:\n\ndata: a\n\n", []string{"a"}, io.EOF},
		{"a field named data without a colon", "data\ndata: a\n\n", []string{"\na"}, io.EOF},
		{"cut inside an event", "data: a\n\ndata: b\n", []string{"a"}, ErrCutShort},
		{"a last line without its newline", "data: a\n\ndata: b", []string{"a"}, ErrCutShort},
		{"a line longer than the buffer", "data: " + strings.Repeat("x", 10000) + "\n\n", []string{strings.Repeat("x", 10000)}, io.EOF},
		{"an event over the bound", "data: " + strings.Repeat("x", 100) + "\n\n", nil, ErrEventTooLarge},
		{"a line over the bound", ": " + strings.Repeat("x", 5000) + "\n\n", nil, ErrEventTooLarge},
		{"an event over the bound in lines", strings.Repeat("data: xxxxxxxxxx\n", 20) + "\n", nil, ErrEventTooLarge},
	} {
		max := 1 << 20
		if errors.Is(c.err, ErrEventTooLarge) {
			max = 100
		}
		got, err := readAll(c.body, max)
		if !errors.Is(err, c.err) || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// Reset reads another body with the same reader.
func TestSSEReset(t *testing.T) {
	s := NewSSE(strings.NewReader("data: a\n\n"), 1<<20)
	if d, err := s.Next(); err != nil || string(d) != "a" {
		t.Fatalf("%q, %v", d, err)
	}
	s.Reset(strings.NewReader("data: b\n\n"))
	if d, err := s.Next(); err != nil || string(d) != "b" {
		t.Fatalf("after Reset: %q, %v", d, err)
	}
}

// Whatever the body, the reader ends, and each event it returns has data
// within its bound.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: b\r\n\r\n: c\nevent: d\ndata"))
	f.Add([]byte("data: " + strings.Repeat("x", 300) + "\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 256
		s := NewSSE(strings.NewReader(string(body)), max)
		for range len(body) + 1 {
			data, err := s.Next()
			if err != nil {
				if err.Error() == "" {
					t.Fatal("an error without a message")
				}
				return
			}
			if len(data) == 0 || len(data) >= max {
				t.Fatalf("an event of %d bytes (bound %d)", len(data), max)
			}
		}
		t.Fatal("more events than the body has bytes")
	})
}

// A read that fails is that failure, even io.ErrUnexpectedEOF (how
// net/http reports a connection lost mid-body): not ErrCutShort.
func TestSSEReadFailure(t *testing.T) {
	s := NewSSE(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), failing{io.ErrUnexpectedEOF}), 1<<20)
	if d, err := s.Next(); err != nil || string(d) != "a" {
		t.Fatalf("%q, %v", d, err)
	}
	if _, err := s.Next(); !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrCutShort) {
		t.Fatalf("%v; want the read's io.ErrUnexpectedEOF", err)
	}
	if !errors.Is(ErrCutShort, io.ErrUnexpectedEOF) {
		t.Fatal("ErrCutShort does not wrap io.ErrUnexpectedEOF")
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }
