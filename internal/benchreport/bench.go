package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmsched/wasmsched/internal/experiment"
)

// benchSet holds every sample of every (benchmark, unit) in the input,
// plus the header lines go test prints (goos, goarch, pkg, cpu).
type benchSet struct {
	samples map[string]map[string][]float64 // name (no -N suffix) -> unit -> values
	procs   map[string]int                  // name -> the -N suffix (GOMAXPROCS)
	header  map[string]string
	order   []string
}

// parseBench reads `go test -bench` output. A result line is
//
//	BenchmarkName/sub-2   <iterations>   <value> <unit>   <value> <unit> ...
func parseBench(r io.Reader) (*benchSet, error) {
	bs := &benchSet{samples: map[string]map[string][]float64{}, procs: map[string]int{}, header: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, "Benchmark") && !strings.Contains(k, " ") {
			bs.header[k] = strings.TrimSpace(v)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := strings.TrimPrefix(fields[0], "Benchmark")
		procs := 1
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if n, err := strconv.Atoi(name[i+1:]); err == nil {
				name, procs = name[:i], n
			}
		}
		if _, ok := bs.samples[name]; !ok {
			bs.samples[name] = map[string][]float64{}
			bs.order = append(bs.order, name)
		}
		bs.procs[name] = procs
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in %q", fields[i], line)
			}
			bs.samples[name][fields[i+1]] = append(bs.samples[name][fields[i+1]], v)
		}
	}
	return bs, sc.Err()
}

// stat is the median of a sample with its spread.
type stat struct {
	median, min, max float64
	n                int
}

func (bs *benchSet) get(name, unit string) (stat, bool) {
	xs := bs.samples[name][unit]
	if len(xs) == 0 {
		return stat{}, false
	}
	return summarise(xs), true
}

func summarise(xs []float64) stat {
	return stat{median: experiment.Median(xs), min: slices.Min(xs), max: slices.Max(xs), n: len(xs)}
}

// String is "median ±spread%" where spread is the largest distance from the
// median to the min or max, as a percentage of the median.
func (s stat) String() string {
	if s.n == 0 {
		return "—"
	}
	spread := 0.0
	if s.median != 0 {
		spread = 100 * max(s.max-s.median, s.median-s.min) / s.median
	}
	return fmt.Sprintf("%s ±%.0f%%", num(s.median), spread)
}
