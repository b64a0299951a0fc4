//go:build !unix && !windows

package main

import "os/exec"

// detach has nothing to do where there are neither sessions nor consoles
// (such as wasip1): the daemon is started as a plain child.
func detach(*exec.Cmd) {}
