package dsql

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/jackc/pgx/v5"
)

// write sends every write of a checked commit in one batch. The length
// update is conditioned on the expected length, so the transaction can
// never append after a concurrent commit.
func (st *commitState) write(ctx context.Context, tx pgx.Tx, c infinity.Commit, p *plan) error {
	self := st.self
	b := &pgx.Batch{}

	// Outbox entries already waiting are dropped: the first one wins.
	var out rowSet
	var outIDs []string
	seq := self.outboxSeq
	for _, o := range p.outbox {
		if st.sent[o.id] {
			continue
		}
		seq++
		for range o.pieces {
			outIDs = append(outIDs, o.id)
		}
		out.add(seq, o.pieces)
	}

	newLen := int64(c.Expected + len(c.Items))
	update := `UPDATE threads SET length = $2, outbox_seq = $3 WHERE id = $1 AND length = $4`
	if c.Summary != nil {
		update = `UPDATE threads SET length = $2, outbox_seq = $3, compacted = true WHERE id = $1 AND length = $4`
	}
	b.Queue(update, string(c.Thread), newLen, seq, int64(c.Expected))
	if len(p.items.key) > 0 {
		b.Queue(`INSERT INTO items (thread_id, idx, chunk, chunks, payload)
			SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::int[], $5::bytea[])`,
			string(c.Thread), p.items.key, p.items.chunk, p.items.chunks, p.items.data)
	}
	if len(c.Applied) > 0 {
		applied := make([]string, len(c.Applied))
		for i, m := range c.Applied {
			applied[i] = string(m)
		}
		b.Queue(`INSERT INTO applied (thread_id, msg_id) SELECT $1, * FROM unnest($2::text[])`, string(c.Thread), applied)
	}
	if len(outIDs) > 0 {
		b.Queue(`INSERT INTO outbox (thread_id, id, chunk, seq, chunks, payload)
			SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[], $5::int[], $6::bytea[])`,
			string(c.Thread), outIDs, out.chunk, out.key, out.chunks, out.data)
	}
	if c.Summary != nil {
		// A newer summary at the same position (a summary-only commit
		// after another) replaces the older one, all its pieces.
		var sum rowSet
		sum.add(int64(c.Summary.Position), p.summary)
		b.Queue(`DELETE FROM summaries WHERE thread_id = $1 AND pos = $2`, string(c.Thread), int64(c.Summary.Position))
		b.Queue(`INSERT INTO summaries (thread_id, pos, chunk, chunks, payload)
			SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::int[], $5::bytea[])`,
			string(c.Thread), sum.key, sum.chunk, sum.chunks, sum.data)
	}
	nCounters := 0
	if len(c.Create) > 0 {
		nCounters = st.queueCreate(b, c.Create)
	}
	if len(c.Close) > 0 {
		ids := make([]string, len(c.Close))
		for i, id := range c.Close {
			ids[i] = string(id)
		}
		b.Queue(`UPDATE threads SET closed = true WHERE id = ANY($1::text[])`, ids)
	}

	br := tx.SendBatch(ctx, b)
	defer br.Close()
	tag, err := br.Exec()
	if err != nil {
		return fmt.Errorf("commit %s: update length: %w", c.Thread, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("commit %s: length moved past %d: %w", c.Thread, c.Expected, infinity.ErrConflict)
	}
	for i := 1; i < b.Len(); i++ {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("commit %s: write (statement %d of %d, %d counter updates): %w", c.Thread, i+1, b.Len(), nCounters, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("commit %s: write: %w", c.Thread, err)
	}
	return nil
}

// queueCreate queues the inserts of created threads and the updates of
// their existing parents' child counters; it returns how many counters it
// updates.
func (st *commitState) queueCreate(b *pgx.Batch, create []infinity.ThreadInfo) int {
	n := len(create)
	var (
		id, parent, root, anc, call, agent = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		model                              = make([]string, n)
		order, childIdx                    = make([]int64, n), make([]int64, n)
		kind                               = make([]int16, n)
		created                            = make([]time.Time, n)
	)
	fresh := map[infinity.ThreadID]*threadState{}
	touched := map[infinity.ThreadID]*threadState{}
	for i, info := range create {
		p := st.threads[info.Parent]
		if p == nil {
			p = fresh[info.Parent] // checked: created earlier in this commit
		} else {
			touched[info.Parent] = p
		}
		a := string(info.Parent)
		if p.ancestors != "" {
			a = p.ancestors + " " + a
		}
		childIdx[i] = p.children
		p.children++
		fresh[info.ID] = &threadState{root: info.Root, ancestors: a}
		id[i], parent[i], root[i], anc[i] = string(info.ID), string(info.Parent), string(info.Root), a
		call[i], agent[i], order[i], kind[i] = info.SpawnCallID, info.Agent, int64(info.SpawnOrder), int16(info.Kind)
		model[i] = info.Model
		created[i] = info.Created
	}
	children := make([]int64, n)
	for i, info := range create {
		children[i] = fresh[info.ID].children
	}
	b.Queue(`INSERT INTO threads (id, parent, root, ancestors, spawn_order, spawn_call_id, kind, agent, created, child_idx,
			children, model, closed, compacted, length, outbox_seq)
		SELECT *, false, false, 0, 0 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
			$7::smallint[], $8::text[], $9::timestamptz[], $10::bigint[], $11::bigint[], $12::text[])`,
		id, parent, root, anc, order, call, kind, agent, created, childIdx, children, model)
	// In a fixed order, so that racing commits on PostgreSQL do not deadlock.
	for _, pid := range slices.Sorted(maps.Keys(touched)) {
		b.Queue(`UPDATE threads SET children = $2 WHERE id = $1`, string(pid), touched[pid].children)
	}
	return len(touched)
}
