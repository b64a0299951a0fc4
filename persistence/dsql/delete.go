package dsql

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
	"github.com/jackc/pgx/v5"
)

var _ infinity.TreeDeleter = (*Store)(nil)

// dataTable is a table of per-thread rows: its primary key is thread_id
// followed by keys.
type dataTable struct {
	name string
	keys string
}

// dataTables are every table that holds rows of a thread besides its row
// in threads. A new such table must be added here, or DeleteTree leaves
// its rows behind.
var dataTables = [...]dataTable{
	{"items", "idx, chunk"},
	{"applied", "msg_id"},
	{"outbox", "id, chunk"},
	{"summaries", "pos, chunk"},
}

// DeleteTree deletes the closed tree whose root is root: the thread rows
// of every thread whose root column names it (found through the
// threads_root index) and all their items, applied ids, outbox entries and
// summaries. Children links need no deleting: they are the children's own
// rows (parent, child_idx). It returns the deleted ids, root first, then
// depth first in creation order.
//
// Errors, checked on the root's row before anything is deleted:
// ErrNotFound for an unknown id, ErrInvalid for a thread that is not a root
// (model.CheckDeletable), ErrConflict for a root that is not closed.
//
// A tree whose rows (thread rows and data rows together) fit in one
// transaction (Limits.Rows, 3000 on DSQL) goes in one transaction that
// reads the root, the tree and its row counts and deletes exactly that, so
// the deletion is atomic; a concurrent commit to one of its threads (an
// open child of a closed root) writes a row the deletion writes too, so
// one of the two fails to serialize and the deletion is tried again on
// fresh data (as Commit is, with the Retry policy).
//
// A larger tree cannot go in one transaction on DSQL. It is deleted in a
// series of transactions, each of which reads the root (checking it again),
// the tree and its row counts afresh and deletes at most Limits.Rows rows:
//
//  1. data rows first, deepest threads first (the reverse of depth-first
//     creation order), the root's last; a thread with more rows than a
//     transaction allows is emptied over several;
//  2. then, only for a tree of more threads than one transaction allows,
//     the thread rows that cannot wait for the last transaction, again
//     descendants before their ancestors, so that what is left is always
//     the root with a connected part of its tree;
//  3. last, in one transaction, whatever is left: the remaining thread
//     rows with the root's row.
//
// The root's row goes in the last transaction, so a failure or crash
// midway leaves a closed root whose tree is still deletable, only emptied
// in part (its readers may find items missing); DeleteTree again finishes
// it. Because thread rows are kept to the end, the call that finishes
// returns every id of the tree unless it has more threads than one
// transaction deletes (then ids deleted by the interrupted call are not
// returned again). Limits.Bytes is not checked: a deletion sends no
// payloads.
func (s *Store) DeleteTree(ctx context.Context, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	var ids []infinity.ThreadID
	seen := map[string]bool{}
	for {
		var order []string
		var done bool
		err := s.do(ctx, func() error {
			return s.inTx(ctx, "delete tree "+string(root), func(tx pgx.Tx) error {
				var err error
				order, done, err = s.deleteStep(ctx, tx, root)
				return err
			})
		})
		if err != nil {
			return nil, err
		}
		// Later steps see what is left of the tree the first one saw, and
		// any thread a racing commit created meanwhile.
		for _, id := range order {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, infinity.ThreadID(id))
			}
		}
		if done {
			return ids, nil
		}
	}
}

// treeState is what one deletion step reads: the tree's ids, root first,
// depth first in creation order, and its data rows per table and thread.
type treeState struct {
	order  []string
	counts [len(dataTables)]map[string]int64
}

// deleteStep reads the tree in tx and deletes as much of it as one
// transaction may; done reports that the root's row went, and with it the
// rest of the tree.
func (s *Store) deleteStep(ctx context.Context, tx pgx.Tx, root infinity.ThreadID) (order []string, done bool, err error) {
	st, err := readTree(ctx, tx, root)
	if err != nil {
		return nil, false, err
	}
	p := planDelete(st, s.limits.Rows)
	b := &pgx.Batch{}
	for i, t := range dataTables {
		if len(p.full[i]) > 0 {
			b.Queue(`DELETE FROM `+t.name+` WHERE thread_id = ANY($1::text[])`, p.full[i])
		}
	}
	if p.part != nil {
		t := dataTables[p.part.table]
		b.Queue(`DELETE FROM `+t.name+` WHERE thread_id = $1 AND (`+t.keys+`) IN (
				SELECT `+t.keys+` FROM `+t.name+` WHERE thread_id = $1 ORDER BY `+t.keys+` LIMIT $2)`,
			p.part.id, p.part.rows)
	}
	if len(p.threads) > 0 {
		b.Queue(`DELETE FROM threads WHERE id = ANY($1::text[])`, p.threads)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, false, fmt.Errorf("delete tree %s: delete %d rows: %w", root, p.rows, err)
	}
	return st.order, p.done, nil
}

