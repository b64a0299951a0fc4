package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

// errTorn: a Query saw part of a concurrent Save's transaction (Query is
// not isolated from transactions item by item).
var errTorn = errors.New("read overlapped a concurrent save")

// Load returns the thread's state and version, or ErrNotFound. It is one
// consistent Query of the thread's "state" items (processed marks are
// outside its key range), repeated, bounded, when it overlapped a
// concurrent Save.
func (s *StateStore) Load(ctx context.Context, id infinity.ThreadID) (infinity.State, infinity.Version, error) {
	pk, err := threadKey("load", id)
	if err != nil {
		return infinity.State{}, 0, err
	}
	for i := 0; ; i++ {
		items, err := s.queryState(ctx, pk)
		if err != nil {
			return infinity.State{}, 0, fmt.Errorf("load %s: %w", id, err)
		}
		st, v, err := decodeState(items)
		switch {
		case err == nil:
			return st, v, nil
		case errors.Is(err, infinity.ErrNotFound):
			return infinity.State{}, 0, fmt.Errorf("load %s: %w", id, err)
		case !errors.Is(err, errTorn):
			return infinity.State{}, 0, fmt.Errorf("load %s: %w", id, err)
		case i+1 >= s.retry.attempts:
			return infinity.State{}, 0, fmt.Errorf("load %s: %w: %w", id, infinity.ErrRetryable, err)
		}
		if err := s.retry.wait(ctx, i); err != nil {
			return infinity.State{}, 0, fmt.Errorf("load %s: %w", id, err)
		}
	}
}

// queryState returns every item of the thread whose sort key starts with
// "state", following pages (a state may pass the 1 MB page size).
func (s *StateStore) queryState(ctx context.Context, pk types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :state)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": pk, ":state": strAttr(skState)},
		ConsistentRead:            aws.Bool(true),
	}
	var items []map[string]types.AttributeValue
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// decodeState assembles a State from a thread's "state" items. No state
// item is ErrNotFound; a choice item missing or holding another body than
// the state item names is errTorn; anything malformed is errCorrupt.
// Subscription items are not read: the state item lists them in order.
func decodeState(items []map[string]types.AttributeValue) (infinity.State, infinity.Version, error) {
	var (
		stateItem map[string]types.AttributeValue
		bodies    = map[string]string{}
	)
	for _, item := range items {
		sk, err := strOf(item, attrSK)
		if err != nil {
			return infinity.State{}, 0, err
		}
		switch {
		case sk == skState:
			stateItem = item
		case strings.HasPrefix(sk, skChoicePrefix):
			body, err := strOf(item, attrBody)
			if err != nil {
				return infinity.State{}, 0, fmt.Errorf("%s: %w", sk, err)
			}
			bodies[strings.TrimPrefix(sk, skChoicePrefix)] = body
		}
	}
	if stateItem == nil {
		return infinity.State{}, 0, infinity.ErrNotFound
	}
	ix, err := parseIndex(stateItem)
	if err != nil {
		return infinity.State{}, 0, fmt.Errorf("state item: %w", err)
	}
	meta, err := metaOf(stateItem)
	if err != nil {
		return infinity.State{}, 0, fmt.Errorf("state item: %w", err)
	}
	st := infinity.State{Subscriptions: ix.subs}
	if len(meta) > 0 {
		st.Metadata = json.RawMessage(meta)
	}
	for _, ref := range ix.choices {
		body, ok := bodies[ref.id]
		if !ok || hashBody(body) != ref.hash {
			return infinity.State{}, 0, fmt.Errorf("choice %q at version %d: %w", ref.id, ix.version, errTorn)
		}
		var c infinity.PendingChoice
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return infinity.State{}, 0, fmt.Errorf("choice %q: %w", ref.id, errors.Join(errCorrupt, err))
		}
		if c.ID != ref.id {
			return infinity.State{}, 0, fmt.Errorf("choice %q holds id %q: %w", ref.id, c.ID, errCorrupt)
		}
		st.Choices = append(st.Choices, c)
	}
	return st, ix.version, nil
}
