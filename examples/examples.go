// Package examples holds the bundled example agent files, so that
// "infinity run demo" works on a fresh machine with no files at hand.
package examples

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Get returns the bundled agent file named name ("demo" for demo.yaml).
func Get(name string) ([]byte, bool) {
	b, err := files.ReadFile(name + ".yaml")
	return b, err == nil
}

// Names lists the bundled examples.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".") // an embedded FS always reads
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
	}
	slices.Sort(out)
	return out
}
