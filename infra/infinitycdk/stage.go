package infinitycdk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/infinity-runtime/infinity/agentfile"
)

// taskRoot is where Lambda unpacks a function's code.
const taskRoot = "/var/task"

// staged is the functions' asset directory.
type staged struct {
	// dir holds bootstrap and, under agent/, the agent file and its script.
	dir string
	// agentFile is the agent file's path in the function ("" for none).
	agentFile string
	// bootstrapSHA256 is the bootstrap's digest, hex.
	bootstrapSHA256 string
}

// stage lays out dir as the functions' code: the bootstrap and, when f is
// set, the agent file and its scripted model's script under agent/, in the
// same layout relative to each other so that the file's relative script
// path still resolves. dir is emptied first.
func stage(dir, bootstrap string, f *agentfile.File) (staged, error) {
	s := staged{dir: dir}
	if err := os.RemoveAll(dir); err != nil {
		return s, fmt.Errorf("stage the asset: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, fmt.Errorf("stage the asset: %w", err)
	}
	if bootstrap == "" {
		return s, nil // reported by resolve
	}
	sum, err := copyFile(bootstrap, filepath.Join(dir, "bootstrap"), 0o755)
	if err != nil {
		return s, fmt.Errorf("BootstrapPath: %w (build it first: CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags=-s -o bootstrap ./cmd/infinity-lambda)", err)
	}
	s.bootstrapSHA256 = sum
	if f == nil {
		return s, nil
	}
	files, err := agentFiles(f)
	if err != nil {
		return s, err
	}
	for i, rel := range files.rel {
		if _, err := copyFile(files.abs[i], filepath.Join(dir, "agent", rel), 0o644); err != nil {
			return s, fmt.Errorf("AgentFile: %w", err)
		}
	}
	s.agentFile = taskRoot + "/agent/" + filepath.ToSlash(files.rel[0])
	return s, nil
}

// fileSet are the agent file (first) and its script, by absolute path and
// by path relative to their nearest common directory.
type fileSet struct{ abs, rel []string }

func agentFiles(f *agentfile.File) (fileSet, error) {
	var fs fileSet
	agent, err := filepath.Abs(f.Path())
	if err != nil {
		return fs, fmt.Errorf("AgentFile: %w", err)
	}
	fs.abs = []string{agent}
	if f.Model.Script != "" {
		if filepath.IsAbs(f.Model.Script) {
			return fs, fmt.Errorf("AgentFile %s: model.script %q: an absolute path does not exist in the function; give it relative to the agent file", f.Path(), f.Model.Script)
		}
		script, err := filepath.Abs(f.ScriptPath())
		if err != nil {
			return fs, fmt.Errorf("AgentFile: %w", err)
		}
		fs.abs = append(fs.abs, script)
	}
	root := filepath.Dir(agent)
	for _, p := range fs.abs {
		for !within(root, p) {
			root = filepath.Dir(root)
		}
	}
	for _, p := range fs.abs {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fs, fmt.Errorf("AgentFile: %w", err)
		}
		fs.rel = append(fs.rel, rel)
	}
	return fs, nil
}

// within reports whether path p lies under directory dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// copyFile copies src to dst (creating dst's directory) with mode perm and
// returns the content's SHA-256, hex.
func copyFile(src, dst string, perm os.FileMode) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return "", err
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("copy %s: %w", src, err), os.Remove(dst))
	}
	// Chmod: the umask may have narrowed the mode OpenFile was given.
	if err := os.Chmod(dst, perm); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
