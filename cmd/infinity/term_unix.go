//go:build unix

package main

import "golang.org/x/sys/unix"

// termSize reports whether fd is a terminal and, if so, its width in
// columns (0 when the terminal does not say).
func termSize(fd uintptr) (width int, isTerm bool) {
	ws, err := unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}

// enableColor prepares the terminal for colour escapes; a Unix terminal
// takes them as they are.
func enableColor(uintptr) bool { return true }
