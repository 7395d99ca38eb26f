package wasmtask

import (
	"math"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

func TestParseArgs(t *testing.T) {
	i32, i64, f32, f64 := api.ValueTypeI32, api.ValueTypeI64, api.ValueTypeF32, api.ValueTypeF64
	for _, c := range []struct {
		in     []string
		params []api.ValueType
		want   []uint64
		err    string
	}{
		{[]string{"-1", "4294967295"}, []api.ValueType{i32, i32}, []uint64{0xffffffff, 0xffffffff}, ""},
		{[]string{"-1", "18446744073709551615", "0x10"}, []api.ValueType{i64, i64, i64}, []uint64{math.MaxUint64, math.MaxUint64, 16}, ""},
		{[]string{" 1.5 ", "2.5"}, []api.ValueType{f32, f64}, []uint64{uint64(math.Float32bits(1.5)), math.Float64bits(2.5)}, ""},
		{[]string{"4294967296"}, []api.ValueType{i32}, nil, "is not an i32"},
		{[]string{"18446744073709551616"}, []api.ValueType{i64}, nil, "is not an i64"},
		{[]string{"x"}, []api.ValueType{f64}, nil, "is not an f64"},
		{[]string{"1"}, []api.ValueType{i32, i32}, nil, "f takes 2 arguments (i32, i32), got 1"},
		{[]string{"1"}, []api.ValueType{api.ValueTypeExternref}, nil, "cannot be given as text"},
	} {
		got, err := ParseArgs("f", c.in, c.params)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want error with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Fatalf("%q: %v, %v", c.in, got, err)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: value %d is %#x, want %#x", c.in, i, got[i], c.want[i])
			}
		}
	}
}

// FuzzParseArgs: any text either parses to one value per parameter or is
// refused with an error; it never panics.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"1", "-1,2", "0x7fffffff", "1e400", "NaN,-Inf", ",,", strings.Repeat("9", 400)} {
		f.Add(s, uint8(0x7f))
		f.Add(s, uint8(0x7c))
	}
	f.Fuzz(func(t *testing.T, text string, typ uint8) {
		in := strings.Split(text, ",")
		params := make([]api.ValueType, len(in))
		for i := range params {
			params[i] = api.ValueType(typ)
		}
		got, err := ParseArgs("f", in, params)
		if err == nil && len(got) != len(in) {
			t.Fatalf("%d values for %d arguments", len(got), len(in))
		}
	})
}
