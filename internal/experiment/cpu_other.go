//go:build !linux

package experiment

import (
	"math"
	"time"
)

// CPUSample: other processes' CPU use is measured on Linux only.
type CPUSample struct{ wall time.Time }

// SampleCPU takes a sample now.
func SampleCPU() CPUSample { return CPUSample{wall: time.Now()} }

// ForeignCores is NaN: unknown outside Linux.
func ForeignCores(a, b CPUSample) float64 { return math.NaN() }
