package infinity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strings"
)

// ThreadID names a thread. On SQS it is also the FIFO message group id, so it
// is kept short and made of [a-z0-9-].
type ThreadID string

// MessageID is the stable, logical id of an input message. Delivery is
// at-least-once everywhere; a thread applies each MessageID once.
type MessageID string

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewThreadID returns a random thread id ("t" + 20 base32 characters).
func NewThreadID() ThreadID {
	var b [13]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return ThreadID("t" + idEncoding.EncodeToString(b[:])[:20])
}

// NewMessageID returns a random message id.
func NewMessageID() MessageID {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return MessageID("m" + idEncoding.EncodeToString(b[:])[:20])
}

// DeriveID returns a short id determined by parts, so a re-run of the same
// step produces the same id (for child threads, injected calls, ...).
func DeriveID(prefix string, parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p))) // length-prefixed: parts cannot run into each other
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return prefix + idEncoding.EncodeToString(h.Sum(nil))[:20]
}

// ThreadIDRule says what ValidThreadID accepts, for error messages.
const ThreadIDRule = `1 to 128 letters, digits, '-', '_' or '.', other than "." and ".."`

// ValidThreadID reports whether id is usable as a thread id: 1 to 128
// characters of letters, digits, '-', '_' and '.' (a subset of what SQS
// accepts as a message group id), other than "." and "..".
func ValidThreadID(id ThreadID) bool {
	if len(id) == 0 || len(id) > 128 || id == "." || id == ".." {
		return false // a path would rewrite "." and ".."
	}
	return strings.IndexFunc(string(id), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}
