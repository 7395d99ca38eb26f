//go:build linux

package compare

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d in the nanosleep system call. Go's timers wake a
// goroutine whose P would otherwise idle through the netpoller, whose
// epoll timeout is in whole milliseconds: a submitter sleeping the rest of
// a 1 ms period with time.Sleep would be most of a period late at every
// request, which is the load generator's lateness, not the scheduler's.
// nanosleep is precise to the kernel's timer slack.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
