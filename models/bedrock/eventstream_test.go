package bedrock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// allTypesFrame is an event frame with a header of every value type,
// encoded by the SDK.
func allTypesFrame(t testing.TB) []byte {
	t.Helper()
	var m eventstream.Message
	m.Headers.Set("t", eventstream.BoolValue(true))
	m.Headers.Set("f", eventstream.BoolValue(false))
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set("b", eventstream.Int8Value(-3))
	m.Headers.Set("s", eventstream.Int16Value(300))
	m.Headers.Set("i", eventstream.Int32Value(70000))
	m.Headers.Set("l", eventstream.Int64Value(1<<40))
	m.Headers.Set("bytes", eventstream.BytesValue([]byte{0, 1, 2}))
	m.Headers.Set(":event-type", eventstream.StringValue("contentBlockDelta"))
	m.Headers.Set("ts", eventstream.TimestampValue(time.Unix(1700000000, 0)))
	m.Headers.Set("u", eventstream.UUIDValue{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Payload = []byte(textDelta(0, "hi"))
	var b bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawFrame builds a frame from raw headers and a payload, with correct
// checksums.
func rawFrame(headers, payload []byte) []byte {
	total := minFrame + len(headers) + len(payload)
	b := binary.BigEndian.AppendUint32(nil, uint32(total))
	b = binary.BigEndian.AppendUint32(b, uint32(len(headers)))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	b = append(b, headers...)
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// prelude is a frame's first twelve bytes, with a correct checksum.
func prelude(total, headers uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, total)
	b = binary.BigEndian.AppendUint32(b, headers)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// stringHeader encodes one string header.
func stringHeader(name, value string) []byte {
	b := append([]byte{byte(len(name))}, name...)
	b = append(b, typeString)
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

func TestFrameDecoder(t *testing.T) {
	var stream bytes.Buffer
	event(&stream, "messageStart", messageStart)
	stream.Write(allTypesFrame(t))
	exception(&stream, "throttlingException", "slow down")
	writeFrame(&stream, map[string]string{":message-type": "error", ":error-code": "InternalFailure", ":error-message": "oops"}, "")
	stream.Write(rawFrame(nil, nil)) // no headers, no payload
	d := frameDecoder{r: &stream}
	want := []frame{
		{messageType: []byte("event"), eventType: []byte("messageStart"), payload: []byte(messageStart)},
		{messageType: []byte("event"), eventType: []byte("contentBlockDelta"), payload: []byte(textDelta(0, "hi"))},
		{messageType: []byte("exception"), exceptionType: []byte("throttlingException"), payload: []byte(`{"message":"slow down"}`)},
		{messageType: []byte("error"), errorCode: []byte("InternalFailure"), errorMessage: []byte("oops")},
		{},
	}
	for i, w := range want {
		var f frame
		if err := d.next(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		for _, c := range []struct {
			name      string
			got, want []byte
		}{
			{"message type", f.messageType, w.messageType}, {"event type", f.eventType, w.eventType},
			{"exception type", f.exceptionType, w.exceptionType}, {"error code", f.errorCode, w.errorCode},
			{"error message", f.errorMessage, w.errorMessage}, {"payload", f.payload, w.payload},
		} {
			if !bytes.Equal(c.got, c.want) {
				t.Errorf("frame %d: %s = %q, want %q", i, c.name, c.got, c.want)
			}
		}
	}
	var f frame
	if err := d.next(&f); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// A header the provider reads that is not a string reads as absent, as a
// later one replaces an earlier one.
func TestFrameHeaderTypes(t *testing.T) {
	h := stringHeader(":event-type", "messageStop")
	h = append(h, byte(len(":event-type")))
	h = append(h, ":event-type"...)
	h = append(h, typeInt, 0, 0, 0, 1)
	h = append(h, stringHeader(":message-type", "event")...)
	d := frameDecoder{r: bytes.NewReader(rawFrame(h, []byte("{}")))}
	var f frame
	if err := d.next(&f); err != nil {
		t.Fatal(err)
	}
	if f.eventType != nil || string(f.messageType) != "event" || string(f.payload) != "{}" {
		t.Fatalf("frame %+v", f)
	}
}

func TestFrameChecksums(t *testing.T) {
	good := allTypesFrame(t)
	for name, at := range map[string]int{
		"prelude length":   2,
		"prelude checksum": 9,
		"header":           20,
		"payload":          len(good) - 8,
		"message checksum": len(good) - 1,
	} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x40
		var f frame
		err := (&frameDecoder{r: bytes.NewReader(bad)}).next(&f)
		// A flipped length bit fails the prelude checksum before the length
		// is believed.
		if !errors.Is(err, errChecksum) {
			t.Errorf("%s: err = %v, want a checksum mismatch", name, err)
		}
	}
}

func TestFrameTruncated(t *testing.T) {
	good := allTypesFrame(t)
	for n := range len(good) {
		var f frame
		err := (&frameDecoder{r: bytes.NewReader(good[:n])}).next(&f)
		want := io.ErrUnexpectedEOF
		if n == 0 {
			want = io.EOF
		}
		if err != want {
			t.Fatalf("%d of %d bytes: err = %v, want %v", n, len(good), err, want)
		}
	}
	// A prelude that claims a large frame costs memory only as its bytes
	// come.
	claim := append(prelude(minFrame+maxPayload, 0), make([]byte, 100)...)
	d := frameDecoder{r: bytes.NewReader(claim)}
	if err := d.next(new(frame)); err != io.ErrUnexpectedEOF || cap(d.buf) > 8192 {
		t.Fatalf("a large claim: %v, a buffer of %d bytes", err, cap(d.buf))
	}
	// A reader that fails is not taken for the end of the stream.
	broken := errors.New("connection reset")
	var f frame
	if err := (&frameDecoder{r: io.MultiReader(bytes.NewReader(good[:30]), errReader{broken})}).next(&f); !errors.Is(err, broken) {
		t.Fatalf("err = %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestFrameOversized(t *testing.T) {
	for name, pre := range map[string][]byte{
		"too long":                prelude(maxFrame+1, 0),
		"longest possible":        prelude(1<<32-1, 0),
		"headers too long":        prelude(minFrame+maxHeaders+1, maxHeaders+1),
		"payload too long":        prelude(minFrame+maxPayload+1, 0),
		"shorter than a prelude":  prelude(minFrame-1, 0),
		"empty":                   prelude(0, 0),
		"headers beyond the end":  prelude(minFrame+4, 5),
		"headers longer than all": prelude(minFrame, 1<<32-1),
	} {
		// Only the prelude is there: the decoder must refuse it without
		// waiting for (or allocating) the rest.
		d := frameDecoder{r: bytes.NewReader(pre)}
		var f frame
		if err := d.next(&f); !errors.Is(err, errFrameSize) {
			t.Errorf("%s: err = %v, want errFrameSize", name, err)
		}
		if cap(d.buf) != 0 {
			t.Errorf("%s: allocated %d bytes", name, cap(d.buf))
		}
	}
	// The largest frame allowed is read.
	payload := bytes.Repeat([]byte("x"), maxPayload)
	d := frameDecoder{r: bytes.NewReader(rawFrame(stringHeader(":message-type", "event"), payload))}
	var f frame
	if err := d.next(&f); err != nil || len(f.payload) != maxPayload {
		t.Fatalf("largest frame: %v, %d bytes", err, len(f.payload))
	}
}

func TestFrameBadHeaders(t *testing.T) {
	for name, h := range map[string][]byte{
		"name overruns":         {10, 'a', 'b'},
		"no type":               {1, 'a'},
		"unknown type":          {1, 'a', 10},
		"string length cut":     {1, 'a', typeString, 0},
		"string overruns":       {1, 'a', typeString, 0, 9, 'x'},
		"bytes overruns":        {1, 'a', typeBytes, 0, 9, 'x'},
		"int overruns":          {1, 'a', typeInt, 0, 0},
		"uuid overruns":         {1, 'a', typeUUID, 1, 2, 3},
		"good then overrunning": append(stringHeader(":message-type", "event"), 1, 'a', typeLong, 1),
	} {
		var f frame
		err := (&frameDecoder{r: bytes.NewReader(rawFrame(h, nil))}).next(&f)
		if !errors.Is(err, errBadHeaders) {
			t.Errorf("%s: err = %v, want errBadHeaders", name, err)
		}
	}
}

// BenchmarkFrameDecoder measures decoding a text delta frame.
func BenchmarkFrameDecoder(b *testing.B) {
	var one bytes.Buffer
	event(&one, "contentBlockDelta", textDelta(0, "some text of a usual length"))
	r := bytes.NewReader(nil)
	d := frameDecoder{r: r}
	var f frame
	b.ReportAllocs()
	b.SetBytes(int64(one.Len()))
	for b.Loop() {
		r.Reset(one.Bytes())
		if err := d.next(&f); err != nil {
			b.Fatal(err)
		}
	}
}
