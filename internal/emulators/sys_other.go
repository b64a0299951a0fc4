//go:build !linux

package emulators

import (
	"fmt"
	"os/exec"
)

func lockFile(string) (func(), error) {
	return nil, fmt.Errorf("%w: the emulators run on Linux only", ErrUnavailable)
}

func child(*exec.Cmd, int, int) {}

func kill(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}
