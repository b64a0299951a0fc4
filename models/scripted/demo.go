package scripted

import (
	_ "embed"
	"fmt"
)

//go:embed demo.json
var demoJSON []byte

// Demo returns the script of the offline demo (demo.json): a root thread
// that spawns three children in parallel; each child sleeps a few seconds,
// reports to the root and closes itself; the root waits for the three
// reports and then writes a summary. Each call returns a fresh copy.
func Demo() Script {
	s, err := Parse(demoJSON)
	if err != nil {
		panic(fmt.Sprintf("scripted: the embedded demo.json is invalid: %v", err))
	}
	return s
}

// DemoJSON returns the text of demo.json, a starting point for new scripts.
func DemoJSON() []byte { return append([]byte(nil), demoJSON...) }
