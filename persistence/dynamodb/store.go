package dynamodb

import (
	"context"
	"fmt"
	ibackoff "github.com/infinity-runtime/infinity/internal/backoff"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

// Client is the part of *dynamodb.Client the store uses.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// StateStore is an infinity.StateStore kept in one DynamoDB table (see the
// package documentation for the layout). It is safe for concurrent use.
type StateStore struct {
	client Client
	table  string
	clock  infinity.Clock
	// retry bounds the store's own retries (unprocessed batch items,
	// transaction conflicts, torn Load reads); the SDK retries throttling
	// and 5xx itself.
	retry backoff
}

var _ infinity.StateStore = (*StateStore)(nil)

// Option configures a StateStore.
type Option func(*StateStore)

// WithClock makes the store judge expiry on clock (default
// infinity.SystemClock{}). DynamoDB's TTL deletion always runs on real time.
func WithClock(clock infinity.Clock) Option {
	return func(s *StateStore) {
		if clock != nil {
			s.clock = clock
		}
	}
}

// New returns a store on the table (made by CreateTable or an equivalent
// stack).
func New(client Client, table string, opts ...Option) *StateStore {
	s := &StateStore{
		client: client,
		table:  table,
		clock:  infinity.SystemClock{},
		retry:  backoff{attempts: 8, base: 20 * time.Millisecond, max: time.Second},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Attribute names and sort keys (see the package documentation).
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrVersion = "v"
	attrMeta    = "meta"
	attrSubs    = "subs"
	attrChoices = "choices"
	attrID      = "id"
	attrHash    = "h"
	attrBody    = "body"
	attrExp     = "exp"
	attrTTL     = "ttl"

	skState        = "state"
	skSubPrefix    = "state#sub#"
	skChoicePrefix = "state#choice#"
	skDonePrefix   = "done#"
	pkPrefix       = "thread#"
)

// DynamoDB's limits that the store checks before calling it.
const (
	// MaxEntries is the most subscriptions and choices a State may hold
	// together. A Save may delete every old one and write every new one
	// besides the state item, and TransactWriteItems takes 100 items.
	MaxEntries = 49
	// MaxItemSize is DynamoDB's item size limit, in bytes.
	MaxItemSize = 400 * 1024
	maxPKBytes  = 2048
	maxSKBytes  = 1024
)

func strAttr(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func numAttr(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

// threadKey returns the partition key of a thread, or ErrInvalid for an
// empty or oversized id.
func threadKey(op string, id infinity.ThreadID) (types.AttributeValue, error) {
	if id == "" {
		return nil, fmt.Errorf("%s: empty thread id: %w", op, infinity.ErrInvalid)
	}
	pk := pkPrefix + string(id)
	if len(pk) > maxPKBytes {
		return nil, fmt.Errorf("%s: thread id of %d bytes, the limit is %d: %w", op, len(id), maxPKBytes-len(pkPrefix), infinity.ErrInvalid)
	}
	return strAttr(pk), nil
}

// sortKey returns prefix+name as a sort key, or ErrInvalid when name is
// empty or the key passes DynamoDB's limit.
func sortKey(op, what, prefix, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%s: empty %s: %w", op, what, infinity.ErrInvalid)
	}
	if len(prefix)+len(name) > maxSKBytes {
		return "", fmt.Errorf("%s: %s of %d bytes, the limit is %d: %w", op, what, len(name), maxSKBytes-len(prefix), infinity.ErrInvalid)
	}
	return prefix + name, nil
}

func key(pk types.AttributeValue, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: pk, attrSK: strAttr(sk)}
}

// backoff bounds a retry loop: attempts tries in all, sleeping base,
// 2*base, ... up to max between them.
type backoff struct {
	attempts int
	base     time.Duration
	max      time.Duration
}

// wait sleeps before retry number i (0 is the first retry), or returns the
// context's error.
func (b backoff) wait(ctx context.Context, i int) error {
	return ibackoff.Sleep(ctx, ibackoff.Delay(b.base, b.max, i+1))
}
