package dsql

import (
	"bytes"
	"errors"
	"testing"
)

func rowsOf(key int64, pieces [][]byte) []chunkRow {
	var r rowSet
	r.add(key, pieces)
	out := make([]chunkRow, len(r.key))
	for i := range out {
		out[i] = chunkRow{r.key[i], r.chunk[i], r.chunks[i], r.data[i]}
	}
	return out
}

func TestAssembleCorrupt(t *testing.T) {
	good := rowsOf(4, split([]byte(`{"id":"x","kind":"user"}`), 5))
	for name, rows := range map[string][]chunkRow{
		"missing last":  good[:len(good)-1],
		"missing first": good[1:],
		"missing mid":   append(append([]chunkRow{}, good[:2]...), good[3:]...),
		"count differs": append(append([]chunkRow{}, good[:1]...), chunkRow{4, 1, 9, nil}),
		"key differs":   append(append([]chunkRow{}, good[:1]...), chunkRow{5, 1, int32(len(good)), nil}),
	} {
		if _, err := assemble(rows); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
	// A gap between items is an error, never skipped.
	rows := append(rowsOf(0, [][]byte{[]byte(`{"id":"a"}`)}), rowsOf(2, [][]byte{[]byte(`{"id":"c"}`)})...)
	if _, err := decodeItems(rows, 0, 2); !errors.Is(err, errCorrupt) {
		t.Errorf("gap: %v, want errCorrupt", err)
	}
}

// FuzzAssemble feeds arbitrary rows to the reassembly and item decoding
// (they must fail cleanly), and checks that split pieces of any payload
// come back whole.
func FuzzAssemble(f *testing.F) {
	f.Add([]byte(`{"id":"a","kind":"user","text":"hello"}`), uint8(3), []byte{0, 0, 1, 0, 1, 2})
	f.Add([]byte{}, uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, data []byte, size uint8, raw []byte) {
		got, err := assemble(rowsOf(7, split(data, int(size))))
		if err != nil || len(got) != 1 || got[0].key != 7 || !bytes.Equal(got[0].data, data) {
			t.Fatalf("split/assemble of %d bytes in pieces of %d: %v", len(data), size, err)
		}
		// Arbitrary rows: 3 bytes each (key, chunk, chunks), data from the rest.
		var rows []chunkRow
		for len(raw) >= 3 {
			rows = append(rows, chunkRow{int64(raw[0] % 4), int32(int8(raw[1])), int32(int8(raw[2])), data})
			raw = raw[3:]
		}
		ps, err := assemble(rows)
		if err != nil {
			return
		}
		in, out := 0, 0
		for _, r := range rows {
			in += len(r.data)
		}
		for _, p := range ps {
			out += len(p.data)
		}
		if in != out || len(ps) > len(rows) {
			t.Fatalf("%d rows of %d bytes gave %d payloads of %d bytes", len(rows), in, len(ps), out)
		}
		// The data as stored items and outgoing entries: errors, no panics.
		if items, err := decodeItems(rows, 0, int64(len(ps))); err == nil && len(items) != len(ps) {
			t.Fatalf("%d items from %d payloads", len(items), len(ps))
		}
		_, _ = decodeOutbox(rows)
	})
}
