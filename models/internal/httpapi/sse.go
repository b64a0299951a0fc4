package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrEventTooLarge is returned (wrapped) by SSE.Next for a line or an
// event larger than the reader's bound.
var ErrEventTooLarge = errors.New("a server-sent event is too large")

// ErrCutShort is returned by SSE.Next when the body ended inside an event
// (lines not closed by a blank line, or a last line without its newline).
// It wraps io.ErrUnexpectedEOF. A body whose read fails (a connection
// lost mid-body reads as io.ErrUnexpectedEOF too) returns that error
// instead.
var ErrCutShort = fmt.Errorf("the event stream ended inside an event: %w", io.ErrUnexpectedEOF)

// Draining what follows a stream's last event (the end of a chunked body)
// lets an HTTP/1.1 connection go back to the pool; SSE.Close takes at most
// drainWait and reads at most drainMax bytes, else it closes the
// connection.
const (
	drainWait = 100 * time.Millisecond
	drainMax  = 64 << 10
)

// keepBuffer is the largest buffer an SSE keeps across Reset.
const keepBuffer = 64 << 10

// SSE reads a text/event-stream body: the data of each event, that is the
// values of its data fields joined by newlines. Comments, other fields and
// events without data are skipped. Reset lets one reader (and its buffers)
// serve body after body.
type SSE struct {
	br   *bufio.Reader
	data []byte // the current event's data
	long []byte // a line longer than br's buffer
	max  int
}

// NewSSE returns a reader of r whose lines and events hold at most max
// bytes.
func NewSSE(r io.Reader, max int) *SSE {
	return &SSE{br: bufio.NewReaderSize(r, 4<<10), max: max}
}

// Reset makes s read r (nil: nothing, as when s is put away), dropping
// buffers that grew large.
func (s *SSE) Reset(r io.Reader) {
	s.br.Reset(r)
	if cap(s.data) > keepBuffer {
		s.data = nil
	}
	if cap(s.long) > keepBuffer {
		s.long = nil
	}
}

// Next returns the data of the next event, valid until the next call. At
// the end of the body it returns io.EOF between events and ErrCutShort
// inside one; a line or an event over the bound is ErrEventTooLarge; a
// failed read is its error.
func (s *SSE) Next() ([]byte, error) {
	s.data = s.data[:0]
	inside := false // a line of the event came
	for {
		line, err := s.line()
		if err != nil {
			if err == io.EOF && inside {
				err = ErrCutShort
			}
			return nil, err
		}
		if len(line) == 0 {
			inside = false
			if len(s.data) == 0 {
				continue
			}
			s.data = s.data[:len(s.data)-1] // the last newline
			if len(s.data) == 0 {
				continue // one empty data line
			}
			return s.data, nil
		}
		inside = true
		name, value, _ := bytes.Cut(line, []byte(":"))
		if string(name) != "data" {
			continue // a comment (": ..."), event, id or retry
		}
		value, _ = bytes.CutPrefix(value, []byte(" "))
		if len(s.data)+len(value) >= s.max {
			return nil, s.tooLarge()
		}
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
	}
}

func (s *SSE) tooLarge() error {
	return fmt.Errorf("%w (more than %d bytes)", ErrEventTooLarge, s.max)
}

// line returns the next line without its "\n" or "\r\n", valid until the
// next call. A last line without its newline is ErrCutShort: it cannot end
// an event.
func (s *SSE) line() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.long) >= s.max {
				return nil, s.tooLarge()
			}
			line, err = s.br.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err == io.EOF && len(line) > 0 {
		return nil, ErrCutShort
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// Close closes body. When finished (the stream's last event was read) it
// first reads what follows, for a short while, so that the connection may
// be used again.
func (s *SSE) Close(body io.Closer, finished bool) {
	if finished {
		stop := time.AfterFunc(drainWait, func() { _ = body.Close() })
		_, _ = s.br.Discard(drainMax)
		if !stop.Stop() {
			return // the timer closed it
		}
	}
	_ = body.Close()
}
