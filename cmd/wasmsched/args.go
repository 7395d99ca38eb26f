package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// formatTypedValues formats results by their types (i32 results are the
// low 32 bits of their raw value, shown signed if negative).
func formatTypedValues(vs []uint64, types []api.ValueType) string {
	ss := make([]string, len(vs))
	for i, v := range vs {
		t := api.ValueTypeI64
		if i < len(types) {
			t = types[i]
		}
		switch t {
		case api.ValueTypeI32:
			ss[i] = strconv.FormatInt(int64(int32(uint32(v))), 10)
		case api.ValueTypeF32:
			ss[i] = strconv.FormatFloat(float64(math.Float32frombits(uint32(v))), 'g', -1, 32)
		case api.ValueTypeF64:
			ss[i] = strconv.FormatFloat(math.Float64frombits(v), 'g', -1, 64)
		default:
			ss[i] = strconv.FormatUint(v, 10)
		}
	}
	if len(ss) == 1 {
		return ss[0]
	}
	return "(" + strings.Join(ss, ", ") + ")"
}

// parseSize parses a byte size (a count, or with a KiB/MiB/GiB suffix)
// of at most max.
func parseSize(s string, max int64) (int64, error) {
	mult := int64(1)
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 || n > max/mult {
		return 0, fmt.Errorf("%q is not a positive size of at most %d bytes (e.g. 256MiB)", s, max)
	}
	return n * mult, nil
}
