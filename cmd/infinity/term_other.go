//go:build !unix && !windows

package main

// termSize: no terminal is known on this platform.
func termSize(uintptr) (width int, isTerm bool) { return 0, false }

func enableColor(uintptr) bool { return false }
