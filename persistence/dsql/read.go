package dsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
	"github.com/jackc/pgx/v5"
)

// threadCols are the columns scanInfo reads, in its order.
const threadCols = `id, parent, root, spawn_order, spawn_call_id, kind, agent, closed, created, ancestors, model, compacted`

// scanInfo scans threadCols. model and compacted are NULL in rows written
// before they existed: "" and false.
func scanInfo(row pgx.CollectableRow) (infoRow, error) {
	var r infoRow
	var id, parent, root string
	var kind int16
	var order int64
	var model *string
	var compacted *bool
	err := row.Scan(&id, &parent, &root, &order, &r.info.SpawnCallID, &kind, &r.info.Agent, &r.info.Closed, &r.info.Created, &r.ancestors,
		&model, &compacted)
	r.info.ID, r.info.Parent, r.info.Root = infinity.ThreadID(id), infinity.ThreadID(parent), infinity.ThreadID(root)
	r.info.SpawnOrder, r.info.Kind = int(order), infinity.ThreadKind(kind)
	if model != nil {
		r.info.Model = *model
	}
	r.info.Compacted = compacted != nil && *compacted
	return r, err
}

// infoRow is a thread's info and its ancestors column.
type infoRow struct {
	info      infinity.ThreadInfo
	ancestors string
}

