package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
)

// FuzzEvents decodes arbitrary bytes as a response's event stream, as
// Stream does: it must end with message_stop, an error or the end of the
// input, and every tool call it yields must carry a JSON object.
func FuzzEvents(f *testing.F) {
	f.Add([]byte("event: message_start\ndata: " + messageStart(3) + "\n\n" +
		"event: content_block_start\ndata: " + toolStart(0, "t", "f") + "\n\n" +
		"event: content_block_delta\ndata: " + jsonDelta(0, `{"a":1}`) + "\n\n" +
		"event: content_block_stop\ndata: " + blockStop(0) + "\n\n" +
		"event: message_delta\ndata: " + messageDelta("tool_use", 2) + "\n\n" +
		"event: message_stop\ndata: " + messageStop + "\n\n"))
	f.Add([]byte("data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\r\n\r\n"))
	f.Add([]byte("data: {\"type\":\n data: \"ping\"}\n\n: comment\n\ndata: {"))
	f.Fuzz(func(t *testing.T, data []byte) {
		events := newEvents(bytes.NewReader(data))
		var st state
		for range 10000 {
			ev, err := events.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && err.Error() == "" {
					t.Fatal("an error without a message")
				}
				return
			}
			out, err, done := st.handle(ev)
			if out.Kind == infinity.StreamToolCall && !json.Valid(out.Call.Args) {
				t.Fatalf("call arguments %q", out.Call.Args)
			}
			if err != nil || done {
				return
			}
		}
	})
}
