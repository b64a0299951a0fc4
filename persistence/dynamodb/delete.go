package dynamodb

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

var _ infinity.StateDeleter = (*StateStore)(nil)

// DeleteThreads forgets the threads' saved states and processed marks
// (infinity.StateDeleter); a thread saved afterwards starts again at
// version 1. Ids the store does not hold, including ones it could not hold
// (empty or too long), are ignored, and no ids is a no-op.
//
// For each thread it first deletes the state record: one
// TransactWriteItems of the state item, conditioned on the version just
// read (a concurrent Save makes it read again, bounded, then ErrRetryable),
// and of the subscription and choice items that version names, so that no
// Load or Save ever sees part of a state. Then a consistent Query of the
// thread's processed marks (keys only) feeds BatchWriteItem deletes, 25 at
// a time across threads, unprocessed items retried with a bounded backoff.
// The state goes first because it never expires: after a failure what is
// left is marks, which DynamoDB's TTL deletes anyway, and calling again
// finishes the work. Marks written while the thread is being deleted may
// survive.
func (s *StateStore) DeleteThreads(ctx context.Context, ids []infinity.ThreadID) error {
	if len(ids) == 0 {
		return ctx.Err()
	}
	d := deleter{s: s}
	seen := make(map[infinity.ThreadID]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		pk, err := threadKey("delete", id)
		if err != nil {
			continue // no item has this key
		}
		if err := s.deleteState(ctx, pk); err != nil {
			return fmt.Errorf("delete thread %s: state: %w", id, err)
		}
		if err := d.marks(ctx, pk); err != nil {
			return fmt.Errorf("delete thread %s: processed marks: %w", id, err)
		}
	}
	if err := d.flush(ctx, 1); err != nil {
		return fmt.Errorf("delete threads: processed marks: %w", err)
	}
	return nil
}

// deleteState deletes a thread's state item with the subscription and
// choice items it names, in one transaction conditioned on its version. No
// state item is nothing to do.
func (s *StateStore) deleteState(ctx context.Context, pk types.AttributeValue) error {
	for i := 0; ; i++ {
		ix, err := s.readIndex(ctx, pk)
		if err != nil {
			return err
		}
		if ix.version == 0 {
			return nil
		}
		err = s.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: deletes(s.table, pk, ix)})
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, infinity.ErrConflict):
			return err
		case i+1 >= s.retry.attempts:
			// Not ErrConflict: the caller did not ask for a version.
			return fmt.Errorf("saved concurrently at each of %d attempts: %w", i+1, infinity.ErrRetryable)
		}
		if err := s.retry.wait(ctx, i); err != nil {
			return err
		}
	}
}

// deletes returns the transaction that deletes the state at ix: element 0
// is the state item, guarded by its version (transact relies on it), then
// each subscription and choice item, once.
func deletes(table string, pk types.AttributeValue, ix index) []types.TransactWriteItem {
	out := []types.TransactWriteItem{{Delete: &types.Delete{
		TableName:                 aws.String(table),
		Key:                       key(pk, skState),
		ConditionExpression:       aws.String("#v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": numAttr(int64(ix.version))},
	}}}
	seen := make(map[string]bool, len(ix.subs)+len(ix.choices))
	del := func(sk string) {
		if !seen[sk] {
			seen[sk] = true
			out = append(out, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(table), Key: key(pk, sk)}})
		}
	}
	for _, sub := range ix.subs {
		del(skSubPrefix + sub)
	}
	for _, c := range ix.choices {
		del(skChoicePrefix + c.id)
	}
	return out
}

// deleter deletes processed marks with BatchWriteItem, filling each call
// with up to 25 marks of any of the threads.
type deleter struct {
	s       *StateStore
	pending []types.WriteRequest
}

// marks queues the deletion of every processed mark of the thread, expired
// or not, following the Query's pages, and sends each full batch.
func (d *deleter) marks(ctx context.Context, pk types.AttributeValue) error {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(d.s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :done)"),
		ProjectionExpression:      aws.String("#sk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": pk, ":done": strAttr(skDonePrefix)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		out, err := d.s.client.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			sk, err := strOf(item, attrSK)
			if err != nil {
				return err
			}
			d.pending = append(d.pending, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, sk)}})
		}
		if err := d.flush(ctx, batchSize); err != nil {
			return err
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// flush sends pending deletions, 25 a call, as long as at least least of
// them are pending (1: all of them).
func (d *deleter) flush(ctx context.Context, least int) error {
	for len(d.pending) >= max(least, 1) {
		n := min(len(d.pending), batchSize)
		if err := d.s.batchWrite(ctx, d.pending[:n]); err != nil {
			return err
		}
		d.pending = d.pending[n:]
	}
	return nil
}
