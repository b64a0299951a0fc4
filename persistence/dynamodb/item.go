package dynamodb

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

// index is what the state item says about a thread's state besides the
// metadata: the version and the ordered ids of its entries.
type index struct {
	version infinity.Version
	subs    []string
	choices []choiceRef
}

// choiceRef names a choice item and the hash of the body it must hold.
type choiceRef struct {
	id, hash string
}

// hashBody returns the hash of a choice's stored body that the state item
// keeps. 96 bits: collisions between two bodies of one choice id are not a
// concern.
func hashBody(body string) string {
	sum := sha256.Sum256([]byte(body))
	return base64.RawStdEncoding.EncodeToString(sum[:12])
}

// stateItem returns the state item of a thread at version v.
func stateItem(pk types.AttributeValue, meta []byte, ix index) map[string]types.AttributeValue {
	item := key(pk, skState)
	item[attrVersion] = numAttr(int64(ix.version))
	if len(meta) > 0 {
		item[attrMeta] = &types.AttributeValueMemberB{Value: meta}
	}
	if len(ix.subs) > 0 {
		l := make([]types.AttributeValue, len(ix.subs))
		for i, s := range ix.subs {
			l[i] = strAttr(s)
		}
		item[attrSubs] = &types.AttributeValueMemberL{Value: l}
	}
	if len(ix.choices) > 0 {
		l := make([]types.AttributeValue, len(ix.choices))
		for i, c := range ix.choices {
			l[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				attrID: strAttr(c.id), attrHash: strAttr(c.hash),
			}}
		}
		item[attrChoices] = &types.AttributeValueMemberL{Value: l}
	}
	return item
}

var errCorrupt = errors.New("malformed stored item")

// parseIndex reads the version and entry ids of a state item.
func parseIndex(item map[string]types.AttributeValue) (index, error) {
	var ix index
	v, err := numOf(item, attrVersion)
	if err != nil {
		return ix, err
	}
	if v <= 0 {
		return ix, fmt.Errorf("version %d: %w", v, errCorrupt)
	}
	ix.version = infinity.Version(v)
	subs, err := listOf(item, attrSubs)
	if err != nil {
		return ix, err
	}
	for _, a := range subs {
		s, ok := a.(*types.AttributeValueMemberS)
		if !ok {
			return ix, fmt.Errorf("%s: element %T: %w", attrSubs, a, errCorrupt)
		}
		ix.subs = append(ix.subs, s.Value)
	}
	choices, err := listOf(item, attrChoices)
	if err != nil {
		return ix, err
	}
	for _, a := range choices {
		m, ok := a.(*types.AttributeValueMemberM)
		if !ok {
			return ix, fmt.Errorf("%s: element %T: %w", attrChoices, a, errCorrupt)
		}
		id, err1 := strOf(m.Value, attrID)
		h, err2 := strOf(m.Value, attrHash)
		if err := errors.Join(err1, err2); err != nil {
			return ix, fmt.Errorf("%s: %w", attrChoices, err)
		}
		ix.choices = append(ix.choices, choiceRef{id: id, hash: h})
	}
	return ix, nil
}

// metaOf returns the metadata of a state item (nil when there is none).
func metaOf(item map[string]types.AttributeValue) ([]byte, error) {
	a, ok := item[attrMeta]
	if !ok {
		return nil, nil
	}
	b, ok := a.(*types.AttributeValueMemberB)
	if !ok {
		return nil, fmt.Errorf("%s is %T: %w", attrMeta, a, errCorrupt)
	}
	return b.Value, nil
}

func numOf(item map[string]types.AttributeValue, name string) (int64, error) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("%s is %T, want a number: %w", name, item[name], errCorrupt)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, errors.Join(errCorrupt, err))
	}
	return v, nil
}

func strOf(item map[string]types.AttributeValue, name string) (string, error) {
	s, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", fmt.Errorf("%s is %T, want a string: %w", name, item[name], errCorrupt)
	}
	return s.Value, nil
}

// listOf returns a list attribute; a missing one is empty.
func listOf(item map[string]types.AttributeValue, name string) ([]types.AttributeValue, error) {
	a, ok := item[name]
	if !ok {
		return nil, nil
	}
	l, ok := a.(*types.AttributeValueMemberL)
	if !ok {
		return nil, fmt.Errorf("%s is %T, want a list: %w", name, a, errCorrupt)
	}
	return l.Value, nil
}

// itemSize returns an upper bound of the size DynamoDB charges an item
// against its 400 KB limit: names plus values, numbers at their largest
// encoding, 3 bytes per list or map plus 1 per element.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 2
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	default:
		return 1
	}
}
