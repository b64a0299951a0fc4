package local

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fdTimer is the sender's clock timer on Linux when the clock is the
// system clock: a timerfd that one goroutine reads through Go's network
// poller. A runtime timer (time.AfterFunc) runs only when a processor
// schedules and checks its timers, and the garbage collector's mark
// workers do not: on a two-core machine a mark phase can hold both
// processors for 10-20 ms at a time, and every wake-up due meanwhile
// waits. The poller is checked by those workers between pieces of
// marking (and by idle processors and the system monitor), so a timerfd
// that expires wakes its reader within microseconds. Cost: one goroutine
// per sender that has had a timer, asleep in the poller while it waits,
// and one timerfd_settime call per re-arm.
type fdTimer struct {
	f  *os.File
	fd int
}

// newFDTimer creates the timerfd and starts its reader, which calls fire
// at each expiry until close.
func newFDTimer(fire func()) (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("local: timerfd: %w", err)
	}
	t := &fdTimer{f: os.NewFile(uintptr(fd), "local-sender-timerfd"), fd: fd}
	go t.run(fire)
	return t, nil
}

func (t *fdTimer) run(fire func()) {
	var buf [8]byte // the expiry count
	for {
		if _, err := t.f.Read(buf[:]); err != nil {
			return // closed
		}
		fire()
	}
}

// arm sets the timer to expire once, d from now (at once for d <= 0).
// The caller holds the sender's lock, so arm never runs after close.
func (t *fdTimer) arm(d time.Duration) error {
	d = max(d, 1) // an all-zero value would disarm it
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		return fmt.Errorf("local: timerfd_settime: %w", err)
	}
	return nil
}

// disarm stops the timer; an expiry already read still calls fire, which
// finds nothing due.
func (t *fdTimer) disarm() bool {
	return unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{}, nil) == nil
}

// close stops the reader.
func (t *fdTimer) close() { t.f.Close() }
