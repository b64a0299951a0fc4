package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Linux-only process accounting through /proc.

const clockTicks = 100 // USER_HZ on every mainstream Linux build

// resetPeakRSS resets this process's VmHWM to its current RSS.
func resetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak rss: %w", err)
	}
	return nil
}

// peakRSSMB is VmHWM of pid (0 = self) in MiB.
func peakRSSMB(pid int) (float64, error) {
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM: %w", err)
			}
			return round(kb/1024, 1), nil
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// cpuTicks is utime+stime of pid (0 = self) in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat for pid %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat for pid %d", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse stat for pid %d", pid)
	}
	return u + s, nil
}

// idleCPU measures the CPU used by pids over d, as percent of one core.
func idleCPU(pids []int, d time.Duration) (float64, error) {
	before := make([]int64, len(pids))
	for i, p := range pids {
		t, err := cpuTicks(p)
		if err != nil {
			return 0, err
		}
		before[i] = t
	}
	start := time.Now()
	time.Sleep(d)
	elapsed := time.Since(start).Seconds()
	var total int64
	for i, p := range pids {
		t, err := cpuTicks(p)
		if err != nil {
			return 0, err
		}
		total += t - before[i]
		logf("idle cpu pid %d: %.2f%% of a core", p, float64(t-before[i])/clockTicks/elapsed*100)
	}
	return round(float64(total)/clockTicks/elapsed*100, 3), nil
}

// ioWriteBytes is write_bytes of /proc/pid/io (0 when unavailable).
func ioWriteBytes(pid int) int64 {
	b, err := os.ReadFile(procPath(pid, "io"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// filesSize sums the sizes of the files that exist among paths.
func filesSize(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}

func sqliteFiles(db string) []string { return []string{db, db + "-wal", db + "-shm"} }

func procPath(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return fmt.Sprintf("/proc/%d/%s", pid, name)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peers: "+format+"\n", args...)
}
