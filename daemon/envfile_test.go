package daemon_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

const anthropicAgent = `name: anth
model: {provider: anthropic, id: claude-haiku-4-5}
`

// The daemon's providers read keys from the daemon's environment, which
// the home's env file adds to: a missing key is refused with where to put
// it, and the env file, after a restart, supplies it.
func TestEnvFile(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "")
	os.Unsetenv("ANTHROPIC_API_KEY")
	t.Setenv("INFINITY_TEST_ENV_KEPT", "from the environment")
	home := t.TempDir()
	d, c := startDaemon(t, home)
	_, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "anth.yaml", AgentSource: daemon.AgentSource{YAML: anthropicAgent}})
	envPath := filepath.Join(home, daemon.EnvFile)
	if err == nil || !strings.Contains(err.Error(), "ANTHROPIC_API_KEY") || !strings.Contains(err.Error(), envPath) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("registering an agent without its key: %v", err)
	}
	d.Close()

	env := "# keys for the daemon\nexport ANTHROPIC_API_KEY=\"sk-test key\"\nINFINITY_TEST_ENV_KEPT=from the file\n\nINFINITY_TEST_ENV_QUOTED='single'\n"
	if err := os.WriteFile(envPath, []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Unsetenv("ANTHROPIC_API_KEY"); os.Unsetenv("INFINITY_TEST_ENV_QUOTED") })
	_, c = startDaemon(t, home)
	if _, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "anth.yaml", AgentSource: daemon.AgentSource{YAML: anthropicAgent}}); err != nil {
		t.Fatalf("with the key in the env file: %v", err)
	}
	if got := os.Getenv("ANTHROPIC_API_KEY"); got != "sk-test key" {
		t.Errorf("ANTHROPIC_API_KEY = %q", got)
	}
	if got := os.Getenv("INFINITY_TEST_ENV_KEPT"); got != "from the environment" {
		t.Errorf("the environment should win over the file: %q", got)
	}
	if got := os.Getenv("INFINITY_TEST_ENV_QUOTED"); got != "single" {
		t.Errorf("single quotes: %q", got)
	}
	if fi, err := os.Stat(envPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the env file is not made private: %v %v", fi, err)
	}
}

// A malformed env file stops the daemon with the line to fix.
func TestEnvFileMalformed(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, daemon.EnvFile), []byte("OK=1\nthis is not a variable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), infinity.ErrInvalid.Error()) {
		t.Fatalf("Open with a malformed env file: %v", err)
	}
}

// A damaged token file is named as such, by the client and by a daemon
// starting on it, never mistaken for a missing daemon.
func TestDamagedTokenFile(t *testing.T) {
	home := t.TempDir()
	d, _ := startDaemon(t, home)
	path := filepath.Join(home, "token")
	if err := os.WriteFile(path, []byte("\x00\x01\xffgarbage-garbage-garbage-garbage-garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := daemon.Dial(home)
	if !errors.Is(err, daemon.ErrBadToken) || errors.Is(err, daemon.ErrNoDaemon) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Dial with a damaged token file: %v", err)
	}
	d.Close()
	if _, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0"}); !errors.Is(err, daemon.ErrBadToken) {
		t.Fatalf("Open with a damaged token file: %v", err)
	}
}
