package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// num formats v with no decimals from 100, one from 10, else two ("—" when
// unknown).
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// ratio is a / b as "1.23x" ("—" when either is unknown or b is 0).
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "—"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// verdict is a target met or missed.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// ensureNL ends s with a newline, unless it is empty.
func ensureNL(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// iters are the spinners' iterations, " / " between them.
func iters(xs []uint64) string {
	if len(xs) == 0 {
		return "—"
	}
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatUint(x, 10))
	}
	return strings.Join(s, " / ")
}

// jain formats Jain's index ("—" when unknown).
func jain(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.4f", v)
}

// cpuModel is /proc/cpuinfo's model name.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// kernel is uname -srm.
func kernel() string {
	out, err := exec.Command("uname", "-srm").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
