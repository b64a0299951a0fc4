//go:build !linux

package local

import (
	"fmt"
	"time"

	"github.com/infinity-runtime/infinity"
)

// fdTimer exists on Linux only; elsewhere the sender uses its clock's
// AfterFunc.
type fdTimer struct{}

func newFDTimer(func()) (*fdTimer, error) {
	return nil, fmt.Errorf("local: timerfd is Linux only: %w", infinity.ErrNotImplemented)
}

func (*fdTimer) arm(time.Duration) error { return nil }
func (*fdTimer) disarm() bool            { return false }
func (*fdTimer) close()                  {}
