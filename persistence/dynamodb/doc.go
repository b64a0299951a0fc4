// Package dynamodb is the Amazon DynamoDB implementation of
// infinity.StateStore (and infinity.StateDeleter): the per-thread dedup
// marks and versioned state record of the runtime, for deployments that run
// on AWS.
//
// It imports the AWS SDK for Go v2 (DynamoDB client and types) and the root
// package only; callers pass a *dynamodb.Client or anything with the methods
// of Client.
//
// # Table layout
//
// One table, partition key pk (S) and sort key sk (S). Everything of a
// thread lives in the partition pk = "thread#<id>":
//
//	sk "state"               v (N) version, meta (B) metadata JSON,
//	                         subs (L of S) subscription ids in order,
//	                         choices (L of M{id, h}) choice ids in order with
//	                         a hash of each choice's body
//	sk "state#sub#<call id>" one per active subscription
//	sk "state#choice#<id>"   body (S): the pending choice as JSON
//	sk "done#<msg id>"       exp (N) expiry in Unix ms on the store's clock,
//	                         ttl (N) Unix seconds for DynamoDB's TTL: the
//	                         later of exp and real now+ttl, since TTL
//	                         deletion runs on real time
//
// The state record is spread over several items so that no item grows with
// the life of a thread: processed marks are one small item each, deleted by
// DynamoDB's TTL (which is lazy, so Processed also compares exp with the
// store's clock), and a state holds at most MaxEntries subscriptions and
// choices. Everything a Load needs shares the "state" prefix, so Load is one
// Query that never reads processed marks. The state item keeps the ordered
// ids (Save needs them to delete what a new state drops, and Load needs the
// order; the subscription items repeat the list so that a subscription can
// be looked up by key without reading the state) and the body hashes (Save skips rewriting unchanged choices, and
// Load detects a Query that saw half of a concurrent transaction).
//
// Save is one TransactWriteItems guarded by a condition on the state item's
// version; MarkProcessed is BatchWriteItem in chunks of 25. The store is an
// infinity.StateDeleter too: DeleteThreads deletes a thread's state items
// in one TransactWriteItems guarded the same way, then its processed marks,
// found by a Query of the "done#" prefix, with BatchWriteItem. CreateTable
// makes the table for tests and local harnesses.
package dynamodb
