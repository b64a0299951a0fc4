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

// An MCP server with an oauth block is refused: the functions cannot show
// the user an authorization URL nor receive its redirect. The refusal
// comes before any network I/O (even with Options.MCP set) and names the
// entry's place in the file.
func TestOpenRefusesOAuthMCPServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authed.yaml")
	yaml := "name: a\nmodel:\n  provider: scripted\n  demo: true\ntools:\n  mcp:\n    - url: http://127.0.0.1:1/mcp\n      oauth: {}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	m := agentEnv()
	m[cloud.EnvAgentFile] = path
	cfg, err := cloud.LoadConfig(env(m))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS, MCP: func([]cloud.MCPEndpoint) cloud.ToolServers {
		t.Fatal("the MCP servers were connected")
		return nil
	}})
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "authed.yaml:8:7: tools.mcp[0].oauth: MCP servers that need the user's authorization (oauth) run only in the daemon") {
		t.Errorf("Open with an oauth MCP server: %v", err)
	}
}
