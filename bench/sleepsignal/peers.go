package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// runPeers runs `go run . -system S -n N -runs R -json` in dir for every
// system and N (and, with idle, the same with -idle and one run) and
// collects the JSON rows it prints; notes say what was skipped.
func runPeers(dir string, systems []string, ns []int, runs int, idle bool) ([]Row, []string) {
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return nil, []string{fmt.Sprintf("peers skipped: %s has no go.mod (%v)", dir, err)}
	}
	var rows []Row
	var notes []string
	for _, sys := range systems {
		if !selected(sys) {
			continue
		}
		for _, n := range ns {
			args := [][]string{{"-runs", strconv.Itoa(runs)}}
			if idle {
				args = append(args, []string{"-runs", "1", "-idle"})
			}
			for _, a := range args {
				got, note := runPeer(dir, sys, n, a)
				rows, notes = append(rows, got...), append(notes, note...)
			}
		}
	}
	return rows, notes
}

func runPeer(dir, sys string, n int, extra []string) ([]Row, []string) {
	args := append([]string{"run", ".", "-system", sys, "-n", strconv.Itoa(n), "-json"}, extra...)
	logf("peers: go %v in %s", args, dir)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var notes []string
	got := parseRows(out.Bytes(), &notes, sys)
	if err != nil {
		notes = append(notes, fmt.Sprintf("peers: %s n=%d %v exited with %v after %d rows", sys, n, extra, err, len(got)))
	}
	if len(got) == 0 && err == nil {
		notes = append(notes, fmt.Sprintf("peers: %s n=%d %v printed no rows", sys, n, extra))
	}
	return got, notes
}

// parseRows reads the JSON-object lines of out; other lines are ignored.
func parseRows(out []byte, notes *[]string, sys string) []Row {
	var rows []Row
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r Row
		if err := json.Unmarshal(line, &r); err != nil {
			*notes = append(*notes, fmt.Sprintf("peers: %s: bad row %q: %v", sys, line, err))
			continue
		}
		rows = append(rows, r)
	}
	return rows
}