// CreateThread stores a new root thread. A non-root info or a malformed id
// is ErrInvalid; a taken id is ErrExists.
func (s *Store) CreateThread(ctx context.Context, info infinity.ThreadInfo) error {
	if err := model.CheckRoot(info); err != nil {
		return err
	}
	op := "create thread " + string(info.ID)
	var inserted int64
	err := s.do(ctx, func() error {
		tag, err := s.db.Exec(ctx, `INSERT INTO threads (id, parent, root, ancestors, spawn_order, spawn_call_id, kind, agent,
				model, closed, compacted, created, child_idx, children, length, outbox_seq)
			VALUES ($1, '', $1, '', $2, $3, $4, $5, $6, false, false, $7, 0, 0, 0, 0) ON CONFLICT (id) DO NOTHING`,
			string(info.ID), int64(info.SpawnOrder), info.SpawnCallID, int16(info.Kind), info.Agent, info.Model, info.Created)
		inserted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if inserted == 0 {
		return fmt.Errorf("%s: %w", op, infinity.ErrExists)
	}
	return nil
}

// query runs a read with retries of transient errors and collects its rows.
func query[T any](ctx context.Context, s *Store, op string, fn pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := s.do(ctx, func() error {
		rows, err := s.db.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, fn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// Thread returns a thread's info.
func (s *Store) Thread(ctx context.Context, id infinity.ThreadID) (infinity.ThreadInfo, error) {
	op := "thread " + string(id)
	rows, err := query(ctx, s, op, scanInfo, `SELECT `+threadCols+` FROM threads WHERE id = $1`, string(id))
	if err != nil {
		return infinity.ThreadInfo{}, err
	}
	if len(rows) == 0 {
		return infinity.ThreadInfo{}, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	return rows[0].info, nil
}

// Lineage returns the thread's ancestors and the thread, root first, in
// one query: the thread's ancestors column names them.
func (s *Store) Lineage(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	op := "lineage " + string(id)
	rows, err := query(ctx, s, op, scanInfo, `SELECT `+threadCols+` FROM threads
		WHERE id = ANY(string_to_array((SELECT ancestors || ' ' || id FROM threads WHERE id = $1), ' '))`, string(id))
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(rows, func(r infoRow) bool { return r.info.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	var chain []string
	if a := rows[i].ancestors; a != "" {
		chain = strings.Split(a, " ")
	}
	chain = append(chain, string(id))
	out := make([]infinity.ThreadInfo, 0, len(chain))
	for _, a := range chain {
		j := slices.IndexFunc(rows, func(r infoRow) bool { return string(r.info.ID) == a })
		if j < 0 {
			// Unreachable: DeleteTree deletes descendants before (or
			// with) their ancestors.
			return nil, fmt.Errorf("%s: ancestor %s missing: %w", op, a, infinity.ErrNotFound)
		}
		out = append(out, rows[j].info)
	}
	return out, nil
}

// Children returns a thread's direct children in creation order.
func (s *Store) Children(ctx context.Context, id infinity.ThreadID) ([]infinity.ThreadInfo, error) {
	op := "children " + string(id)
	rows, err := query(ctx, s, op, scanInfo, `SELECT `+threadCols+` FROM (
			SELECT `+threadCols+`, 0 AS o, 0 AS child_idx FROM threads WHERE id = $1
			UNION ALL
			SELECT `+threadCols+`, 1, child_idx FROM threads WHERE parent = $1
		) t ORDER BY o, child_idx`, string(id))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || rows[0].info.ID != id {
		return nil, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	var out []infinity.ThreadInfo
	for _, r := range rows[1:] {
		out = append(out, r.info)
	}
	return out, nil
}

// Len returns how many own items the thread has.
func (s *Store) Len(ctx context.Context, id infinity.ThreadID) (int, error) {
	op := "len " + string(id)
	n, err := query(ctx, s, op, pgx.RowTo[int64], `SELECT length FROM threads WHERE id = $1`, string(id))
	if err != nil {
		return 0, err
	}
	if len(n) == 0 {
		return 0, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	return int(n[0]), nil
}

// Applied reports whether msg was applied by a commit of the thread.
func (s *Store) Applied(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	op := "applied " + string(id)
	ok, err := query(ctx, s, op, pgx.RowTo[bool], `SELECT EXISTS (SELECT 1 FROM applied WHERE thread_id = $1 AND msg_id = $2)
		FROM threads WHERE id = $1`, string(id), string(msg))
	if err != nil {
		return false, err
	}
	if len(ok) == 0 {
		return false, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	return ok[0], nil
}

// MarkSent removes the named entries (all their chunks) from the thread's
// outbox; ids that are not there are ignored.
func (s *Store) MarkSent(ctx context.Context, id infinity.ThreadID, outgoing ...string) error {
	op := "mark sent " + string(id)
	var deleted int64
	if len(outgoing) > 0 {
		err := s.do(ctx, func() error {
			tag, err := s.db.Exec(ctx, `DELETE FROM outbox WHERE thread_id = $1 AND id = ANY($2::text[])`, string(id), outgoing)
			deleted = tag.RowsAffected()
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if deleted > 0 {
		return nil
	}
	// Nothing deleted: an unknown thread must still be ErrNotFound.
	_, err := s.Len(ctx, id)
	if errors.Is(err, infinity.ErrNotFound) {
		return fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	return err
}

// decode unmarshals a reassembled payload.
func decode[T any](p payload, what string) (T, error) {
	var v T
	if err := json.Unmarshal(p.data, &v); err != nil {
		return v, fmt.Errorf("%s %d: %w: %w", what, p.key, errCorrupt, err)
	}
	return v, nil
}

// Summary returns the thread's newest summary with a position below
// before, or nil, in one query: a LEFT JOIN from the thread's row tells an
// unknown thread (no row) from one without such a summary (a row of NULLs).
// Of two summaries at one position the later commit's replaced the other.
func (s *Store) Summary(ctx context.Context, id infinity.ThreadID, before int) (*infinity.Summary, error) {
	op := fmt.Sprintf("summary %s before %d", id, before)
	length, rows, err := s.chunkQuery(ctx, op, `SELECT t.length, m.pos, m.chunk, m.chunks, m.payload
		FROM threads t LEFT JOIN summaries m ON m.thread_id = t.id
			AND m.pos = (SELECT max(pos) FROM summaries WHERE thread_id = $1 AND pos < $2)
		WHERE t.id = $1 ORDER BY m.chunk`, string(id), int64(before))
	if err != nil {
		return nil, err
	}
	if length == nil {
		return nil, fmt.Errorf("%s: %w", op, infinity.ErrNotFound)
	}
	ps, err := assemble(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	switch len(ps) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%s: %d summaries at position %d: %w", op, len(ps), ps[0].key, errCorrupt)
	}
	sum, err := decode[infinity.Summary](ps[0], "summary")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &sum, nil
}
