package bedrock

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	infinity "github.com/infinity-runtime/infinity"
)

// FuzzToolInput checks a toolUse block's input, assembled from the
// fragments of its deltas. Whatever the fragments, a call that comes out
// has a JSON object for Args, and a call held back fails the stream unless
// it stopped at max_tokens.
func FuzzToolInput(f *testing.F) {
	for _, s := range []string{`{"city": "Paris"}`, ``, ` `, `{"a":`, `[1]`, `"x"`, "\xff", `{"a":1}{}`, `{"n":1e999}`} {
		f.Add([]byte(s), uint8(3), false)
	}
	f.Fuzz(func(t *testing.T, input []byte, cut uint8, maxTokens bool) {
		var st state
		type ev struct{ typ, payload string }
		events := []ev{{"contentBlockStart", toolStart(1, "t", "n")}}
		at := min(int(cut), len(input))
		for _, frag := range []string{string(input[:at]), string(input[at:])} {
			events = append(events, ev{"contentBlockDelta", toolDelta(1, frag)})
		}
		reason := "tool_use"
		if maxTokens {
			reason = "max_tokens"
		}
		events = append(events, ev{"contentBlockStop", blockStop(1)}, ev{"messageStop", messageStop(reason)}, ev{"metadata", `{}`})
		var calls []*infinity.ToolCall
		for _, e := range events {
			out, err := st.handle([]byte(e.typ), []byte(e.payload))
			if err != nil {
				t.Fatalf("%q: %v", input, err)
			}
			if out.Kind == infinity.StreamToolCall {
				calls = append(calls, out.Call)
			}
		}
		_, err := st.done()
		for _, c := range calls {
			d := json.NewDecoder(bytes.NewReader(c.Args))
			d.UseNumber() // numbers stay exact, as jsonValue reads them back
			var obj map[string]any
			if d.Decode(&obj) != nil || d.More() {
				t.Fatalf("%q: Args %q is not a JSON object", input, c.Args)
			}
		}
		if len(calls) == 0 && !maxTokens && err == nil {
			t.Fatalf("%q: the call was dropped without an error", input)
		}
		if len(calls) == 1 && err != nil {
			t.Fatalf("%q: a whole call and an error: %v", input, err)
		}
	})
}

// FuzzFrames decodes arbitrary bytes as an event stream and compares with
// the SDK's decoder: whatever frameDecoder accepts, the SDK's decoder
// accepts too, with the same payload and string headers, and what it
// refuses the SDK's decoder refuses (unless only its size bounds refuse
// it). It must never panic, and fails with io.EOF only between frames.
func FuzzFrames(f *testing.F) {
	var stream bytes.Buffer
	textTurn(&stream, "Hel", "lo")
	exception(&stream, "throttlingException", "slow down")
	f.Add(stream.Bytes())
	f.Add(allTypesFrame(f))
	f.Add([]byte{})
	f.Add(stream.Bytes()[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		mine := frameDecoder{r: bytes.NewReader(data)}
		theirs := bytes.NewReader(data)
		sdk := eventstream.NewDecoder()
		for {
			var fr frame
			err := mine.next(&fr)
			m, serr := sdk.Decode(theirs, nil)
			if err != nil {
				if serr == nil && !errors.Is(err, errFrameSize) {
					t.Fatalf("refused what the SDK accepts: %v", err)
				}
				if err == io.EOF && (serr != io.EOF || theirs.Len() != 0) {
					t.Fatalf("io.EOF inside a frame (the SDK: %v)", serr)
				}
				return
			}
			if serr != nil {
				t.Fatalf("accepted what the SDK refuses: %v", serr)
			}
			if !bytes.Equal(fr.payload, m.Payload) {
				t.Fatalf("payload %q, the SDK's %q", fr.payload, m.Payload)
			}
			for name, got := range map[string][]byte{":message-type": fr.messageType, ":event-type": fr.eventType,
				":exception-type": fr.exceptionType, ":error-code": fr.errorCode, ":error-message": fr.errorMessage} {
				want, isString := m.Headers.Get(name).(eventstream.StringValue)
				if isString != (got != nil) || string(got) != string(want) {
					t.Fatalf("header %s = %q, the SDK's %v", name, got, m.Headers.Get(name))
				}
			}
		}
	})
}
