// Package dsql is the Amazon Aurora DSQL implementation of
// infinity.ConversationStore, written against pgx/v5. It runs unchanged on
// PostgreSQL 15, which the tests use.
//
// The schema is DSQL-safe by construction: no foreign keys, sequences,
// triggers or temporary tables; one DDL statement per transaction, never
// mixed with DML; secondary indexes made with CREATE INDEX ASYNC on DSQL.
// Migrate creates it once, at deploy or start, never per call:
//
//	schema_migrations(version PK, name, applied_at)
//	threads(id PK, parent, root, ancestors, spawn_order, spawn_call_id,
//	        kind, agent, closed, created, child_idx, children, length,
//	        outbox_seq, model, compacted)   index threads_parent(parent, child_idx)
//	                                        index threads_root(root)
//	items(thread_id, idx, chunk, chunks, payload)   PK (thread_id, idx, chunk)
//	applied(thread_id, msg_id)                     PK (thread_id, msg_id)
//	outbox(thread_id, id, chunk, seq, chunks, payload) PK (thread_id, id, chunk)
//	summaries(thread_id, pos, chunk, chunks, payload)  PK (thread_id, pos, chunk)
//
// threads.model and threads.compacted were added by ALTER TABLE (DSQL adds
// columns without defaults), so rows written before hold NULL there, read
// as "" and false.
//
// threads.length is the thread's own history length; a Commit updates it
// with "WHERE length = expected" in the same transaction that writes the
// items, so of two racing commits exactly one wins (the loser sees a
// serialization failure, SQLSTATE 40001, retries and then reports
// infinity.ErrConflict). children and outbox_seq are per-thread counters
// that order children and outbox entries without sequences; ancestors
// (space-separated ids, root first) lets Lineage run as one query.
//
// A commit's compaction summary is written in the commit's transaction,
// keyed by its position (the thread's length at the commit), and sets
// threads.compacted; a later summary at the same position (a summary-only
// commit after another) replaces it. A commit without a summary costs no
// extra statement. Summary reads the newest one below a bound in one query.
//
// The store is an infinity.TreeDeleter: DeleteTree deletes a closed tree
// (found through threads_root) with all its rows in one transaction. A tree
// with more rows than one DSQL transaction may delete goes in several,
// data rows first and the root's row last, so that a DeleteTree that
// fails midway leaves a closed, still deletable tree and another call
// finishes it.
//
// Payloads (JSON of infinity.Item, infinity.Outgoing and infinity.Summary)
// are split into chunks below DSQL's 1 MiB per-column limit and put back
// together on read.
// A commit that would pass DSQL's per-transaction limits (3000 rows, 10 MiB)
// is refused with infinity.ErrInvalid before anything is sent.
//
// TokenGenerator makes the IAM authentication token DSQL takes as a
// password (a SigV4-presigned DbConnect URL) and caches it until shortly
// before it expires; its BeforeConnect method plugs into
// pgxpool.Config.BeforeConnect.
//
// The package imports the root package, persistence/internal/model (id,
// commit and deletion checks), pgx/v5 and the AWS SDK's v4 signer, aws and config packages.
package dsql
