package disk

import (
	"testing"

	"github.com/infinity-runtime/infinity"
)

// FuzzDecode feeds the value and key decoders what a damaged file could
// hold: they return an error wrapping ErrCorrupt, never panic.
func FuzzDecode(f *testing.F) {
	it := infinity.Item{ID: "i", Kind: infinity.KindUser, Text: "hello"}
	v, _ := encodeItem(&it)
	f.Add(v)
	o := infinity.Outgoing{ID: "o", Message: &infinity.InputMessage{ID: "m", GroupID: "t"}}
	v, _ = encodeOutgoing(&o)
	f.Add(v)
	f.Add(threadKey(tagItem, "thread", 0))
	f.Add([]byte{valueV1, '{'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var it infinity.Item
		_ = decode(b, b, &it)
		var h header
		_ = decode(b, b, &h)
		var q infinity.Queued
		_ = decode(b, b, &q)
		_, _ = decodeOutgoing(b, b)
		if id, rest, ok := splitThreadKey(b); ok && len(id)+len(rest) >= len(b) {
			t.Fatalf("split %q into %q and %q", b, id, rest)
		}
		_, _ = u64(b)
		if len(b) > 9 {
			_ = markFromExpiry(b)
		}
	})
}
