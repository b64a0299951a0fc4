package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/daemon"
)

// infinity migrate between two in-process daemons: the demo's tree moves
// to the destination (named by its home, then by URL and token file) and
// is gone here; bad input is refused with the exit statuses of the table.
func TestMigrateCommand(t *testing.T) {
	serveDaemon(t, t.TempDir())
	dstHome := t.TempDir()
	d, err := daemon.Open(t.Context(), daemon.Options{Home: dstHome, Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Idle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go d.Serve(context.Background())
	t.Cleanup(func() { d.Close() })

	help := cmdOut(t, "migrate", "--help")
	for _, want := range []string{"--to URL", "--to-token-file", "--to-home", "needsMigration", "called off"} {
		if !strings.Contains(help, want) {
			t.Errorf("migrate --help lacks %q:\n%s", want, help)
		}
	}

	root := strings.Fields(cmdOut(t, "run", "demo"))[2]
	out := cmdOut(t, "migrate", root, "--to-home", dstHome)
	if !strings.HasPrefix(out, "moved "+root+" (") || !strings.Contains(out, " to http://"+d.Addr()) {
		t.Fatalf("migrate: %s", out)
	}
	if _, errOut, code := cmdCode(t, "logs", root); code != exitNotFound {
		t.Fatalf("logs of the moved root here: exit %d, %s", code, errOut)
	}
	if got := cmdOut(t, "--home", dstHome, "ls", "--all", "-q"); !strings.Contains(got, root) {
		t.Fatalf("the destination's threads: %s", got)
	}
	// Back, by URL and token file, as JSON.
	tokFile := filepath.Join(t.TempDir(), "token")
	src, err := daemon.ReadToken(os.Getenv("INFINITY_HOME"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, []byte(src+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := daemon.ReadInfo(os.Getenv("INFINITY_HOME"))
	if err != nil {
		t.Fatal(err)
	}
	back := cmdOut(t, "--home", dstHome, "migrate", "--json", root, "--to", "http://"+info.Addr, "--to-token-file", tokFile)
	if !strings.Contains(back, `"root": "`+root+`"`) || !strings.Contains(back, `"started": true`) {
		t.Fatalf("migrate --json back: %s", back)
	}
	waitFor(t, "All three children reported back", "logs", root)

	empty := t.TempDir()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"migrate"}, exitUsage, "migrate: missing ROOT"},
		{[]string{"migrate", root}, exitUsage, "name the destination"},
		{[]string{"migrate", root, "--to", "http://127.0.0.1:1"}, exitUsage, "--to-token-file"},
		{[]string{"migrate", root, "--to-home", dstHome, "--to", "http://127.0.0.1:1"}, exitUsage, "not both"},
		{[]string{"migrate", root, "--to", "ftp://x", "--to-token-file", tokFile}, exitUsage, "base URL"},
		{[]string{"migrate", root, "--to", "http://127.0.0.1:1", "--to-token-file", filepath.Join(empty, "none")}, exitNotFound, "no such file"},
		{[]string{"migrate", "nosuch", "--to-home", dstHome}, exitNotFound, "nosuch"},
		{[]string{"migrate", root, "--to-home", empty}, exitNoDaemon, "no daemon is running"},
		{[]string{"--home", empty, "migrate", root, "--to-home", dstHome}, exitNoDaemon, "no daemon is running"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := cmdCode(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.stderr, out, errOut)
			}
		})
	}
}
