package dsql

import (
	"context"
	"fmt"

	"github.com/infinity-runtime/infinity"
)

// chunkQuery reads the thread's length (nil for an unknown thread) and
// chunk rows in one statement: rows of a LEFT JOIN from threads, where a
// thread without matching rows gives one row of NULLs.
func (s *Store) chunkQuery(ctx context.Context, op, sql string, args ...any) (*int64, []chunkRow, error) {
	var length *int64
	var rows []chunkRow
	err := s.do(ctx, func() error {
		length, rows = nil, rows[:0]
		res, err := s.db.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer res.Close()
		for res.Next() {
			var n int64
			var key *int64
			var chunk, chunks *int32
			var data []byte
			if err := res.Scan(&n, &key, &chunk, &chunks, &data); err != nil {
				return err
			}
			length = &n
			if key != nil && chunk != nil && chunks != nil {
				rows = append(rows, chunkRow{key: *key, chunk: *chunk, chunks: *chunks, data: data})
			}
		}
		return res.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return length, rows, nil
}

// Items returns the thread's own items with positions in [from, to). A
// negative to, or one past the end, means the end; a from past the end or a
// to before from gives no items. A negative from is ErrInvalid.
func (s *Store) Items(ctx context.Context, id infinity.ThreadID, from, to int) ([]infinity.Item, error) {
	op := fmt.Sprintf("items %s [%d,%d)", id, from, to)
	if from < 0 {
		return nil, fmt.Errorf("%s: negative from: %w", op, infinity.ErrInvalid)
	}
	upper := int64(to)
	if to < 0 {
		upper = -1 // the thread's length
	}
	length, rows, err := s.chunkQuery(ctx, op, `SELECT t.length, i.idx, i.chunk, i.chunks, i.payload
		FROM threads t LEFT JOIN items i ON i.thread_id = t.id AND i.idx >= $2
			AND i.idx < (CASE WHEN $3::bigint < 0 OR $3::bigint > t.length THEN t.length ELSE $3::bigint END)
		WHERE t.id = $1 ORDER BY i.idx, i.chunk`, string(id), int64(from), upper)
	if err != nil {
		return nil, err
	}
	if length == nil {
		return nil, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	end := *length
	if to >= 0 && int64(to) < end {
		end = int64(to)
	}
	return decodeItems(rows, int64(from), end)
}

// decodeItems reassembles and decodes the items [from, to) from their
// chunk rows; a missing or undecodable item is an error, never skipped.
func decodeItems(rows []chunkRow, from, to int64) ([]infinity.Item, error) {
	ps, err := assemble(rows)
	if err != nil {
		return nil, err
	}
	if want := max(to-from, 0); int64(len(ps)) != want {
		return nil, fmt.Errorf("items [%d,%d): %d stored: %w", from, to, len(ps), errCorrupt)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	out := make([]infinity.Item, len(ps))
	for i, p := range ps {
		if p.key != from+int64(i) {
			return nil, fmt.Errorf("item %d found at position %d: %w", p.key, from+int64(i), errCorrupt)
		}
		if out[i], err = decode[infinity.Item](p, "item"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Outbox returns the thread's unsent outgoing entries in commit order.
func (s *Store) Outbox(ctx context.Context, id infinity.ThreadID) ([]infinity.Outgoing, error) {
	op := "outbox " + string(id)
	length, rows, err := s.chunkQuery(ctx, op, `SELECT t.length, o.seq, o.chunk, o.chunks, o.payload
		FROM threads t LEFT JOIN outbox o ON o.thread_id = t.id
		WHERE t.id = $1 ORDER BY o.seq, o.chunk`, string(id))
	if err != nil {
		return nil, err
	}
	if length == nil {
		return nil, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	return decodeOutbox(rows)
}

func decodeOutbox(rows []chunkRow) ([]infinity.Outgoing, error) {
	ps, err := assemble(rows)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	out := make([]infinity.Outgoing, len(ps))
	for i, p := range ps {
		if out[i], err = decode[infinity.Outgoing](p, "outgoing"); err != nil {
			return nil, err
		}
	}
	return out, nil
}
