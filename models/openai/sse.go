package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/infinity-runtime/infinity/models/internal/httpapi"
)

// maxEventSize bounds a line and an event's data, as the SDK's scanner
// did: a stream that exceeds it is broken.
const maxEventSize = 32 << 20

// keepBuffer is the largest decode buffer a pooled decoder keeps.
const keepBuffer = 64 << 10

var doneMarker = []byte("[DONE]")

// decoder reads a text/event-stream body of chat.completion.chunk
// events: a line reader over a bufio.Reader that copies only the data
// fields, and an encoding/json Decoder fed one event at a time (unlike
// json.Unmarshal, it keeps its scanner and decode state from one chunk to
// the next) into a chunk that is reused. Decoders are pooled.
type decoder struct {
	sse   *httpapi.SSE
	data  []byte // the current event's data (sse's)
	src   eventSource
	dec   *json.Decoder // reads src; nil after it failed
	chunk chunk         // the current chunk
	err   error         // why the stream ended early; nil at its end
	done  bool          // "data: [DONE]" arrived
}

var decoders = sync.Pool{New: func() any { return &decoder{sse: httpapi.NewSSE(nil, maxEventSize)} }}

// eventSource is the json.Decoder's input: each event's data in turn,
// then one newline (so a number ends), then errIncomplete: a value that
// does not end within its event is an error, not a read of the next.
type eventSource struct {
	data   []byte
	off    int
	sep    bool  // the newline was read
	served int64 // bytes read so far, to match json.Decoder.InputOffset
}

var errIncomplete = errors.New("unexpected end of JSON input")

func (s *eventSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	if s.off < len(s.data) {
		n = copy(p, s.data[s.off:])
		s.off += n
	} else if !s.sep {
		s.sep = true
		p[0] = '\n'
		n = 1
	} else {
		return 0, errIncomplete
	}
	s.served += int64(n)
	return n, nil
}

// decode decodes the current event's data into d.chunk, as strictly as
// json.Unmarshal: one JSON value with nothing but white space after it.
func (d *decoder) decode() error {
	if d.dec == nil {
		d.src = eventSource{}
		d.dec = json.NewDecoder(&d.src)
	}
	start := d.src.served
	d.src.data, d.src.off, d.src.sep = d.data, 0, false
	err := d.dec.Decode(&d.chunk)
	if err == nil {
		if end := d.dec.InputOffset() - start; end >= 0 && end <= int64(len(d.data)) && !blank(d.data[end:]) {
			err = errors.New("invalid data after the JSON value")
		}
	}
	if err != nil {
		d.dec = nil // its state is unknown
	}
	return err
}

// blank reports whether b holds only JSON white space.
func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func newDecoder(r io.Reader) *decoder {
	d := decoders.Get().(*decoder)
	d.sse.Reset(r)
	return d
}

// close drains a finished body so that its connection can be reused,
// closes it and puts d back in the pool.
func (d *decoder) close(body io.ReadCloser) {
	d.sse.Close(body, d.done && d.err == nil)
	d.sse.Reset(nil)
	if cap(d.data) > keepBuffer {
		d.dec = nil // its buffer grew as much as the event
	}
	d.data = nil
	d.chunk = chunk{}
	d.src.data = nil
	d.err, d.done = nil, false
	decoders.Put(d)
}

// next reads the next chunk into d.chunk. It returns false at the end of
// the stream ("[DONE]" or the end of the body, d.err nil) and when the
// stream breaks, carries an error event or a chunk does not decode
// (d.err).
func (d *decoder) next() bool {
	if d.err != nil || d.done || !d.event() {
		return false
	}
	if bytes.HasPrefix(d.data, doneMarker) {
		d.done = true
		return false
	}
	d.chunk.reset()
	err := d.decode()
	if err == nil && !present(d.chunk.Error) {
		return true
	}
	// An error event; or a chunk that does not decode, unless it is one.
	if e, ok := eventError(d.data); ok {
		d.err = e
	} else {
		d.err = fmt.Errorf("a chunk does not decode: %w", err)
	}
	return false
}

// event reads the next event's data into d.data. It returns false at the
// end of the body (an event not ended by a blank line is dropped) or on an
// error (d.err).
func (d *decoder) event() bool {
	data, err := d.sse.Next()
	if err != nil {
		if err != io.EOF && !errors.Is(err, httpapi.ErrCutShort) {
			d.err = err // a failed read too: a connection lost mid-body
		}
		return false
	}
	d.data = data
	return true
}

// chunk is what run reads of a streamed chat.completion.chunk.
type chunk struct {
	Choices []choice `json:"choices"`
	Usage   struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
	// Error is set in an error event ({"error": {...}}).
	Error json.RawMessage `json:"error"`
}

type choice struct {
	Index int64 `json:"index"`
	Delta struct {
		Content   string     `json:"content"`
		Refusal   string     `json:"refusal"`
		ToolCalls []toolCall `json:"tool_calls"`
	} `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

type toolCall struct {
	Index    int64  `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// reset zeroes c for the next event but keeps the arrays of its slices:
// encoding/json decodes into the elements a slice has room for without
// zeroing them first, and keeps a field's old value when the JSON leaves
// it out or says null.
func (c *chunk) reset() {
	choices := c.Choices[:cap(c.Choices)]
	for i := range choices {
		calls := choices[i].Delta.ToolCalls[:cap(choices[i].Delta.ToolCalls)]
		clear(calls)
		choices[i] = choice{}
		choices[i].Delta.ToolCalls = calls[:0]
	}
	*c = chunk{Choices: choices[:0]}
}

// present reports whether a raw JSON field was sent and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// eventError reads an error event, {"error": {...}} (or {"error": "..."}),
// as an *Error; ok is false when data has no error field.
func eventError(data []byte) (*Error, bool) {
	var ev struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &ev) != nil || !present(ev.Error) {
		return nil, false
	}
	e := &Error{Stream: true}
	e.fill(ev.Error)
	if code, ok := httpStatus(e.code); ok {
		e.StatusCode = code
	}
	return e, true
}

// httpStatus reads a code field (a number, or a string holding one) as an
// HTTP status.
func httpStatus(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	code, err := n.Int64()
	if err != nil || code < 100 || code > 599 {
		return 0, false
	}
	return int(code), true
}
