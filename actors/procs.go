package actors

import (
	"os"
	"runtime"
)

// MinProcs is the fewest Go processors (GOMAXPROCS) a process hosting a
// Runtime should run with, whatever the number of cores; the infinity
// daemon does (RaiseProcs).
//
// Below four processors Go's garbage collector marks with fractional
// workers: during a mark phase each processor may run one for 10-20 ms at
// a stretch, and such a worker looks at no runnable goroutine, timer or
// network event until it stops (golang/go#21698). On a two-core machine
// both processors can be held at once, and every timer due meanwhile
// fires late by as much. From four processors on the collector uses
// dedicated workers (its 25 % is then whole processors) and the other
// processors stay responsive. Measured with bench/daemon row 2 (100,000
// sleepers on two cores): timer lateness p99 5.7-6.4 ms with GOMAXPROCS=2,
// 2.8-3.5 ms with 4; durable slices/s unchanged or better.
const MinProcs = 4

// RaiseProcs sets GOMAXPROCS to MinProcs when it is lower, unless the
// GOMAXPROCS environment variable chose a value; it returns the value in
// effect. The infinity daemon command calls it before it opens the
// daemon; a program that embeds a Runtime may too.
func RaiseProcs() int {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || n >= MinProcs {
		return n
	}
	runtime.GOMAXPROCS(MinProcs)
	return MinProcs
}
