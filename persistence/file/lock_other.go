//go:build !unix

package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// lockDir creates DIR/LOCK exclusively. Without flock the lock outlives a
// crashed process: remove DIR/LOCK by hand once no Store has it open.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("file store: %s is open in another Store (or %s is stale): %w", dir, lockName, ErrLocked)
		}
		return nil, fmt.Errorf("file store: %w", err)
	}
	return f, nil
}

// unlockDir closes and removes the lock file.
func unlockDir(f *os.File) error {
	err := f.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}
