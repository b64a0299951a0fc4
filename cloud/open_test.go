package cloud_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
)

// An agent file with MCP servers needs Options.MCP (the bootstrap built
// with -tags mcp); without it Open refuses before any network I/O, saying
// how to build it in. A network provider the program lacks is refused too.
func TestOpenRefusesWhatIsNotBuiltIn(t *testing.T) {
	dir := t.TempDir()
	for name, yaml := range map[string]string{
		"mcp.yaml":     "name: a\nmodel:\n  provider: scripted\n  demo: true\ntools:\n  mcp: [\"http://127.0.0.1:1/mcp\"]\n",
		"openai.yaml":  "name: b\nmodel:\n  provider: openai\n  id: gpt-4o-mini\n",
		"bedrock.yaml": "name: c\nmodel:\n  provider: bedrock\n  id: us.anthropic.claude-sonnet-4-5-v1:0\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for file, want := range map[string]string{"mcp.yaml": "-tags mcp", "openai.yaml": "openai", "bedrock.yaml": "bedrock"} {
		m := agentEnv()
		m[cloud.EnvAgentFile] = filepath.Join(dir, file)
		cfg, err := cloud.LoadConfig(env(m))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS})
		if !errors.Is(err, infinity.ErrNotImplemented) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open with %s: %v, want ErrNotImplemented naming %q", file, err, want)
		}
	}
}

// A local (stdio) MCP server in the agent file is refused: the functions
// cannot start processes.
func TestOpenRefusesLocalMCPServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local.yaml")
	if err := os.WriteFile(path, []byte("name: a\nmodel:\n  provider: scripted\n  demo: true\ntools:\n  mcp:\n    - command: sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := agentEnv()
	m[cloud.EnvAgentFile] = path
	cfg, err := cloud.LoadConfig(env(m))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS})
	if err == nil || !strings.Contains(err.Error(), "local MCP servers (command) run only in the daemon") || !strings.Contains(err.Error(), "local.yaml:7:") {
		t.Errorf("Open with a local MCP server: %v", err)
	}
}
