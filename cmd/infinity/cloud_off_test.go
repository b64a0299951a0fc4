package main

import (
	"slices"
	"strings"
	"testing"
)

// namesCloud says whether a command line runs one of the cloud commands
// (directly or through help), which only a binary built with -tags cloud
// has.
func namesCloud(args []string) bool {
	return slices.Contains(args, "cloud") || slices.Contains(args, "cloud-local")
}

// Built without the tag, the cloud commands are listed, show a help that
// says how to build them, and fail with exit 1 naming the tag.
func TestCloudNotBuilt(t *testing.T) {
	if cloudBuilt {
		t.Skip("built with -tags cloud")
	}
	for _, args := range [][]string{{"cloud", "ls", "--stack", "x"}, {"cloud-local", "hi"}, {"cloud"}} {
		_, errOut, code := cmdCode(t, args...)
		if code != exitError || !strings.Contains(errOut, "go build -tags cloud ./cmd/infinity") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	out, _, code := cmdCode(t, "cloud-local", "--help")
	if code != exitOK || !strings.Contains(out, "built without the cloud commands") {
		t.Errorf("cloud-local --help: exit %d:\n%s", code, out)
	}
	if out := cmdOut(t, "--help"); !strings.Contains(out, "cloud-local") {
		t.Errorf("help lacks the cloud commands:\n%s", out)
	}
}
