//go:build unix

package daemon

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
)

// A daemon listening on every interface (--allow-remote) registers a
// redirect URI a browser can be sent to: the loopback address, not
// 0.0.0.0 or [::].
func TestMCPRedirectURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:7711": "http://127.0.0.1:7711/oauth/mcp/callback",
		"[::1]:7711":     "http://[::1]:7711/oauth/mcp/callback",
		"0.0.0.0:7711":   "http://127.0.0.1:7711/oauth/mcp/callback",
		"[::]:7711":      "http://127.0.0.1:7711/oauth/mcp/callback",
		"10.1.2.3:7711":  "http://10.1.2.3:7711/oauth/mcp/callback",
	} {
		if got := mcpRedirectURL(addr); got != want {
			t.Errorf("listening on %s: redirect URI %s, want %s", addr, got, want)
		}
	}
}

// The tokens directory is 0700 even when it was there before with a
// looser mode.
func TestMCPOAuthDirMode(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, mcpOAuthDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	m := newMCPAuth(nil, home, "127.0.0.1:7711", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(m.close)
	if _, err := m.server(agentfile.MCPServer{URL: "https://notes.example.com/mcp", OAuth: &agentfile.OAuth{}}, &agentfile.File{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("tokens directory: %v %v", fi, err)
	}
}

// RAP callback URLs: under --callback-url when set (checked), else under
// the listener's address as a local tool server reaches it.
func TestCallbackBase(t *testing.T) {
	for _, c := range []struct{ set, addr, want string }{
		{"", "127.0.0.1:7711", "http://127.0.0.1:7711"},
		{"", "[::]:7711", "http://127.0.0.1:7711"},
		{"", "0.0.0.0:7711", "http://127.0.0.1:7711"},
		{"https://tools.example.com/infinity/", "[::]:7711", "https://tools.example.com/infinity"},
	} {
		if got, err := callbackBase(c.set, c.addr); err != nil || got != c.want {
			t.Errorf("callbackBase(%q, %q) = %q, %v; want %q", c.set, c.addr, got, err, c.want)
		}
	}
	for _, bad := range []string{"tools.example.com", "ftp://x", "https://x/?a=1", "https://x/#f", "https://x/?", "https://x/#", "https://u:p@x", "http://"} {
		if _, err := callbackBase(bad, "127.0.0.1:7711"); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("callbackBase(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
