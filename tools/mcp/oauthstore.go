package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tokens directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-tokens-")
	if err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename: nothing left to remove
	// CreateTemp makes the file 0600.
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), s.Path)
	}
	if werr != nil {
		return fmt.Errorf("write tokens: %w", werr)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename's durability; best effort
		d.Close()
	}
	return nil
}
