package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStatusKB returns a field of /proc/self/status in kB ("VmHWM").
func procStatusKB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// peakRSSMB is the process's peak RSS (VmHWM) in MB (10^6 bytes).
func peakRSSMB() float64 {
	kb, err := procStatusKB("VmHWM")
	if err != nil {
		return 0
	}
	return float64(kb) * 1024 / 1e6
}

// wchar is the bytes this process has passed to write-like system calls
// (/proc/self/io), or 0 where the kernel does not say.
func wchar() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "wchar:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return v
		}
	}
	return 0
}

// dirSize is the total size of the files under dir.
func dirSize(dir string) int64 {
	var size int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	return size
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle collects garbage and returns freed memory to the OS, so the
// scavenger does not run during a measured idle window.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// quantile returns the q-quantile (nearest rank) of sorted d in ms.
func quantile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d)-1)*q + 0.5)
	return float64(d[i]) / float64(time.Millisecond)
}

// stats sorts d and returns its p50, p99 and max in ms.
func stats(d []time.Duration) (p50, p99, mx float64) {
	slices.Sort(d)
	return quantile(d, 0.5), quantile(d, 0.99), quantile(d, 1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}
