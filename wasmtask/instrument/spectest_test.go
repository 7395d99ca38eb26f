package instrument

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Spec conformance: every command of the spec test suites shipped inside
// wazero's module (wast2json output: .json + .wasm) is run on wazero twice,
// once with the plain modules and once with the instrumented modules (with an
// unlimited budget), and the two outcomes must be identical. The JSON format
// is the one wazero's internal/integration_test/spectest/spectest.go reads.

type specScript struct {
	SourceFile string        `json:"source_filename"`
	Commands   []specCommand `json:"commands"`
}

type specCommand struct {
	Type       string     `json:"type"`
	Line       int        `json:"line"`
	Name       string     `json:"name"`
	Filename   string     `json:"filename"`
	As         string     `json:"as"`
	Action     specAction `json:"action"`
	ModuleType string     `json:"module_type"`
	Text       string     `json:"text"`
}

type specAction struct {
	Type   string    `json:"type"`
	Module string    `json:"module"`
	Field  string    `json:"field"`
	Args   []specVal `json:"args"`
}

type specVal struct {
	Type     string `json:"type"`
	LaneType string `json:"lane_type"`
	Value    any    `json:"value"`
}

func (v specVal) words() []uint64 {
	parse := func(s string, bits int) uint64 {
		if strings.HasPrefix(s, "nan") {
			if bits == 32 {
				return uint64(math.Float32bits(float32(math.NaN())))
			}
			return math.Float64bits(math.NaN())
		}
		if strings.HasPrefix(s, "-") {
			i, _ := strconv.ParseInt(s, 10, bits)
			return uint64(i)
		}
		u, _ := strconv.ParseUint(s, 10, 64)
		return u
	}
	switch v.Type {
	case "v128":
		lanes, _ := v.Value.([]any)
		width := map[string]int{"i8": 8, "i16": 16, "i32": 32, "i64": 64, "f32": 32, "f64": 64}[v.LaneType]
		var lo, hi uint64
		if width == 0 {
			return []uint64{0, 0}
		}
		per := 64 / width
		for i, l := range lanes {
			s, _ := l.(string)
			x := parse(s, width)
			if width < 64 {
				x &= 1<<width - 1
			}
			if i < per {
				lo |= x << (i * width)
			} else {
				hi |= x << ((i - per) * width)
			}
		}
		return []uint64{lo, hi}
	case "externref":
		s, ok := v.Value.(string)
		if !ok || s == "null" {
			return []uint64{0}
		}
		u, _ := strconv.ParseUint(s, 10, 64)
		return []uint64{u + 1} // as wazero's runner: 0 is null
	case "funcref", "exnref":
		return []uint64{0}
	}
	s, _ := v.Value.(string)
	switch v.Type {
	case "i32", "f32":
		x := parse(s, 32)
		return []uint64{x & 0xffffffff}
	default:
		return []uint64{parse(s, 64)}
	}
}

// specExclusions are commands whose outcome legitimately differs, keyed by
// suite/file.json:line, with the reason.
var specExclusions = map[string]string{}

type specSuite struct {
	dir      string
	features api.CoreFeatures
	only     []string // if set, only these cases (as wazero's own runner)
}

func wazeroDir(t testing.TB) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("go list wazero: %v", err)
	}
	return strings.TrimSpace(string(out))
}

var specSuites = []specSuite{
	{dir: "v1", features: api.CoreFeaturesV1},
	{dir: "v2", features: api.CoreFeaturesV2},
	{dir: "threads", features: api.CoreFeaturesV2 | experimental.CoreFeaturesThreads},
	{dir: "tail-call", features: api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall},
	{dir: "extended-const", features: api.CoreFeaturesV2 | experimental.CoreFeaturesExtendedConst},
	{dir: "exception-handling", features: api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling | experimental.CoreFeaturesTailCall | experimental.CoreFeaturesTypedFunctionReferences,
		only: []string{"throw", "throw_ref", "tag", "try_table"}},
	{dir: "typed-function-references", features: api.CoreFeaturesV2 | experimental.CoreFeaturesTypedFunctionReferences | experimental.CoreFeaturesTailCall},
}

// specCounts accumulates what the conformance test ran, for the log.
type specCounts struct {
	mu       sync.Mutex
	run      map[string]int
	excluded map[string]int
	modules  int
}

