package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// parseTypedArgs parses the textual arguments of a call to a function
// with the given parameter types into Wasm's raw values: integers for i32
// (signed or unsigned 32-bit) and i64, decimal floats for f32 and f64. A
// wrong count, an unparsable value or one out of its type's range is a
// usage error, reported before any guest runs.
func parseTypedArgs(fn string, ss []string, params []api.ValueType) ([]uint64, error) {
	if len(ss) != len(params) {
		names := make([]string, len(params))
		for i, p := range params {
			names[i] = api.ValueTypeName(p)
		}
		return nil, fmt.Errorf("%s takes %d arguments (%s), got %d", fn, len(params), strings.Join(names, ", "), len(ss))
	}
	out := make([]uint64, len(ss))
	for i, s := range ss {
		v, err := parseValue(strings.TrimSpace(s), params[i])
		if err != nil {
			return nil, fmt.Errorf("argument %d of %s: %w", i+1, fn, err)
		}
		out[i] = v
	}
	return out, nil
}

func parseValue(s string, t api.ValueType) (uint64, error) {
	switch t {
	case api.ValueTypeI32:
		if v, err := strconv.ParseInt(s, 0, 32); err == nil {
			return uint64(uint32(int32(v))), nil
		}
		if v, err := strconv.ParseUint(s, 0, 32); err == nil {
			return v, nil
		}
		return 0, fmt.Errorf("%q is not an i32 (an integer from -2147483648 to 4294967295)", s)
	case api.ValueTypeI64:
		if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			return uint64(v), nil
		}
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			return v, nil
		}
		return 0, fmt.Errorf("%q is not an i64 (an integer of 64 bits, signed or not)", s)
	case api.ValueTypeF32:
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an f32", s)
		}
		return uint64(math.Float32bits(float32(v))), nil
	case api.ValueTypeF64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an f64", s)
		}
		return math.Float64bits(v), nil
	}
	return 0, fmt.Errorf("a parameter of type %s cannot be given as text", api.ValueTypeName(t))
}

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
