package wasmtask

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Text arguments for an export, for front ends that take calls as text
// (the CLI's run, serve's HTTP query).

// ParseArgs parses the textual arguments of a call to a function
// with the given parameter types into Wasm's raw values: integers for i32
// (signed or unsigned 32-bit) and i64, decimal floats for f32 and f64. A
// wrong count, an unparsable value or one out of its type's range is a
// usage error, reported before any guest runs.
func ParseArgs(fn string, ss []string, params []api.ValueType) ([]uint64, error) {
	if len(ss) != len(params) {
		names := make([]string, len(params))
		for i, p := range params {
			names[i] = api.ValueTypeName(p)
		}
		return nil, fmt.Errorf("%s takes %d arguments (%s), got %d", fn, len(params), strings.Join(names, ", "), len(ss))
	}
	out := make([]uint64, len(ss))
	for i, s := range ss {
		v, err := parseArgValue(strings.TrimSpace(s), params[i])
		if err != nil {
			return nil, fmt.Errorf("argument %d of %s: %w", i+1, fn, err)
		}
		out[i] = v
	}
	return out, nil
}

func parseArgValue(s string, t api.ValueType) (uint64, error) {
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
