package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bench runs end to end at a small size, with each of its model
// servers: every thread is answered and no request is refused.
func TestSmallRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench")
	}
	bin := filepath.Join(t.TempDir(), "modelcalls")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"-warmup", "-memstats"},          // the bench's own HTTP/2 server
		{"-nethttp-h2c"},                  // net/http's
		{"-h2c=false"},                    // HTTP/1.1
		{"-rpm", "600", "-threads", "12"}, // within the limit's burst
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"-threads", "40", "-delay", "200ms", "-sleepers", "5"}, args...)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
			want := "requests, 0 answered 429"
			if !strings.Contains(string(out), want) {
				t.Fatalf("no %q in the table:\n%s", want, out)
			}
			if !strings.Contains(string(out), "| wall, first start to last answer |") {
				t.Fatalf("no wall time in the table:\n%s", out)
			}
		})
	}
}
