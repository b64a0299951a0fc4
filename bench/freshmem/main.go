//go:build linux

// Command freshmem measures what memory a process touches for the first
// time costs on this machine: it maps N MiB (default 400) and writes one
// byte per 4 KiB page, so that each write faults a page in, first without
// and then with transparent huge pages asked for (madvise). On a virtual
// machine whose memory the host backs lazily this is far dearer than on
// bare metal, and a benchmark that grows its process's memory pays it
// (bench/modelcalls' README).
//
//	go run ./bench/freshmem
//	go run ./bench/freshmem -mib 1024
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

const page = 4096

func main() {
	mib := flag.Int("mib", 400, "how much memory to touch, in MiB")
	flag.Parse()
	if *mib <= 0 {
		fmt.Fprintln(os.Stderr, "bench/freshmem: -mib must be positive")
		os.Exit(2)
	}
	n := *mib << 20
	fmt.Println("| pages | huge pages asked for | time | per 4 KiB page |")
	fmt.Println("|---|---|---|---|")
	for _, huge := range []bool{false, true} {
		b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/freshmem: mmap:", err)
			os.Exit(1)
		}
		if huge {
			if err := syscall.Madvise(b, syscall.MADV_HUGEPAGE); err != nil {
				fmt.Fprintln(os.Stderr, "bench/freshmem: madvise:", err)
			}
		}
		start := time.Now()
		for i := 0; i < n; i += page {
			b[i] = 1
		}
		d := time.Since(start)
		fmt.Printf("| %d | %v | %s | %.2f µs |\n", n/page, huge, d.Round(time.Millisecond), float64(d.Nanoseconds())/1e3/float64(n/page))
		_ = syscall.Munmap(b)
	}
}
