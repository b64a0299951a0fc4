package disk

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/jsonw"
)

// Values are a format byte followed by JSON: the history stays readable
// with any JSON tool (and `infinity export`), and a later format can be
// told apart by its first byte.
const valueV1 = 1

// ErrCorrupt is wrapped by every error about data in the store that
// cannot be read: a value that does not decode, a key that is malformed,
// a thread header whose history is missing. The error names the key.
var ErrCorrupt = errors.New("disk store: corrupt data")

// header is a thread's header ('T' key).
type header struct {
	Info infinity.ThreadInfo `json:"info"`
	// Len is the number of the thread's own items.
	Len int `json:"len"`
	// Children counts the thread's children (the next child's index).
	Children uint64 `json:"children,omitempty"`
	// Out is the next outbox entry's number.
	Out uint64 `json:"out,omitempty"`
	// Unsent is how many entries the outbox holds: most threads' is
	// empty, and reading that from the header spares a scan.
	Unsent int `json:"unsent,omitempty"`
	// Pending names the unsent outbox entries (Unsent of them), so that
	// marking entries sent and checking a commit's new entries need no
	// scan. A header written before it existed has Unsent entries and no
	// Pending: the outbox is scanned then.
	Pending []outRef `json:"pending,omitempty"`
}

// setPending records the unsent outbox entries (and so their count).
func (h *header) setPending(refs []outRef) { h.Pending, h.Unsent = refs, len(refs) }

// outRef is an unsent outbox entry: its id and its number in the outbox.
type outRef struct {
	ID string `json:"id"`
	N  uint64 `json:"n"`
}

// saved is a thread's saved state ('V' key).
type saved struct {
	Version infinity.Version `json:"v"`
	State   infinity.State   `json:"state"`
}

// encode writes v1 + JSON of v with encoding/json.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w: %v", infinity.ErrInvalid, err)
	}
	return append([]byte{valueV1}, b...), nil
}

// encodeFast writes v1 + JSON with the hand-written encoder (see package
// jsonw), or with encoding/json when the encoder is out of date.
func encodeFast[T any](v *T, write func(*jsonw.W, *T)) ([]byte, error) {
	if !jsonw.OK {
		return encode(v)
	}
	w := jsonw.W{Buf: make([]byte, 1, 256)}
	w.Buf[0] = valueV1
	write(&w, v)
	if w.Err != nil {
		return nil, fmt.Errorf("encode: %w: %v", infinity.ErrInvalid, w.Err)
	}
	return w.Buf, nil
}

func encodeItem(it *infinity.Item) ([]byte, error) { return encodeFast(it, (*jsonw.W).Item) }

func encodeOutgoing(o *infinity.Outgoing) ([]byte, error) {
	if !jsonw.OK {
		return encode(&[]infinity.Outgoing{*o}) // the one-entry list decodeOutgoing reads
	}
	return encodeFast(o, func(w *jsonw.W, o *infinity.Outgoing) { w.Outbox([]infinity.Outgoing{*o}) })
}

func encodeQueued(q *infinity.Queued) ([]byte, error) { return encodeFast(q, (*jsonw.W).Queued) }

// decode reads a value written by encode into v; key names it in errors.
func decode(key, b []byte, v any) error {
	if len(b) == 0 || b[0] != valueV1 {
		return fmt.Errorf("key %q: unknown value format: %w", key, ErrCorrupt)
	}
	if err := json.Unmarshal(b[1:], v); err != nil {
		return fmt.Errorf("key %q: %w: %v", key, ErrCorrupt, err)
	}
	return nil
}

// decodeOutgoing reads a value written by encodeOutgoing (a one-entry
// list).
func decodeOutgoing(key, b []byte) (infinity.Outgoing, error) {
	var one []infinity.Outgoing
	if err := decode(key, b, &one); err != nil {
		return infinity.Outgoing{}, err
	}
	if len(one) != 1 {
		return infinity.Outgoing{}, fmt.Errorf("key %q: %d outbox entries in one value: %w", key, len(one), ErrCorrupt)
	}
	return one[0], nil
}
