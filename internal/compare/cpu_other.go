//go:build !linux

package compare

import (
	"math"
	"time"
)

// cpuSample: other processes' CPU use is measured on Linux only.
type cpuSample struct{ wall time.Time }

func sampleCPU() cpuSample { return cpuSample{wall: time.Now()} }

func foreignCores(a, b cpuSample) float64 { return math.NaN() }
