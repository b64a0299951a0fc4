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

//go:embed *.yaml */agent.yaml */script.json
var files embed.FS

// demo is demo.yaml on its own: a program that needs only the demo (the
// Lambda bootstrap, which has a size budget) links it without the others.
//
//go:embed demo.yaml
var demo []byte

// Demo returns the bundled demo agent's file (Get("demo")).
func Demo() []byte { return demo }

// PricesFile is the example prices file, which is not an agent file.
const PricesFile = "prices.yaml"

// Get returns the bundled agent file named name: "demo" for demo.yaml,
// "approval" for approval/agent.yaml.
func Get(name string) ([]byte, bool) {
	if name+".yaml" == PricesFile || strings.ContainsAny(name, "/.") {
		return nil, false
	}
	if b, err := files.ReadFile(name + ".yaml"); err == nil {
		return b, true
	}
	b, err := files.ReadFile(name + "/agent.yaml")
	return b, err == nil
}

// Script returns a bundled example's scripted-model script (its folder's
// script.json), if it has one.
func Script(name string) ([]byte, bool) {
	if strings.ContainsAny(name, "/.") {
		return nil, false
	}
	b, err := files.ReadFile(name + "/script.json")
	return b, err == nil
}

// Names lists the bundled examples.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".") // an embedded FS always reads
	var out []string
	for _, e := range entries {
		switch {
		case e.Name() == PricesFile:
		case e.IsDir():
			out = append(out, e.Name())
		default:
			out = append(out, strings.TrimSuffix(e.Name(), path.Ext(e.Name())))
		}
	}
	slices.Sort(out)
	return out
}
