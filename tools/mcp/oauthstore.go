package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/infinity-runtime/infinity/internal/atomicfile"
)

// FileTokenStore keeps tokens in a JSON file of mode 0600 (its directory
// made 0700 if missing), replaced atomically (written aside, synced,
// renamed).
type FileTokenStore struct {
	// Path is the file.
	Path string
}

// Load returns the stored tokens, or nil when the file does not exist.
func (s FileTokenStore) Load() (*StoredAuth, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if fi, err := os.Stat(s.Path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Copied in or restored with a looser mode: tokens are secrets.
		if err := os.Chmod(s.Path, 0o600); err != nil {
			return nil, fmt.Errorf("tokens file %s is readable by others and cannot be fixed: %w", s.Path, err)
		}
	}
	var rec StoredAuth
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("tokens file %s is damaged (delete it to authorize again): %w", s.Path, err)
	}
	return &rec, nil
}

// Save replaces the stored tokens.
func (s FileTokenStore) Save(rec *StoredAuth) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tokens: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return fmt.Errorf("tokens directory: %w", err)
	}
	if err := atomicfile.WriteFile(s.Path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	return nil
}
