package dynamodb

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

// batchSize is BatchWriteItem's limit of items per call.
const batchSize = 25

// Processed reports whether msg was marked processed for the thread and the
// mark is in force on the store's clock. It is one consistent GetItem. A
// mark past its expiry that DynamoDB's TTL has not deleted yet counts as not
// processed.
func (s *StateStore) Processed(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	pk, err := threadKey("processed", id)
	if err != nil {
		return false, err
	}
	sk, err := sortKey("processed "+string(id), "message id", skDonePrefix, string(msg))
	if err != nil {
		return false, err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(pk, sk),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#exp"),
		ExpressionAttributeNames: map[string]string{"#exp": attrExp},
	})
	if err != nil {
		return false, fmt.Errorf("processed %s %s: %w", id, msg, err)
	}
	if out.Item == nil {
		return false, nil
	}
	exp, err := numOf(out.Item, attrExp)
	if err != nil {
		return false, fmt.Errorf("processed %s %s: %w", id, msg, err)
	}
	return s.clock.Now().UnixMilli() < exp, nil
}

// MarkProcessed records msgs as processed for the thread until ttl from now
// on the store's clock, replacing earlier marks. A ttl that is not positive
// or an empty message id is ErrInvalid. It writes one item per distinct id
// with BatchWriteItem, 25 at a time, and retries unprocessed items with a
// bounded backoff (then ErrRetryable). Chunks already written stay written:
// marking is idempotent, so the caller simply marks again.
func (s *StateStore) MarkProcessed(ctx context.Context, id infinity.ThreadID, msgs []infinity.MessageID, ttl time.Duration) error {
	pk, err := threadKey("mark processed", id)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("mark processed %s: ttl %v: %w", id, ttl, infinity.ErrInvalid)
	}
	// One call must not name a key twice, so repeated ids are written once.
	seen := make(map[infinity.MessageID]bool, len(msgs))
	var sks []string
	for _, m := range msgs {
		sk, err := sortKey("mark processed "+string(id), "message id", skDonePrefix, string(m))
		if err != nil {
			return err
		}
		if !seen[m] {
			seen[m] = true
			sks = append(sks, sk)
		}
	}
	exp := expiryMillis(s.clock.Now(), ttl)
	expAttr, ttlAttr := numAttr(exp), numAttr(deleteAfter(exp, ttl))
	for len(sks) > 0 {
		n := min(len(sks), batchSize)
		reqs := make([]types.WriteRequest, n)
		for i, sk := range sks[:n] {
			item := key(pk, sk)
			item[attrExp], item[attrTTL] = expAttr, ttlAttr
			reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
		}
		if err := s.batchWrite(ctx, reqs); err != nil {
			return fmt.Errorf("mark processed %s: %w", id, err)
		}
		sks = sks[n:]
	}
	return nil
}

// batchWrite writes reqs, retrying what DynamoDB leaves unprocessed.
func (s *StateStore) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for i := 0; ; i++ {
		out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.table: reqs},
		})
		if err != nil {
			return err
		}
		reqs = out.UnprocessedItems[s.table]
		if len(reqs) == 0 {
			return nil
		}
		if i+1 >= s.retry.attempts {
			return fmt.Errorf("%d items still unprocessed after %d attempts: %w", len(reqs), i+1, infinity.ErrRetryable)
		}
		if err := s.retry.wait(ctx, i); err != nil {
			return err
		}
	}
}

// expiryMillis returns now+ttl in Unix milliseconds, rounded up so that a
// mark never ends early, and capped instead of wrapping around for a ttl
// meant as "forever". Processed compares now.UnixMilli() < expiry, which
// for whole milliseconds is exactly now < now0+ttl.
func expiryMillis(now time.Time, ttl time.Duration) int64 {
	ns := now.UnixNano()
	if ns > 0 && int64(ttl) > math.MaxInt64-ns {
		return math.MaxInt64 / int64(time.Millisecond)
	}
	return ceilDiv(ns+int64(ttl), int64(time.Millisecond))
}

// deleteAfter returns the ttl attribute of a mark expiring at exp (Unix ms
// on the store's clock): when DynamoDB may delete it, in Unix seconds.
// DynamoDB's TTL runs on real time, so this is the later of exp and real
// now+ttl: a store clock behind real time (a test clock, a skewed host)
// must not get marks deleted while they are still in force on it.
func deleteAfter(exp int64, ttl time.Duration) int64 {
	wall := expiryMillis(time.Now(), ttl)
	return ceilDiv(max(exp, wall), 1000)
}

// ceilDiv returns a/b rounded towards +∞, for b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}