// readTree reads, in one round trip, the root's row (checked with
// model.CheckDeletable), the ids of its tree and how many data rows each
// thread of the tree has in each table.
func readTree(ctx context.Context, tx pgx.Tx, root infinity.ThreadID) (*treeState, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+threadCols+` FROM threads WHERE id = $1`, string(root))
	b.Queue(`SELECT id, parent, child_idx FROM threads WHERE root = $1`, string(root))
	for _, t := range dataTables {
		b.Queue(`SELECT thread_id, count(*) FROM `+t.name+`
			WHERE thread_id IN (SELECT id FROM threads WHERE root = $1) GROUP BY thread_id`, string(root))
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	rows, _ := br.Query()
	info, err := pgx.CollectRows(rows, scanInfo)
	if err != nil {
		return nil, fmt.Errorf("delete tree %s: read: %w", root, err)
	}
	if len(info) == 0 {
		return nil, fmt.Errorf("delete tree %s: %w", root, infinity.ErrNotFound)
	}
	if err := model.CheckDeletable(info[0].info); err != nil {
		return nil, err
	}
	rows, _ = br.Query()
	tree, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (treeRow, error) {
		var t treeRow
		return t, r.Scan(&t.id, &t.parent, &t.idx)
	})
	if err != nil {
		return nil, fmt.Errorf("delete tree %s: read the tree: %w", root, err)
	}
	st := &treeState{order: preorder(string(root), tree)}
	for i, t := range dataTables {
		st.counts[i] = map[string]int64{}
		rows, _ := br.Query()
		var id string
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { st.counts[i][id] = n; return nil }); err != nil {
			return nil, fmt.Errorf("delete tree %s: count %s: %w", root, t.name, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("delete tree %s: read: %w", root, err)
	}
	return st, nil
}

// treeRow is a thread of a tree and its place under its parent.
type treeRow struct {
	id, parent string
	idx        int64
}

// preorder orders a tree's threads root first, then depth first in
// creation order (child_idx). Threads of the tree no parent link reaches
// (none, unless rows were lost) come last, by id, so they are deleted too.
func preorder(root string, tree []treeRow) []string {
	kids := map[string][]treeRow{}
	for _, t := range tree {
		if t.id != root {
			kids[t.parent] = append(kids[t.parent], t)
		}
	}
	for _, k := range kids {
		slices.SortFunc(k, func(a, b treeRow) int { return cmp.Or(cmp.Compare(a.idx, b.idx), cmp.Compare(a.id, b.id)) })
	}
	out := make([]string, 0, len(tree)+1)
	seen := make(map[string]bool, len(tree)+1)
	stack := []string{root}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue // a cycle: unreachable, unless rows were corrupted
		}
		seen[id] = true
		out = append(out, id)
		k := kids[id]
		for i := len(k) - 1; i >= 0; i-- {
			stack = append(stack, k[i].id)
		}
	}
	var lost []string
	for _, t := range tree {
		if !seen[t.id] {
			seen[t.id] = true
			lost = append(lost, t.id)
		}
	}
	slices.Sort(lost)
	return append(out, lost...)
}

// deletePlan is what one deletion step deletes.
type deletePlan struct {
	full    [len(dataTables)][]string // per table, threads whose rows all go
	part    *partDelete               // some rows of one thread in one table
	threads []string                  // thread rows
	rows    int                       // rows deleted in all
	done    bool                      // the root's row goes: the tree is gone
}

// partDelete deletes the first rows rows (in key order) of a thread in a
// table.
type partDelete struct {
	table int
	id    string
	rows  int64
}

// planDelete chooses the rows one step deletes, at most limit (see
// DeleteTree): everything if it fits; else data rows, deepest threads
// first, and, once they are all gone, thread rows of the deepest threads,
// as many as must go before the last step (whose limit holds the rest).
func planDelete(st *treeState, limit int) deletePlan {
	var p deletePlan
	budget := int64(max(limit, 1))
	var data int64
	for _, c := range st.counts {
		for _, n := range c {
			data += n
		}
	}
	threads := int64(len(st.order))
	if data+threads <= budget {
		for i := range dataTables {
			for _, id := range st.order {
				if st.counts[i][id] > 0 {
					p.full[i] = append(p.full[i], id)
				}
			}
		}
		p.threads, p.rows, p.done = st.order, int(data+threads), true
		return p
	}
	// Thread rows past what the last step can hold go early. The root's is
	// never among them: it comes first in st.order.
	early := threads - budget
	for j := len(st.order) - 1; j >= 0; j-- {
		id := st.order[j]
		for i := range dataTables {
			n := st.counts[i][id]
			if n == 0 {
				continue
			}
			if n > budget {
				p.part = &partDelete{table: i, id: id, rows: budget}
				p.rows += int(budget)
				return p
			}
			p.full[i] = append(p.full[i], id)
			p.rows += int(n)
			if budget -= n; budget == 0 {
				return p
			}
		}
	}
	// Every data row goes in this step; the rest of the budget takes
	// thread rows.
	if n := min(budget, early); n > 0 {
		p.threads = st.order[threads-n:]
		p.rows += int(n)
	}
	return p
}
