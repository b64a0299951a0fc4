package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

const temporalCLI = "github.com/temporalio/cli/cmd/temporal@v1.5.1"

// ensureTemporal returns the path of the Temporal CLI in the cache directory,
// installing it with `go install` when it is missing.
func ensureTemporal(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("temporal CLI unavailable: no cache dir: %w", err)
	}
	bin := filepath.Join(cache, "infinity-bench", "bin")
	path := filepath.Join(bin, "temporal")
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return path, nil
	}
	logf("installing %s into %s (about 4 minutes, once)", temporalCLI, bin)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", temporalCLI)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("temporal CLI unavailable: go install %s: %w", temporalCLI, err)
	}
	logf("installed the temporal CLI in %.0fs", time.Since(start).Seconds())
	return path, nil
}
