package bedrock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// Event-stream framing (application/vnd.amazon.eventstream). A message is
//
//	total length    uint32, big-endian, the whole message
//	headers length  uint32, big-endian
//	prelude CRC     uint32, CRC-32 (IEEE) of the eight bytes before it
//	headers         name length (uint8), name, value type (uint8), value
//	payload
//	message CRC     uint32, CRC-32 (IEEE) of everything before it
//
// The bounds are the format's: headers of at most 128 KiB and a payload of
// at most 16 MiB.
const (
	preludeLen = 12 // total length, headers length, prelude CRC
	minFrame   = preludeLen + 4
	maxHeaders = 128 << 10
	maxPayload = 16 << 20
	maxFrame   = minFrame + maxHeaders + maxPayload
)

// Errors of a malformed frame. A stream that ends between two frames is
// io.EOF; one that ends inside a frame is io.ErrUnexpectedEOF.
var (
	errChecksum   = errors.New("event-stream checksum mismatch")
	errFrameSize  = errors.New("event-stream frame length out of bounds")
	errBadHeaders = errors.New("malformed event-stream headers")
)

// Header value types.
const (
	typeTrue = iota
	typeFalse
	typeByte
	typeShort
	typeInt
	typeLong
	typeBytes
	typeString
	typeTimestamp
	typeUUID
)

// fixedSize is the size of the values of fixed size, by type.
var fixedSize = [...]int{typeTrue: 0, typeFalse: 0, typeByte: 1, typeShort: 2, typeInt: 4, typeLong: 8, typeTimestamp: 8, typeUUID: 16}

// frame is one decoded message: the string headers the provider reads and
// the payload. The slices point into the decoder's buffer and are valid
// until its next call. A header sent with another type than string reads
// as absent.
type frame struct {
	messageType   []byte // :message-type: event, exception or error
	eventType     []byte // :event-type
	exceptionType []byte // :exception-type
	errorCode     []byte // :error-code
	errorMessage  []byte // :error-message
	payload       []byte
}

// frameDecoder reads messages from an event stream, one at a time, into
// one buffer that grows to the largest message.
type frameDecoder struct {
	r   io.Reader
	buf []byte
}

// next reads the next message into f. It returns io.EOF at the end of the
// stream (between messages), io.ErrUnexpectedEOF if it ends inside one,
// an error wrapping errChecksum, errFrameSize or errBadHeaders for a
// malformed one, or the reader's error.
func (d *frameDecoder) next(f *frame) error {
	var pre [preludeLen]byte
	if _, err := io.ReadFull(d.r, pre[:]); err != nil {
		return err // io.EOF only when nothing was read
	}
	total := binary.BigEndian.Uint32(pre[0:4])
	hlen := binary.BigEndian.Uint32(pre[4:8])
	if crc32.ChecksumIEEE(pre[:8]) != binary.BigEndian.Uint32(pre[8:12]) {
		return fmt.Errorf("prelude: %w", errChecksum)
	}
	if total < minFrame || total > maxFrame || hlen > maxHeaders || hlen > total-minFrame || total-minFrame-hlen > maxPayload {
		return fmt.Errorf("a frame of %d bytes with %d bytes of headers: %w", total, hlen, errFrameSize)
	}
	rest := int(total) - preludeLen
	body, err := d.read(rest)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	sum := crc32.Update(crc32.Update(0, crc32.IEEETable, pre[:]), crc32.IEEETable, body[:rest-4])
	if sum != binary.BigEndian.Uint32(body[rest-4:]) {
		return fmt.Errorf("message: %w", errChecksum)
	}
	*f = frame{payload: body[hlen : rest-4]}
	return f.headers(body[:hlen])
}

// headers reads h into f's header fields.
func (f *frame) headers(h []byte) error {
	for len(h) > 0 {
		n := int(h[0])
		if len(h) < 1+n+1 {
			return fmt.Errorf("a header name overruns the headers: %w", errBadHeaders)
		}
		name, typ := h[1:1+n], h[1+n]
		h = h[1+n+1:]
		var value []byte
		switch {
		case typ == typeBytes || typ == typeString:
			if len(h) < 2 {
				return fmt.Errorf("header %q: the value length overruns the headers: %w", name, errBadHeaders)
			}
			l := int(binary.BigEndian.Uint16(h))
			if len(h) < 2+l {
				return fmt.Errorf("header %q: the value overruns the headers: %w", name, errBadHeaders)
			}
			value, h = h[2:2+l], h[2+l:]
		case int(typ) < len(fixedSize):
			l := fixedSize[typ]
			if len(h) < l {
				return fmt.Errorf("header %q: the value overruns the headers: %w", name, errBadHeaders)
			}
			h = h[l:]
		default:
			return fmt.Errorf("header %q: unknown value type %d: %w", name, typ, errBadHeaders)
		}
		if typ != typeString {
			value = nil // a later header of another type replaces an earlier string
		}
		switch string(name) {
		case ":message-type":
			f.messageType = value
		case ":event-type":
			f.eventType = value
		case ":exception-type":
			f.exceptionType = value
		case ":error-code":
			f.errorCode = value
		case ":error-message":
			f.errorMessage = value
		}
	}
	return nil
}

// read reads the next n bytes into the buffer. A buffer too small grows as
// the bytes arrive (doubling), so that a prelude claiming a large message
// costs memory only as its bytes come.
func (d *frameDecoder) read(n int) ([]byte, error) {
	if cap(d.buf) >= n {
		b := d.buf[:n]
		_, err := io.ReadFull(d.r, b)
		return b, err
	}
	b := d.buf[:0]
	for len(b) < n {
		chunk := min(n-len(b), max(len(b), 4096))
		b = slices.Grow(b, chunk)
		m, err := io.ReadFull(d.r, b[len(b):len(b)+chunk])
		b = b[:len(b)+m]
		if err != nil {
			d.buf = b
			return nil, err
		}
	}
	d.buf = b
	return b, nil
}