func (c *specCounts) add(m map[string]int, k string) {
	c.mu.Lock()
	m[k]++
	c.mu.Unlock()
}

func TestSpecConformance(t *testing.T) {
	root := filepath.Join(wazeroDir(t), "internal", "integration_test", "spectest")
	spectestWasm, err := os.ReadFile(filepath.Join(root, "testdata", "spectest.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	counts := &specCounts{run: map[string]int{}, excluded: map[string]int{}}
	t.Cleanup(func() {
		var keys []string
		total, excl := 0, 0
		for k, v := range counts.run {
			keys = append(keys, fmt.Sprintf("%s=%d", k, v))
			total += v
		}
		sort.Strings(keys)
		var ex []string
		for k, v := range counts.excluded {
			ex = append(ex, fmt.Sprintf("%q=%d", k, v))
			excl += v
		}
		sort.Strings(ex)
		t.Logf("spec commands compared plain vs instrumented: %d (%s); modules instrumented: %d", total, strings.Join(keys, " "), counts.modules)
		t.Logf("spec commands excluded: %d (%s)", excl, strings.Join(ex, " "))
	})
	for _, suite := range specSuites {
		t.Run(suite.dir, func(t *testing.T) {
			dir := filepath.Join(root, suite.dir, "testdata")
			files, err := filepath.Glob(filepath.Join(dir, "*.json"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no spec json in %s: %v", dir, err)
			}
			for _, f := range files {
				name := strings.TrimSuffix(filepath.Base(f), ".json")
				if suite.only != nil && !contains(suite.only, name) {
					counts.add(counts.excluded, "case not run by wazero's own runner for "+suite.dir)
					continue
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					runSpecScript(t, dir, f, suite.features, spectestWasm, counts)
				})
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// specSide is one of the two runtimes a script runs on.
type specSide struct {
	instrumented bool
	r            wazero.Runtime
	meter        *meter
	modules      map[string]api.Module
	last         api.Module
}

func (s *specSide) load(t *testing.T, buf []byte, counts *specCounts) ([]byte, error) {
	if !s.instrumented {
		return buf, nil
	}
	res, err := Instrument(buf, Config{PollSkipping: true}) // as wasmtask instruments
	if err != nil {
		return nil, err
	}
	counts.mu.Lock()
	counts.modules++
	counts.mu.Unlock()
	return res.Wasm, nil
}

func runSpecScript(t *testing.T, dir, file string, features api.CoreFeatures, spectestWasm []byte, counts *specCounts) {
	ctx := context.Background()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var script specScript
	if err := json.Unmarshal(raw, &script); err != nil {
		t.Fatal(err)
	}
	cfg := wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features)
	if testing.Short() {
		cfg = wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(features)
	}
	sides := [2]*specSide{{}, {instrumented: true}}
	for _, s := range sides {
		s.modules = map[string]api.Module{}
		if s.instrumented {
			// A refill of 3 fuel makes nearly every check call the host,
			// so the scripts run every cold path of the wrapped loops
			// (cold.go) and every entry and reload check, not only the
			// fast paths.
			s.meter = &meter{refill: 3}
			s.r = newMeteredRuntime(t, ctx, cfg, s.meter)
		} else {
			s.r = wazero.NewRuntimeWithConfig(ctx, cfg)
		}
		defer s.r.Close(ctx)
		buf, err := s.load(t, spectestWasm, counts)
		if err != nil {
			t.Fatalf("instrument spectest.wasm: %v", err)
		}
		if _, err := s.r.InstantiateWithConfig(ctx, buf, wazero.NewModuleConfig().WithName("spectest")); err != nil {
			t.Fatalf("instantiate spectest (instrumented=%v): %v", s.instrumented, err)
		}
	}
	for i := 0; i < len(script.Commands); i++ {
		c := &script.Commands[i]
		where := fmt.Sprintf("%s:%d %s", filepath.Base(script.SourceFile), c.Line, c.Type)
		key := fmt.Sprintf("%s/%s:%d", filepath.Base(filepath.Dir(dir)), filepath.Base(file), c.Line)
		if reason, ok := specExclusions[key]; ok {
			counts.add(counts.excluded, c.Type+": "+reason)
			t.Logf("excluded %s: %s", key, reason)
			continue
		}
		switch c.Type {
		case "module", "assert_invalid", "assert_malformed", "assert_unlinkable", "assert_uninstantiable":
			if c.ModuleType == "text" {
				counts.add(counts.excluded, c.Type+": text module (no binary to instrument)")
				continue
			}
			buf, err := os.ReadFile(filepath.Join(dir, c.Filename))
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			registered := ""
			if c.Type == "module" && i+1 < len(script.Commands) && script.Commands[i+1].Type == "register" {
				registered = script.Commands[i+1].As
				i++
			}
			var outs [2]string
			var details [2]string
			for k, s := range sides {
				wasm, err := s.load(t, buf, counts)
				if err != nil {
					outs[k], details[k] = "error", "instrument: "+err.Error()
					continue
				}
				mod, err := s.r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(registered))
				if err != nil {
					outs[k], details[k] = "error", err.Error()
					continue
				}
				outs[k] = "ok"
				if c.Type == "module" {
					if c.Name != "" {
						s.modules[c.Name] = mod
					}
					s.last = mod
				}
			}
			if outs[0] != outs[1] {
				t.Errorf("%s (%s): plain %s (%s), instrumented %s (%s)", where, c.Filename, outs[0], details[0], outs[1], details[1])
			}
			counts.add(counts.run, c.Type)
		case "register":
			t.Fatalf("%s: register not directly after its module is not supported", where)
		case "assert_return", "action", "assert_trap", "assert_exhaustion", "assert_exception":
			var outs [2]string
			for k, s := range sides {
				outs[k] = s.act(ctx, c)
			}
			if outs[0] != outs[1] {
				t.Errorf("%s %s(%v): plain %q, instrumented %q", where, c.Action.Field, c.Action.Args, outs[0], outs[1])
			}
			switch c.Type {
			case "assert_return", "action":
				if strings.HasPrefix(outs[0], "trap") || strings.HasPrefix(outs[0], "no ") {
					t.Errorf("%s: plain run did not return: %s", where, outs[0])
				}
			case "assert_trap", "assert_exhaustion", "assert_exception":
				if !strings.HasPrefix(outs[0], "trap") {
					t.Errorf("%s: plain run did not trap: %s", where, outs[0])
				}
			}
			counts.add(counts.run, c.Type)
		default:
			t.Fatalf("%s: unknown command type", where)
		}
	}
}

// act performs an invoke or get action and renders its outcome.
func (s *specSide) act(ctx context.Context, c *specCommand) string {
	m := s.last
	if c.Action.Module != "" {
		m = s.modules[c.Action.Module]
	}
	if m == nil {
		return "no module"
	}
	switch c.Action.Type {
	case "get":
		g := m.ExportedGlobal(c.Action.Field)
		if g == nil {
			return "no global"
		}
		return renderVals([]api.ValueType{g.Type()}, []uint64{g.Get()})
	case "invoke":
		fn := m.ExportedFunction(c.Action.Field)
		if fn == nil {
			return "no function"
		}
		var args []uint64
		for _, a := range c.Action.Args {
			args = append(args, a.words()...)
		}
		res, err := fn.Call(ctx, args...)
		if err != nil {
			msg := err.Error()
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			return "trap: " + msg
		}
		return renderVals(fn.Definition().ResultTypes(), res)
	}
	return "unknown action " + c.Action.Type
}

func renderVals(types []api.ValueType, vals []uint64) string {
	var b strings.Builder
	i := 0
	for _, t := range types {
		if i >= len(vals) {
			break
		}
		switch t {
		case api.ValueTypeI32, api.ValueTypeF32:
			fmt.Fprintf(&b, "%#x ", uint32(vals[i]))
		case api.ValueTypeI64, api.ValueTypeF64:
			fmt.Fprintf(&b, "%#x ", vals[i])
		case 0x7b: // v128
			fmt.Fprintf(&b, "v128(%#x,%#x) ", vals[i], vals[i+1])
			i++
		default: // references are opaque pointers: compare nullness only
			if vals[i] == 0 {
				b.WriteString("null ")
			} else {
				b.WriteString("ref ")
			}
		}
		i++
	}
	return b.String()
}
