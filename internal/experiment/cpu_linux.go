//go:build linux

package experiment

import (
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUSample is the machine's busy CPU time (Linux /proc/stat: every
// process, every CPU) and this process's CPU time (getrusage) at one
// instant. Two samples tell how much of the machine other processes used
// between them (ForeignCores).
type CPUSample struct {
	wall     time.Time
	busyAll  float64 // seconds, all CPUs, every process
	busySelf float64 // seconds, this process
	ok       bool
}

// SampleCPU takes a sample now. A sample that could not be read (no
// /proc/stat, an unexpected format) makes ForeignCores NaN.
func SampleCPU() CPUSample {
	c := CPUSample{wall: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return c
	}
	var total, idle float64
	// user nice system idle iowait irq softirq steal; guest and guest_nice
	// are already counted in user and nice.
	for i, x := range f[1:9] {
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return c
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	const userHZ = 100 // the kernel's USER_HZ for /proc/stat on Linux
	c.busyAll = (total - idle) / userHZ
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return c
	}
	c.busySelf = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	c.ok = true
	return c
}

// ForeignCores is the average number of cores other processes (and a
// hypervisor's steal) kept busy between a and b; NaN if either sample is
// unknown or no time passed. /proc/stat counts in ticks of 10 ms per CPU,
// so the figure may be off by about NumCPU*10ms/(b-a) either way: coarse
// over a window much under a second (it can then exceed NumCPU).
func ForeignCores(a, b CPUSample) float64 {
	wall := b.wall.Sub(a.wall).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return math.NaN()
	}
	return max((b.busyAll-a.busyAll)-(b.busySelf-a.busySelf), 0) / wall
}
