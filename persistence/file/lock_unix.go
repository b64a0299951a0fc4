//go:build unix

package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive flock on DIR/LOCK. flock belongs to the open
// file description, so a second Open of the same directory fails in this
// process as in any other; the kernel drops the lock when the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("file store: %s is open in another Store: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("file store: lock %s: %w", dir, err)
	}
	return f, nil
}

// unlockDir releases the lock (closing the file drops the flock).
func unlockDir(f *os.File) error { return f.Close() }
