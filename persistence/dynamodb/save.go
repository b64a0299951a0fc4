package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

// Save stores st if the stored version is v (0: no record yet) and returns
// v+1; otherwise ErrConflict. It reads the state item's ids (one GetItem;
// a stale v fails there, before any write) and writes the state in one
// TransactWriteItems conditioned on the version. A state with more than
// MaxEntries subscriptions and choices, a duplicate or empty id, metadata
// that is not JSON, or an item over DynamoDB's 400 KB limit is ErrInvalid.
func (s *StateStore) Save(ctx context.Context, id infinity.ThreadID, st infinity.State, v infinity.Version) (infinity.Version, error) {
	pk, err := threadKey("save", id)
	if err != nil {
		return 0, err
	}
	if v >= math.MaxInt64 {
		// No stored version gets there (versions are stored as int64).
		return 0, fmt.Errorf("save %s: version %d: %w", id, v, infinity.ErrConflict)
	}
	p, err := newPlan(id, pk, st, v+1)
	if err != nil {
		return 0, err
	}
	old, err := s.readIndex(ctx, pk)
	if err != nil {
		return 0, fmt.Errorf("save %s: %w", id, err)
	}
	if old.version != v {
		return 0, fmt.Errorf("save %s: version %d, stored %d: %w", id, v, old.version, infinity.ErrConflict)
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: p.writes(s.table, pk, old, v)}
	if err := s.transact(ctx, in); err != nil {
		return 0, fmt.Errorf("save %s: %w", id, err)
	}
	return v + 1, nil
}

// plan is a validated state, encoded as items.
type plan struct {
	state  map[string]types.AttributeValue
	ix     index
	bodies map[string]string // choice id → body
}

// newPlan checks st and encodes it at version next.
func newPlan(id infinity.ThreadID, pk types.AttributeValue, st infinity.State, next infinity.Version) (*plan, error) {
	n := len(st.Subscriptions) + len(st.Choices)
	if n > MaxEntries {
		return nil, fmt.Errorf("save %s: %d subscriptions and %d choices, at most %d together (a save may replace all of them in one DynamoDB transaction of at most 100 items): %w",
			id, len(st.Subscriptions), len(st.Choices), MaxEntries, infinity.ErrInvalid)
	}
	if len(st.Metadata) > 0 && !json.Valid(st.Metadata) {
		return nil, fmt.Errorf("save %s: metadata is not valid JSON: %w", id, infinity.ErrInvalid)
	}
	p := &plan{ix: index{version: next}, bodies: make(map[string]string, len(st.Choices))}
	seen := make(map[string]bool, len(st.Subscriptions))
	for _, sub := range st.Subscriptions {
		if _, err := sortKey("save "+string(id), "subscription id", skSubPrefix, sub); err != nil {
			return nil, err
		}
		if seen[sub] {
			return nil, fmt.Errorf("save %s: subscription %q listed twice: %w", id, sub, infinity.ErrInvalid)
		}
		seen[sub] = true
		p.ix.subs = append(p.ix.subs, sub)
	}
	for _, c := range st.Choices {
		sk, err := sortKey("save "+string(id), "choice id", skChoicePrefix, c.ID)
		if err != nil {
			return nil, err
		}
		if _, dup := p.bodies[c.ID]; dup {
			return nil, fmt.Errorf("save %s: choice %q listed twice: %w", id, c.ID, infinity.ErrInvalid)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("save %s: choice %q: %w", id, c.ID, err)
		}
		body := string(b)
		if size := itemSize(choiceItem(pk, sk, body)); size > MaxItemSize {
			return nil, fmt.Errorf("save %s: choice %q makes an item of %d bytes, DynamoDB's limit is %d: %w",
				id, c.ID, size, MaxItemSize, infinity.ErrInvalid)
		}
		p.bodies[c.ID] = body
		p.ix.choices = append(p.ix.choices, choiceRef{id: c.ID, hash: hashBody(body)})
	}
	p.state = stateItem(pk, st.Metadata, p.ix)
	if size := itemSize(p.state); size > MaxItemSize {
		return nil, fmt.Errorf("save %s: metadata (%d bytes) makes a state item of %d bytes, DynamoDB's limit is %d: %w",
			id, len(st.Metadata), size, MaxItemSize, infinity.ErrInvalid)
	}
	return p, nil
}

func choiceItem(pk types.AttributeValue, sk, body string) map[string]types.AttributeValue {
	item := key(pk, sk)
	item[attrBody] = strAttr(body)
	return item
}

