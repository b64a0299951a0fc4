package dsql

import (
	"encoding/json"
	"fmt"

	"github.com/infinity-runtime/infinity"
)

// plan is a commit encoded before its transaction starts: the payload rows
// it will write and what they cost against the transaction limits.
type plan struct {
	items  rowSet
	outbox []outEntry // in commit order, duplicates within the commit dropped
	rows   int        // an upper bound of the rows the commit writes
	bytes  int        // an upper bound of the bytes it writes

	largest, largestAt int // the largest item's size and position

	// summary holds c.Summary's encoded pieces; nil without a summary.
	summary [][]byte
}

// rowSet holds chunk rows as the column arrays UNNEST takes.
type rowSet struct {
	key    []int64
	chunk  []int32
	chunks []int32
	data   [][]byte
}

func (r *rowSet) add(key int64, pieces [][]byte) {
	for i, p := range pieces {
		r.key = append(r.key, key)
		r.chunk = append(r.chunk, int32(i))
		r.chunks = append(r.chunks, int32(len(pieces)))
		r.data = append(r.data, p)
	}
}

// outEntry is one encoded outgoing entry.
type outEntry struct {
	id     string
	pieces [][]byte
}

// threadRowBytes is a generous estimate of a thread row without its
// strings.
const threadRowBytes = 128

// makePlan encodes c. Encoding errors are ErrInvalid; the limit check is
// separate (limitErr) because the documented check order puts state checks
// first.
func (s *Store) makePlan(c infinity.Commit) (*plan, error) {
	p := &plan{rows: 1, bytes: threadRowBytes}
	for i, it := range c.Items {
		b, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("commit %s: encode item %d: %v: %w", c.Thread, c.Expected+i, err, infinity.ErrInvalid)
		}
		if len(b) > p.largest {
			p.largest, p.largestAt = len(b), c.Expected+i
		}
		pieces := split(b, s.limits.Chunk)
		p.items.add(int64(c.Expected+i), pieces)
		p.rows += len(pieces)
		p.bytes += len(b) + len(c.Thread) + 16*len(pieces)
	}
	seen := make(map[string]bool, len(c.Outbox))
	for _, o := range c.Outbox {
		if seen[o.ID] {
			continue // the first entry with an id wins
		}
		seen[o.ID] = true
		b, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("commit %s: encode outgoing %s: %v: %w", c.Thread, o.ID, err, infinity.ErrInvalid)
		}
		pieces := split(b, s.limits.Chunk)
		p.outbox = append(p.outbox, outEntry{o.ID, pieces})
		p.rows += len(pieces)
		p.bytes += len(b) + len(c.Thread) + (len(o.ID)+24)*len(pieces)
	}
	for _, m := range c.Applied {
		p.rows++
		p.bytes += len(c.Thread) + len(m)
	}
	for _, info := range c.Create {
		// The new row, and at most one counter update of its parent.
		p.rows += 2
		p.bytes += 2*threadRowBytes + 4*len(info.ID) + len(info.SpawnCallID) + len(info.Agent) + len(info.Model) + 129*8
	}
	p.rows += len(c.Close)
	if c.Summary != nil {
		b, err := json.Marshal(c.Summary)
		if err != nil {
			return nil, fmt.Errorf("commit %s: encode summary: %v: %w", c.Thread, err, infinity.ErrInvalid)
		}
		p.summary = split(b, s.limits.Chunk)
		// Its rows, and as many again for a summary it replaces at the same
		// position (an estimate: a replaced one may have had more pieces).
		p.rows += 2 * len(p.summary)
		p.bytes += len(b) + (len(c.Thread)+24)*len(p.summary)
	}
	return p, nil
}

// limitErr reports a commit that would pass the transaction limits.
func (s *Store) limitErr(c infinity.Commit, p *plan) error {
	if p.rows > s.limits.Rows {
		return fmt.Errorf("commit %s: writes up to %d rows (%d items, %d applied, %d outgoing, %d created, %d closed, %d summary pieces), limit %d per transaction: %w",
			c.Thread, p.rows, len(c.Items), len(c.Applied), len(c.Outbox), len(c.Create), len(c.Close), len(p.summary), s.limits.Rows, infinity.ErrInvalid)
	}
	if p.bytes > s.limits.Bytes {
		return fmt.Errorf("commit %s: writes about %d bytes (largest item %d: %d bytes), limit %d per transaction: %w",
			c.Thread, p.bytes, p.largestAt, p.largest, s.limits.Bytes, infinity.ErrInvalid)
	}
	return nil
}
