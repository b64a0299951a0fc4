package rap

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"strings"

	"github.com/infinity-runtime/infinity"
)

// callbackPath is the path segment before the token in callback URLs.
const callbackPath = "/rap/callback/"

// callQuery is the query parameter that carries the call id in callback
// URLs, for view updates, the one callback type that names no call.
const callQuery = "call"

// NewKey returns a random 32-byte key for Tokens.
func NewKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+).
	return k
}

// Tokens mints and checks callback tokens: HMAC-SHA256 over (group, call
// id) keyed with Key, base64url without padding. Tokens are stateless: any
// instance holding the key can verify them, and they stay valid as long as
// the key does. Previous holds retired keys still accepted by Verify, so
// the key can be rotated without breaking calls in flight; dropping a key
// from Previous revokes every URL minted with it. Key must be secret and
// random (NewKey); with an empty Key, Verify accepts nothing.
type Tokens struct {
	Key      []byte
	Previous [][]byte
}

// Token returns the callback token for call callID of thread group.
func (t Tokens) Token(group infinity.ThreadID, callID string) string {
	return mac(t.Key, group, callID)
}

// Verify reports, in constant time, whether token was minted for (group,
// callID) with Key or one of the Previous keys. An empty Key verifies
// nothing.
func (t Tokens) Verify(group infinity.ThreadID, callID, token string) bool {
	ok := false
	for i, k := range append([][]byte{t.Key}, t.Previous...) {
		if len(k) == 0 {
			if i == 0 {
				return false
			}
			continue
		}
		if hmac.Equal([]byte(mac(k, group, callID)), []byte(token)) {
			ok = true
		}
	}
	return ok
}

// CallbackURL returns the URL a tool posts the callbacks of call callID of
// thread group to: {base}/rap/callback/{token}?call={callID}. base is the
// public URL the Handler is served under, without the /rap/callback suffix.
// The call id in the query only serves view updates, which carry no call id
// in their body; every other callback is checked against its own ids.
func (t Tokens) CallbackURL(base string, group infinity.ThreadID, callID string) string {
	return strings.TrimRight(base, "/") + callbackPath + t.Token(group, callID) +
		"?" + callQuery + "=" + url.QueryEscape(callID)
}

func mac(key []byte, group infinity.ThreadID, callID string) string {
	h := hmac.New(sha256.New, key)
	var n [8]byte
	for _, p := range []string{string(group), callID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(p))) // length-prefixed: ("ab","c") ≠ ("a","bc")
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