// writes returns the transaction that turns the stored entries old into
// p's, guarded by the stored version being v. Unchanged entries are not
// rewritten. Element 0 is the state item (transact relies on it).
func (p *plan) writes(table string, pk types.AttributeValue, old index, v infinity.Version) []types.TransactWriteItem {
	put := &types.Put{TableName: aws.String(table), Item: p.state}
	if v == 0 {
		put.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		put.ExpressionAttributeNames = map[string]string{"#pk": attrPK}
	} else {
		put.ConditionExpression = aws.String("#v = :v")
		put.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": numAttr(int64(v))}
	}
	out := []types.TransactWriteItem{{Put: put}}
	putItem := func(item map[string]types.AttributeValue) {
		out = append(out, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: item}})
	}
	del := func(sk string) {
		out = append(out, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(table), Key: key(pk, sk)}})
	}

	oldSubs := make(map[string]bool, len(old.subs))
	for _, sub := range old.subs {
		oldSubs[sub] = true
	}
	newSubs := make(map[string]bool, len(p.ix.subs))
	for _, sub := range p.ix.subs {
		newSubs[sub] = true
		if !oldSubs[sub] {
			putItem(key(pk, skSubPrefix+sub))
		}
	}
	for _, sub := range old.subs {
		if !newSubs[sub] {
			del(skSubPrefix + sub)
		}
	}

	oldChoices := make(map[string]string, len(old.choices))
	for _, c := range old.choices {
		oldChoices[c.id] = c.hash
	}
	for _, c := range p.ix.choices {
		if h, ok := oldChoices[c.id]; !ok || h != c.hash {
			putItem(choiceItem(pk, skChoicePrefix+c.id, p.bodies[c.id]))
		}
	}
	for _, c := range old.choices {
		if _, keep := p.bodies[c.id]; !keep {
			del(skChoicePrefix + c.id)
		}
	}
	return out
}

// readIndex returns the stored version and entry ids of a thread (version
// 0 when there is no state item).
func (s *StateStore) readIndex(ctx context.Context, pk types.AttributeValue) (index, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(pk, skState),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#v, #subs, #choices"),
		ExpressionAttributeNames: map[string]string{"#v": attrVersion, "#subs": attrSubs, "#choices": attrChoices},
	})
	if err != nil {
		return index{}, fmt.Errorf("read state: %w", err)
	}
	if out.Item == nil {
		return index{}, nil
	}
	ix, err := parseIndex(out.Item)
	if err != nil {
		return index{}, fmt.Errorf("state item: %w", err)
	}
	return ix, nil
}

// Cancellation reason codes of TransactWriteItems (documented in the
// TransactionCanceledException reference).
const (
	codeConditionFailed = "ConditionalCheckFailed"
	codeConflict        = "TransactionConflict"
	codeThrottled       = "ThrottlingError"
	codeCapacity        = "ProvisionedThroughputExceeded"
)

// transact runs the transaction, retrying it (bounded) while another
// transaction holds one of its items. A failed version condition on the
// state item (element 0) is ErrConflict. The caller adds what the
// transaction was for to the error.
func (s *StateStore) transact(ctx context.Context, in *dynamodb.TransactWriteItemsInput) error {
	for i := 0; ; i++ {
		_, err := s.client.TransactWriteItems(ctx, in)
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return err
		}
		reasons := tce.CancellationReasons
		if len(reasons) > 0 && aws.ToString(reasons[0].Code) == codeConditionFailed {
			return fmt.Errorf("version changed: %w", infinity.ErrConflict)
		}
		transient := false
		for _, r := range reasons {
			switch aws.ToString(r.Code) {
			case codeConflict, codeThrottled, codeCapacity:
				transient = true
			}
		}
		if !transient {
			return fmt.Errorf("transaction cancelled (%s): %w", reasonCodes(reasons), err)
		}
		if i+1 >= s.retry.attempts {
			return fmt.Errorf("transaction cancelled %d times (%s): %w: %w", i+1, reasonCodes(reasons), infinity.ErrRetryable, err)
		}
		if err := s.retry.wait(ctx, i); err != nil {
			return err
		}
	}
}

// reasonCodes lists the codes of the reasons that are not "None".
func reasonCodes(reasons []types.CancellationReason) string {
	var codes []string
	for i, r := range reasons {
		if c := aws.ToString(r.Code); c != "" && c != "None" {
			codes = append(codes, fmt.Sprintf("item %d: %s", i, c))
		}
	}
	return strings.Join(codes, ", ")
}
