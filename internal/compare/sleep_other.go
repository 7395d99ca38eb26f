//go:build !linux

package compare

import "time"

// preciseSleep is time.Sleep here (see sleep_linux.go).
func preciseSleep(d time.Duration) { time.Sleep(d) }
