//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach starts the daemon in its own session, so that closing the
// terminal does not stop it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
