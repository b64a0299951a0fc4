package disk

import (
	"encoding/binary"

	"github.com/infinity-runtime/infinity"
)

// Key layout. Every key starts with a one-byte table tag; a thread id in a
// key is length-prefixed (uvarint), so no id or message id can run into
// the next part, and a thread's keys of one table are contiguous. Numbers
// are 8-byte big-endian, so they sort numerically.
//
//	'M' name                          store metadata (the thread count)
//	'T' thread                        thread header: info, length, counters
//	'I' thread seq                    one history item (seq = position)
//	'A' thread msg                    an input applied by a commit
//	'C' thread n                      the thread's n-th child (value: its id)
//	'O' thread n                      an unsent outbox entry, in commit order
//	'S' thread position               a compaction summary
//	'V' thread                        the thread's saved state and version
//	'P' thread msg                    processed mark (value: expiry, ns)
//	'X' expiry thread msg             processed marks by expiry (sweeping)
//	'Q' seq                           a waiting inbox message, in put order
//	'W' thread msg                    the inbox message's seq (lookup)
const (
	tagMeta     = 'M'
	tagThread   = 'T'
	tagItem     = 'I'
	tagApplied  = 'A'
	tagChild    = 'C'
	tagOutbox   = 'O'
	tagSummary  = 'S'
	tagState    = 'V'
	tagMark     = 'P'
	tagExpiry   = 'X'
	tagQueued   = 'Q'
	tagWaitsFor = 'W'
)

// Metadata keys.
var keyThreads = []byte{tagMeta, 't'}

// threadKey returns tag + uvarint(len(id)) + id, with room for more.
func threadKey(tag byte, id string, extra int) []byte {
	k := make([]byte, 0, 1+binary.MaxVarintLen64+len(id)+extra)
	k = append(k, tag)
	k = binary.AppendUvarint(k, uint64(len(id)))
	return append(k, id...)
}

// seqKey is a thread key followed by n.
func seqKey(tag byte, id infinity.ThreadID, n uint64) []byte {
	return binary.BigEndian.AppendUint64(threadKey(tag, string(id), 8), n)
}

// msgKey is a thread key followed by a message id.
func msgKey(tag byte, id infinity.ThreadID, msg infinity.MessageID) []byte {
	return append(threadKey(tag, string(id), len(msg)), msg...)
}

// prefixEnd returns the smallest key above every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// expiryKey is 'X' + expiry + the mark's 'P' key without its tag.
func expiryKey(exp int64, mark []byte) []byte {
	k := make([]byte, 0, 9+len(mark))
	k = append(k, tagExpiry)
	k = binary.BigEndian.AppendUint64(k, uint64(exp))
	return append(k, mark[1:]...)
}

// markFromExpiry returns the 'P' key an 'X' key points to.
func markFromExpiry(x []byte) []byte {
	k := make([]byte, 0, len(x)-8)
	k = append(k, tagMark)
	return append(k, x[9:]...)
}

// queuedKey is 'Q' + seq.
func queuedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tagQueued}, seq)
}

// splitThreadKey returns the thread id and the rest of a key made by
// threadKey; ok is false for a malformed key.
func splitThreadKey(k []byte) (id string, rest []byte, ok bool) {
	if len(k) < 2 {
		return "", nil, false
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)-1-w) < n {
		return "", nil, false
	}
	start := 1 + w
	return string(k[start : start+int(n)]), k[start+int(n):], true
}

// u64 reads a big-endian number; ok is false unless b is 8 bytes.
func u64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
