//go:build !unix

package procsup

import "os/exec"

// setGroup does nothing where there are no process groups.
func setGroup(*exec.Cmd) {}

// killGroup does nothing where there are no process groups: Conn.Close
// stops the process itself.
func killGroup(int) {}
