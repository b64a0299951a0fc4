package disk

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// The thread count is a merge key: a mutation that creates or deletes
// threads merges its change (+n or -n) into it, and the engine adds the
// changes up when it reads or compacts the key. Creations so need no lock
// beyond their own thread's, and the stored count is right whatever
// order the batches are applied in.

// counterMerger is the engine's merge operator (its name is stored with
// the data: a store opened with another fails to open).
var counterMerger = &pebble.Merger{
	Name: "infinity.counter.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		n, err := counterValue(value)
		if err != nil {
			return nil, err
		}
		return &counterSum{n: n}, nil
	},
}

type counterSum struct{ n int64 }

func (c *counterSum) MergeNewer(value []byte) error { return c.add(value) }
func (c *counterSum) MergeOlder(value []byte) error { return c.add(value) }

func (c *counterSum) add(value []byte) error {
	n, err := counterValue(value)
	c.n += n
	return err
}

func (c *counterSum) Finish(bool) ([]byte, io.Closer, error) {
	return counterBytes(c.n), nil, nil
}

// counterBytes encodes a count or a change of it.
func counterBytes(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// counterValue decodes counterBytes.
func counterValue(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("disk store: a %d-byte counter: %w", len(b), ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
