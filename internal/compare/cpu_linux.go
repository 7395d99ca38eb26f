//go:build linux

package compare

import (
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is the machine's busy CPU time (Linux /proc/stat) and this
// process's CPU time, to tell how much of the machine other processes used
// during a window: every latency figure is inflated when they take the
// cores the workers need. (The same method as scheduler's yield experiment.)
type cpuSample struct {
	wall     time.Time
	busyAll  float64 // seconds, all CPUs, every process
	busySelf float64 // seconds, this process
	ok       bool
}

func sampleCPU() cpuSample {
	c := cpuSample{wall: time.Now()}
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
	for i, x := range f[1:9] { // user nice system idle iowait irq softirq steal (guest is in user)
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return c
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	const userHZ = 100 // USER_HZ of /proc/stat on Linux
	c.busyAll = (total - idle) / userHZ
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return c
	}
	c.busySelf = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	c.ok = true
	return c
}

// foreignCores is the average number of cores other processes (and a
// hypervisor's steal) kept busy between a and b; NaN if unknown.
func foreignCores(a, b cpuSample) float64 {
	wall := b.wall.Sub(a.wall).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return math.NaN()
	}
	return max((b.busyAll-a.busyAll)-(b.busySelf-a.busySelf), 0) / wall
}
