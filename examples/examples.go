// Package examples holds the bundled example agent files, so that
// "infinity run demo" works on a fresh machine with no files at hand.
// prices.yaml beside them is an example prices file (package pricing), not
// an agent: Get and Names leave it out.
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

// PricesFile is the example prices file, which is not an agent file.
const PricesFile = "prices.yaml"

// Get returns the bundled agent file named name ("demo" for demo.yaml).
func Get(name string) ([]byte, bool) {
	if name+".yaml" == PricesFile {
		return nil, false
	}
	b, err := files.ReadFile(name + ".yaml")
	return b, err == nil
}

// Names lists the bundled examples.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".") // an embedded FS always reads
	var out []string
	for _, e := range entries {
		if e.Name() == PricesFile {
			continue
		}
		out = append(out, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
	}
	slices.Sort(out)
	return out
}
