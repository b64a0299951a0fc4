package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	infinity "github.com/infinity-runtime/infinity"
)

// EnvFile is the file in the home whose variables the daemon adds to its
// environment when it starts (API keys, base URLs): lines of NAME=value,
// with # comments, blank lines, an optional "export " and optionally
// quoted values. A variable already in the daemon's environment wins. The
// file is made private (0600) like the rest of the home.
const EnvFile = "env"

// validEnvName reports whether s is a variable name.
func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseEnv reads an env file's variables, in order.
func parseEnv(b []byte) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || !validEnvName(name) {
			return nil, fmt.Errorf("line %d: want NAME=value: %w", n, infinity.ErrInvalid)
		}
		value = strings.TrimSpace(value)
		switch {
		case len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"':
			v, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: a double-quoted value that is not closed or escaped right: %w", n, name, infinity.ErrInvalid)
			}
			value = v
		case len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'':
			value = value[1 : len(value)-1]
		}
		if strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("line %d: %s: a value with a NUL byte: %w", n, name, infinity.ErrInvalid)
		}
		out = append(out, [2]string{name, value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("a line too long: %w", infinity.ErrInvalid)
	}
	return out, nil
}

// loadEnvFile adds the env file's variables that the environment lacks,
// and returns their names (never their values: they are secrets).
func loadEnvFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: env file: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("daemon: env file: %w", err)
	}
	vars, err := parseEnv(b)
	if err != nil {
		return nil, fmt.Errorf("daemon: env file %s: %w", path, err)
	}
	var set []string
	for _, kv := range vars {
		if _, ok := os.LookupEnv(kv[0]); ok {
			continue
		}
		if err := os.Setenv(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("daemon: env file %s: %s: %w", path, kv[0], err)
		}
		set = append(set, kv[0])
	}
	return set, nil
}
