//go:build windows

package main

import (
	"os/exec"
	"syscall"
)

// detachedProcess is the DETACHED_PROCESS creation flag: the daemon gets
// no console, so closing the terminal that started it does not end it.
const detachedProcess = 0x00000008

// detach starts the daemon without a console and in a process group of
// its own, so that neither closing the terminal nor its Ctrl-C stops it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP | detachedProcess,
		HideWindow:    true,
	}
}
