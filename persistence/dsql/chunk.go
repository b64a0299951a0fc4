package dsql

import (
	"errors"
	"fmt"
)

// split cuts a payload into pieces of at most size bytes; an empty payload
// is one empty piece. The pieces share b's memory.
func split(b []byte, size int) [][]byte {
	if size <= 0 || len(b) <= size {
		return [][]byte{b}
	}
	out := make([][]byte, 0, (len(b)+size-1)/size)
	for len(b) > size {
		out = append(out, b[:size:size])
		b = b[size:]
	}
	return append(out, b)
}

// chunkRow is one stored row of a payload: piece chunk of chunks.
type chunkRow struct {
	key    int64 // the item index or the outbox sequence number
	chunk  int32
	chunks int32
	data   []byte
}

// payload is a reassembled payload and its key.
type payload struct {
	key  int64
	data []byte
}

var errCorrupt = errors.New("corrupt chunked payload")

// assemble puts payloads back together from rows ordered by (key, chunk).
// Every payload must be complete: pieces 0..chunks-1, each naming the same
// count. A gap is reported, never skipped.
func assemble(rows []chunkRow) ([]payload, error) {
	var out []payload
	for i := 0; i < len(rows); {
		r := rows[i]
		if r.chunk != 0 || r.chunks < 1 || int64(r.chunks) > int64(len(rows)-i) {
			return nil, fmt.Errorf("key %d: piece %d of %d at row %d: %w", r.key, r.chunk, r.chunks, i, errCorrupt)
		}
		if r.chunks == 1 {
			out = append(out, payload{r.key, r.data})
			i++
			continue
		}
		size := 0
		for j := range int(r.chunks) {
			x := rows[i+j]
			if x.key != r.key || x.chunk != int32(j) || x.chunks != r.chunks {
				return nil, fmt.Errorf("key %d: piece %d of %d at row %d: %w", x.key, x.chunk, x.chunks, i+j, errCorrupt)
			}
			size += len(x.data)
		}
		buf := make([]byte, 0, size)
		for j := range int(r.chunks) {
			buf = append(buf, rows[i+j].data...)
		}
		out = append(out, payload{r.key, buf})
		i += int(r.chunks)
	}
	return out, nil
}
