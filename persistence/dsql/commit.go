package dsql

import (
	"context"
	"errors"
	"fmt"
	"github.com/infinity-runtime/infinity/persistence/internal/model"

	"github.com/infinity-runtime/infinity"
	"github.com/jackc/pgx/v5"
)

// Commit applies one slice in one transaction: BEGIN, one batch of reads
// for the checks, one batch of writes, COMMIT. The checks run in this order
// and the first that fails decides the error; nothing changes on error:
//
//   - c.Thread unknown: ErrNotFound
//   - c.Thread closed: ErrClosed
//   - c.Expected is not the thread's length: ErrConflict
//   - an id in c.Applied was applied before or is repeated: ErrApplied
//   - a thread in c.Create exists or is repeated: ErrExists
//   - a thread in c.Create has a malformed id, a parent that neither exists
//     nor is created earlier in c.Create, or a root other than its
//     parent's: ErrInvalid
//   - an id in c.Close is neither a thread nor in c.Create: ErrNotFound
//   - an empty id in c.Applied, a c.Summary whose Position is not
//     c.Expected or whose Covers is outside [0, c.Expected], an empty id in
//     c.Outbox, or a commit past the transaction limits (rows, bytes):
//     ErrInvalid
//
// The length is updated only where it still is c.Expected, so of two racing
// commits one wins; the other's transaction fails to serialize, is tried
// again and then reports ErrConflict. Serialization failures and transient
// connection errors are retried with jittered backoff; when the retries run
// out the error wraps infinity.ErrRetryable.
func (s *Store) Commit(ctx context.Context, c infinity.Commit) (int, error) {
	p, err := s.makePlan(c)
	if err != nil {
		return 0, err
	}
	err = s.do(ctx, func() error {
		return s.inTx(ctx, "commit "+string(c.Thread), func(tx pgx.Tx) error {
			st, err := readCommitState(ctx, tx, c)
			if err != nil {
				return fmt.Errorf("commit %s: read: %w", c.Thread, err)
			}
			if err := st.check(c); err != nil {
				return err
			}
			if err := s.limitErr(c, p); err != nil {
				return err
			}
			return st.write(ctx, tx, c, p)
		})
	})
	if err != nil {
		return 0, err
	}
	return c.Expected + len(c.Items), nil
}

// threadState is what a commit reads of one thread.
type threadState struct {
	root      infinity.ThreadID
	ancestors string
	closed    bool
	length    int64
	children  int64
	outboxSeq int64
}

// commitState is everything Commit's checks need, read in one round trip.
type commitState struct {
	self    *threadState // nil: c.Thread unknown
	applied map[infinity.MessageID]bool
	threads map[infinity.ThreadID]*threadState // of c.Create, their parents and c.Close
	sent    map[string]bool                    // ids of c.Outbox already waiting
}

func readCommitState(ctx context.Context, tx pgx.Tx, c infinity.Commit) (*commitState, error) {
	st := &commitState{applied: map[infinity.MessageID]bool{}, threads: map[infinity.ThreadID]*threadState{}, sent: map[string]bool{}}
	var ids []string
	for _, info := range c.Create {
		ids = append(ids, string(info.ID), string(info.Parent))
	}
	for _, id := range c.Close {
		ids = append(ids, string(id))
	}
	outIDs := make([]string, len(c.Outbox))
	for i, o := range c.Outbox {
		outIDs[i] = o.ID
	}
	applied := make([]string, len(c.Applied))
	for i, m := range c.Applied {
		applied[i] = string(m)
	}

	b := &pgx.Batch{}
	b.Queue(`SELECT root, ancestors, closed, length, children, outbox_seq FROM threads WHERE id = $1`, string(c.Thread))
	if len(applied) > 0 {
		b.Queue(`SELECT msg_id FROM applied WHERE thread_id = $1 AND msg_id = ANY($2::text[])`, string(c.Thread), applied)
	}
	if len(ids) > 0 {
		b.Queue(`SELECT id, root, ancestors, closed, length, children, outbox_seq FROM threads WHERE id = ANY($1::text[])`, ids)
	}
	if len(outIDs) > 0 {
		b.Queue(`SELECT DISTINCT id FROM outbox WHERE thread_id = $1 AND id = ANY($2::text[])`, string(c.Thread), outIDs)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	var self threadState
	switch err := br.QueryRow().Scan(&self.root, &self.ancestors, &self.closed, &self.length, &self.children, &self.outboxSeq); {
	case errors.Is(err, pgx.ErrNoRows):
		return st, nil
	case err != nil:
		return nil, err
	}
	st.self = &self
	if len(applied) > 0 {
		rows, _ := br.Query()
		msgs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			st.applied[infinity.MessageID(m)] = true
		}
	}
	if len(ids) > 0 {
		rows, _ := br.Query()
		for rows.Next() {
			var id string
			var t threadState
			if err := rows.Scan(&id, &t.root, &t.ancestors, &t.closed, &t.length, &t.children, &t.outboxSeq); err != nil {
				rows.Close()
				return nil, err
			}
			st.threads[infinity.ThreadID(id)] = &t
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if len(outIDs) > 0 {
		rows, _ := br.Query()
		sent, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		for _, id := range sent {
			st.sent[id] = true
		}
	}
	st.threads[c.Thread] = &self
	return st, br.Close()
}

// check runs the checks in the documented order (the memory model's,
// shared through model.CheckCommit).
func (st *commitState) check(c infinity.Commit) error { return model.CheckCommit(c, st) }

// Thread is the commit state as a model.CommitView.
func (st *commitState) Thread(id infinity.ThreadID) (infinity.ThreadID, bool, int, bool) {
	t := st.threads[id]
	if t == nil {
		return "", false, 0, false
	}
	return t.root, t.closed, int(t.length), true
}

// Applied reports whether msg was applied to the committing thread.
func (st *commitState) Applied(msg infinity.MessageID) bool { return st.applied[msg] }
