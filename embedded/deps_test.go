package embedded_test

import (
	"os/exec"
	"strings"
	"testing"
)

// An embedding links no AWS SDK, database driver, model SDK or MCP SDK.
func TestEmbeddingLinksNoCloudOrModelSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/infinity-runtime/infinity/embedded").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	prefixes := []string{"github.com/aws/", "github.com/jackc/pgx", "github.com/anthropics/", "github.com/openai/", "github.com/modelcontextprotocol/"}
	for line := range strings.Lines(string(out)) {
		pkg := strings.TrimSpace(line)
		if pkg == "testing" {
			t.Errorf("package embedded links the testing package")
		}
		for _, p := range prefixes {
			if strings.HasPrefix(pkg, p) {
				t.Errorf("package embedded links %s", pkg)
			}
		}
	}
}
