package dynamodb

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
)

// FuzzDecodeState feeds decodeState state and choice items whose attributes
// are arbitrary: it must return an error or a state consistent with the
// state item, never panic.
func FuzzDecodeState(f *testing.F) {
	body := `{"id":"c1","prompt":"p","choices":["a"],"default":0,"response_url":""}`
	f.Add("3", []byte(`{"a":1}`), "s1", "c1", hashBody(body), body, true)
	f.Add("0", []byte{}, "", "c1", "x", "{", false)
	f.Add("-1", []byte("{"), "s", "", "", "", true)
	f.Add("99999999999999999999", []byte(nil), "s", "c1", hashBody("null"), "null", true)
	f.Fuzz(func(t *testing.T, v string, meta []byte, sub, choiceID, hash, body string, numeric bool) {
		pk := strAttr("thread#t")
		state := key(pk, skState)
		if numeric {
			state[attrVersion] = &types.AttributeValueMemberN{Value: v}
		} else {
			state[attrVersion] = strAttr(v)
		}
		if len(meta) > 0 {
			state[attrMeta] = &types.AttributeValueMemberB{Value: meta}
		}
		state[attrSubs] = &types.AttributeValueMemberL{Value: []types.AttributeValue{strAttr(sub)}}
		state[attrChoices] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{attrID: strAttr(choiceID), attrHash: strAttr(hash)}},
		}}
		items := []map[string]types.AttributeValue{state, choiceItem(pk, skChoicePrefix+choiceID, body), key(pk, skSubPrefix+sub)}
		st, ver, err := decodeState(items)
		if err != nil {
			if !errors.Is(err, errCorrupt) && !errors.Is(err, errTorn) && !errors.Is(err, infinity.ErrNotFound) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if ver == 0 || len(st.Subscriptions) != 1 || st.Subscriptions[0] != sub ||
			len(st.Choices) != 1 || st.Choices[0].ID != choiceID || hashBody(body) != hash {
			t.Fatalf("decoded %+v at %d from an inconsistent item", st, ver)
		}
	})
}
