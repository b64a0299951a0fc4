package embedded_test

import (
	"os"
	"strings"
	"testing"
)

// The README's Go API snippet is Example's body, so it compiles and runs.
func TestREADMESnippetIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## The Go API")
	_, block, ok2 := strings.Cut(section, "```go\n")
	snippet, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no ```go block under \"## The Go API\"")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "\t// README begin\n")
	body, _, _ = strings.Cut(body, "\t// README end\n")
	var want strings.Builder
	for line := range strings.Lines(body) {
		want.WriteString(strings.TrimPrefix(line, "\t"))
	}
	if snippet != want.String() {
		t.Errorf("the README's snippet differs from Example's body (between its README markers):\nREADME:\n%s\nExample:\n%s", snippet, want.String())
	}
}
