package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
)

// events decodes body and returns the content deltas, or the error.
func events(body string) ([]string, error) {
	d := newDecoder(strings.NewReader(body))
	defer d.close(io.NopCloser(nil))
	var out []string
	for d.next() {
		for _, c := range d.chunk.Choices {
			out = append(out, c.Delta.Content)
		}
	}
	return out, d.err
}

func TestSSEFraming(t *testing.T) {
	long := strings.Repeat("x", 10000) // longer than the reader's buffer
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"lf", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n", []string{"a", "b"}},
		{"crlf", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n", []string{"a"}},
		{"no space", "data:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", []string{"a"}},
		{"comments, event, id, retry", ": keep-alive\n\nevent: chunk\nid: 7\nretry: 10\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", []string{"a"}},
		{"multi-line data", "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"a\"}}]}\n\n", []string{"a"}},
		{"long line", "data: {\"choices\":[{\"delta\":{\"content\":\"" + long + "\"}}]}\n\n", []string{long}},
		{"empty data", "data:\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", []string{"a"}},
		{"done", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n", []string{"a"}},
		{"unended last event", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n", []string{"a"}},
		{"error null", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"error\":null}\n\n", []string{"a"}},
		{"white space around", "data:  {\"choices\":[{\"delta\":{\"content\":\"a\"}}]} \t\n\n", []string{"a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := events(c.body)
			if err != nil || !equal(got, c.want) {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
			// The same, read a byte at a time.
			d := newDecoder(iotest.OneByteReader(strings.NewReader(c.body)))
			defer d.close(io.NopCloser(nil))
			var slow []string
			for d.next() {
				for _, ch := range d.chunk.Choices {
					slow = append(slow, ch.Delta.Content)
				}
			}
			if d.err != nil || !equal(slow, c.want) {
				t.Fatalf("one byte at a time: %q, %v", slow, d.err)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSSEBadChunks(t *testing.T) {
	for name, body := range map[string]string{
		"not json":         "data: {\"choices\":[\n\n",
		"two values":       "data: {\"choices\":[]} {\"choices\":[]}\n\n",
		"garbage after":    "data: {\"choices\":[]} x\n\n",
		"a number":         "data: 12\n\n",
		"wrong type":       "data: {\"choices\":[{\"index\":\"0\"}]}\n\n",
		"an array":         "data: [1]\n\n",
		"unfinished value": "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choi\n\n",
	} {
		_, err := events(body)
		var e *Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("%s: err %v, want a decoding error", name, err)
		}
	}
	_, err := events("data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":503},\"choices\":\"x\"}\n\n")
	var e *Error
	if !errors.As(err, &e) || !e.Stream || e.StatusCode != 503 || e.Message != "boom" || e.Type != "server_error" {
		t.Errorf("an error event whose other fields do not decode: %#v", err)
	}
}

// A reused chunk keeps nothing of the previous one: encoding/json leaves
// fields that a chunk omits (or sends as null) as they were.
func TestChunkReuse(t *testing.T) {
	body := `data: {"choices":[{"delta":{"content":"a","tool_calls":[{"index":0,"id":"call_a","function":{"name":"read","arguments":"{"}}]},"finish_reason":"x"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}

data: {"choices":[{"delta":{"content":null,"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}],"usage":null}

`
	d := newDecoder(strings.NewReader(body))
	defer d.close(io.NopCloser(nil))
	if !d.next() {
		t.Fatal(d.err)
	}
	if !d.next() {
		t.Fatal(d.err)
	}
	c := d.chunk
	if len(c.Choices) != 1 || c.Choices[0].Delta.Content != "" || c.Choices[0].FinishReason != "" || c.Usage.PromptTokens != 0 {
		t.Fatalf("stale fields: %+v", c)
	}
	tc := c.Choices[0].Delta.ToolCalls
	if len(tc) != 1 || tc[0].ID != "" || tc[0].Function.Name != "" || tc[0].Function.Arguments != "}" {
		t.Fatalf("stale call fields: %+v", tc)
	}
}

// A pooled decoder starts clean, also after a stream that failed.
func TestDecoderPool(t *testing.T) {
	for range 3 {
		if _, err := events("data: {\"choices\":[\n\n"); err == nil {
			t.Fatal("no error")
		}
		got, err := events("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n")
		if err != nil || !equal(got, []string{"a"}) {
			t.Fatalf("%q %v", got, err)
		}
	}
}

func TestSSETooLarge(t *testing.T) {
	big := strings.Repeat("x", maxEventSize)
	for _, body := range []string{"data: " + big + "\n\n", "data: " + big[:maxEventSize/2] + "\ndata: " + big[:maxEventSize/2] + "\n\n"} {
		if _, err := events(body); !errors.Is(err, httpapi.ErrEventTooLarge) {
			t.Errorf("err %v", err)
		}
	}
}

func TestEventErrorStatus(t *testing.T) {
	for in, want := range map[string]int{
		`{"error":{"code":400,"message":"x"}}`:         400,
		`{"error":{"code":"503"}}`:                     503,
		`{"error":{"code":"server_error","type":"x"}}`: 0,
		`{"error":{"message":"x"}}`:                    0,
		`{"error":{"code":99999}}`:                     0,
		`{"error":"flat string"}`:                      0,
		`not json`:                                     0,
		`{"error":{"code":429.5}}`:                     0,
	} {
		got, ok := eventErrorStatus([]byte(in))
		if got != want || ok != (want != 0) {
			t.Errorf("%s: %d %v, want %d", in, got, ok, want)
		}
	}
}

// runStream decodes body as a response and checks what any stream must
// hold: it ends with StreamDone or an error, once, and every call's
// arguments are JSON.
func runStream(t *testing.T, body []byte) {
	d := newDecoder(bytes.NewReader(body))
	defer d.close(io.NopCloser(nil))
	var ended bool
	for ev, err := range func(yield func(infinity.StreamEvent, error) bool) { (&Provider{}).run(context.Background(), d, yield) } {
		if ended {
			t.Fatalf("%q: an event after the end: %+v %v", body, ev, err)
		}
		if err != nil || ev.Kind == infinity.StreamDone {
			ended = true
		}
		if ev.Kind == infinity.StreamToolCall && (ev.Call == nil || !json.Valid(ev.Call.Args) || ev.Call.ID == "") {
			t.Fatalf("%q: call %+v", body, ev.Call)
		}
		if err != nil && !errors.Is(err, infinity.ErrRetryable) {
			var e *Error
			if !errors.As(err, &e) || !e.Stream {
				t.Fatalf("%q: a final error that is not an error event: %v", body, err)
			}
		}
	}
	if !ended {
		t.Fatalf("%q: no end", body)
	}
}

// FuzzStream feeds whatever a server might send as a stream's body
// through the SSE and chunk decoders and run.
func FuzzStream(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
		"data: {\"error\":{\"message\":\"x\",\"code\":400}}\n\n",
		"data: {\"error\":\"x\"}\r\n\r\n",
		": ping\n\nevent: e\ndata: {\"choices\":\ndata: []}\n\n",
		"data: [DONE]\n\n",
		"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1},{\"index\":1,\"id\":\"b\"}]},\"finish_reason\":\"length\"}]}\n\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(runStream)
}

// FuzzEventErrorStatus checks the decoding of an in-stream error event.
func FuzzEventErrorStatus(f *testing.F) {
	for _, s := range []string{`{"error":{"code":400}}`, `{"error":{"code":"429"}}`, `{"error":{"code":null}}`, `{"error":[]}`, `[DONE]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		code, ok := eventErrorStatus(data)
		if ok != (code != 0) || ok && (code < 100 || code > 599) {
			t.Fatalf("%q: %d %v", data, code, ok)
		}
	})
}

// FuzzErrorBody checks the decoding of an HTTP error answer's body.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":{"message":"m","type":"t","code":"c","param":null}}`, `{"error":"flat"}`, `{"object":"error","message":"m","code":400}`, `{"detail":"Not Found"}`, `<html>`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := errorOf(&httpapi.Answer{StatusCode: 400, Body: data})
		if e.StatusCode != 400 || e.Stream || !strings.HasPrefix(e.Error(), "HTTP 400 Bad Request") {
			t.Fatalf("%q: %#v", data, e)
		}
	})
}

// FuzzChunkDecode checks the reused json.Decoder against json.Unmarshal:
// the same data decodes (twice in a row, into the reused chunk) to the
// same chunk, or fails with both.
func FuzzChunkDecode(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"index":0,"delta":{"content":"a","tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}],"usage":null}`,
		`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"error":{"message":"x"}}`, `{"choices":[]} 1`, `12`, `"s"`, `{"choices":[{"index":"0"}]}`, `{`, ` `, "{}\n\n{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.ContainsRune(data, '\r') || bytes.HasPrefix(data, doneMarker) || len(data) == 0 {
			return // framing, not decoding
		}
		var body bytes.Buffer
		for range 2 {
			for line := range bytes.SplitSeq(data, []byte("\n")) {
				body.WriteString("data:")
				body.Write(line)
				body.WriteString("\n")
			}
			body.WriteString("\n")
		}
		var want chunk
		wantErr := json.Unmarshal(data, &want)
		wantOK := wantErr == nil && !present(want.Error)
		d := newDecoder(&body)
		defer d.close(io.NopCloser(nil))
		for i := range 2 {
			ok := d.next()
			if d.done {
				return
			}
			if ok != wantOK {
				t.Fatalf("%q, event %d: decoded %v (%v), json.Unmarshal %v", data, i, ok, d.err, wantErr)
			}
			if !ok {
				return
			}
			if g, w := normal(d.chunk), normal(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("%q, event %d:\n got %+v\nwant %+v", data, i, g, w)
			}
		}
	})
}

// normal is c with empty slices nil.
func normal(c chunk) chunk {
	if len(c.Choices) == 0 {
		c.Choices = nil
	}
	c.Choices = slices.Clone(c.Choices)
	for i := range c.Choices {
		if len(c.Choices[i].Delta.ToolCalls) == 0 {
			c.Choices[i].Delta.ToolCalls = nil
		}
	}
	c.Error = nil
	return c
}

// eventErrorStatus is the HTTP status eventError reads from an in-stream
// error event {"error": {"code": 400, ...}} as vLLM and llama.cpp send
// it; OpenAI's string codes ("server_error") carry none.
func eventErrorStatus(data []byte) (int, bool) {
	e, ok := eventError(data)
	if !ok || e.StatusCode == 0 {
		return 0, false
	}
	return e.StatusCode, true
}

// A connection lost mid-body (net/http reads it as io.ErrUnexpectedEOF)
// breaks the stream, after the finish_reason too: the usage and [DONE]
// that were to follow are missing, and the call is retried. A body that
// merely ends inside an event (a server's sloppy end) is its end.
func TestSSELostConnection(t *testing.T) {
	chunk := `data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}` + "\n\n"
	d := newDecoder(io.MultiReader(strings.NewReader(chunk+"data: {\"cho"), errReader{io.ErrUnexpectedEOF}))
	for d.next() {
	}
	if !errors.Is(d.err, io.ErrUnexpectedEOF) {
		t.Errorf("lost connection: err %v, want io.ErrUnexpectedEOF", d.err)
	}
	d.close(io.NopCloser(nil))
	d = newDecoder(strings.NewReader(chunk + "data: {\"cho"))
	for d.next() {
	}
	if d.err != nil {
		t.Errorf("a body ending inside an event: err %v, want its end", d.err)
	}
	d.close(io.NopCloser(nil))
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
