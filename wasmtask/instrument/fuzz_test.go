package instrument

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

const allFeatures = api.CoreFeaturesV2 | experimental.CoreFeaturesThreads | experimental.CoreFeaturesTailCall |
	experimental.CoreFeaturesExtendedConst | experimental.CoreFeaturesExceptionHandling |
	experimental.CoreFeaturesTypedFunctionReferences

var (
	fuzzRuntimeOnce sync.Once
	fuzzRuntime     wazero.Runtime
)

func fuzzRT() wazero.Runtime {
	fuzzRuntimeOnce.Do(func() {
		fuzzRuntime = wazero.NewRuntimeWithConfig(context.Background(),
			wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allFeatures))
	})
	return fuzzRuntime
}

// validates reports whether wazero (interpreter, all features) accepts wasm.
// A panic inside wazero (its validator has index bugs on some malformed
// inputs, found by this fuzz target) is reported as an error.
func validates(wasm []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	c, err := fuzzRT().CompileModule(context.Background(), wasm)
	if err == nil {
		c.Close(context.Background())
	}
	return err
}

// heapAllocs returns the bytes allocated on the heap since the program
// started (cumulative: frees do not lower it).
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// compileBound is the most wazero may allocate compiling the output of
// Instrument: 64 MiB of fixed overhead (the runtime, the compiler's
// buffers), 512 bytes per byte of module, and 512 bytes per declared local.
// Every count in the output is bounded by the bytes that hold it, and what
// wazero allocates per counted element is a few dozen bytes (wasm.Code,
// wasm.Import, wasm.ElementSegment, wasm.Export and map entries, a constant
// expression per element: measured 25 to 75 bytes per byte of module on
// modules made of them) up to a few hundred for the types and the compiled
// instructions (measured: 190 per byte of empty function types, 320 to 380
// per byte of one-byte numeric operators, 345 per byte of instrumented
// loops; the interpreter emits a 64-byte operation for most instructions
// and grows its slices by doubling), hence the per-byte term. Locals are
// the exception: a few bytes declare up to Limits.Locals of them, and the
// interpreter emits an operation for each (measured: 100 to 450 bytes
// allocated per local), so they are bounded by Limits.TotalLocals instead,
// which Report.TotalLocals gives the embedder to admit by. For inputs of
// fuzzing size the fixed term dominates: what the bound catches is an
// allocation by an unchecked count, which is gigabytes.
func compileBound(res Result) uint64 {
	return 64<<20 + 512*uint64(len(res.Wasm)) + 512*res.Report.TotalLocals
}

// compileAllocs compiles wasm with the fuzz runtime and returns wazero's
// verdict and the bytes allocated meanwhile.
func compileAllocs(wasm []byte) (uint64, error) {
	fuzzRT() // created outside the measurement
	before := heapAllocs()
	err := validates(wasm)
	return heapAllocs() - before, err
}

// FuzzInstrument checks that Instrument never panics (a recovered panic
// surfaces as an "internal error"); that whatever it returns without error
// wazero compiles with bounded allocation (compileBound); that every module
// wazero accepts is instrumented (unless it exceeds a default Limit); and
// that the output of such a module is accepted by wazero too. The seed
// corpus is the spec suites' binaries (every 10th in -short mode), the
// project's guests, the allocation bombs of boundSeeds and the files under
// testdata/fuzz/FuzzInstrument.
func FuzzInstrument(f *testing.F) {
	root := filepath.Join(wazeroDir(f), "internal", "integration_test", "spectest")
	files, _ := filepath.Glob(filepath.Join(root, "*", "testdata", "*.wasm"))
	if len(files) == 0 {
		f.Fatal("no spec binaries found for the seed corpus")
	}
	for i, file := range files {
		if testing.Short() && i%10 != 0 {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(readTestdata(f, "spin.wasm"))
	f.Add(readTestdata(f, "cguest.wasm"))
	for _, s := range boundSeeds() {
		f.Add(s.wasm)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		// Half the inputs (by length) get the poll-skipping globals and
		// helper, which is how wasmtask instruments.
		res, err := Instrument(wasm, Config{PollSkipping: len(wasm)%2 == 1})
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("Instrument panicked: %v", err)
		}
		var outErr error
		if err == nil {
			// The output goes to wazero whatever the input was: this is
			// what the embedder does.
			var n uint64
			n, outErr = compileAllocs(res.Wasm)
			if n > compileBound(res) {
				t.Fatalf("wazero allocated %d bytes compiling a %d-byte output (%d locals), bound %d",
					n, len(res.Wasm), res.Report.TotalLocals, compileBound(res))
			}
			if res.Report.BytesIn != len(wasm) || res.Report.BytesOut != len(res.Wasm) {
				t.Fatalf("report byte counts wrong: %+v", res.Report)
			}
		}
		if !plausible(wasm) {
			// Some count wazero preallocates by exceeds the bytes that hold
			// it: the INPUT is not handed to wazero (a 20-byte input made
			// it allocate 26 GB). Such inputs are malformed.
			return
		}
		if verr := validates(wasm); verr != nil {
			return // invalid input: any error (or output) is fine
		}
		if err != nil {
			if _, ok := err.(*ConfigError); ok && strings.Contains(err.Error(), "already exports") {
				return
			}
			if _, ok := err.(*LimitError); ok {
				return
			}
			t.Fatalf("wazero accepts the input but Instrument fails: %v", err)
		}
		if outErr != nil {
			// wazero accepted the input, so the output must be accepted too.
			t.Fatalf("instrumented output rejected by wazero: %v", outErr)
		}
	})
}

// plausible reports whether every vector count that wazero preallocates by
// (section counts, function type arities, local declarations, name maps) is
// bounded by the bytes that follow it and read within its section. Valid
// modules always are (the name section, which wazero reads leniently, is
// bounded by the module's size instead).
func plausible(wasm []byte) bool {
	if len(wasm) < 8 {
		return true
	}
	r := &reader{b: wasm, pos: 8}
	for !r.eof() && r.err == nil {
		id := r.byte()
		payload := r.bytes(int(r.u32()))
		if r.err != nil {
			return false // truncated: certainly invalid
		}
		s := &reader{b: payload}
		if id == secCustom {
			if string(s.name()) != "name" {
				continue
			}
			// wazero decodes subsections 0-2 from the module stream without
			// regard to their sizes and allocates by every count and name
			// length it reads: bound them all by the module's size.
			limit := uint32(len(wasm))
			for !s.eof() && s.err == nil {
				id := s.byte()
				size := s.u32()
				if id > 2 {
					s.bytes(int(size))
					continue
				}
				sub := &reader{b: payload[s.pos:]}
				if s.bytes(int(size)) == nil && s.err != nil {
					return false
				}
				name := func() bool { n := sub.u32(); sub.bytes(int(n)); return sub.err == nil && n <= limit }
				switch id {
				case 0:
					if !name() {
						return false
					}
				case 1, 2:
					n := sub.u32()
					if sub.err != nil || n > limit {
						return false
					}
					for i := uint32(0); i < n; i++ {
						sub.u32()
						if id == 1 {
							if !name() {
								return false
							}
							continue
						}
						k := sub.u32()
						if sub.err != nil || k > limit {
							return false
						}
						for j := uint32(0); j < k; j++ {
							sub.u32()
							if !name() {
								return false
							}
						}
					}
				}
				if sub.err != nil {
					return false
				}
			}
			if s.err != nil {
				return false
			}
			continue
		}
		n := s.u32()
		if s.err == nil && int(n) > len(payload) {
			return false
		}
		bounded := func(c uint32) bool { return s.err == nil && int(c) <= len(payload) }
		expr := func() { // skip a constant expression
			for s.err == nil {
				switch op := s.byte(); op {
				case opEnd:
					return
				case opI32Const, opI64Const, opGlobalGet, opRefFunc, opRefNull:
					s.s64()
				case opF32Const:
					s.bytes(4)
				case opF64Const:
					s.bytes(8)
				case opPrefixVec:
					s.u32()
					s.bytes(16)
				}
			}
		}
		switch id {
		case secElement:
			for i := uint32(0); i < n && s.err == nil; i++ {
				flags := s.u32()
				if flags&2 != 0 && flags&1 == 0 {
					s.u32() // table index
				}
				if flags&1 == 0 {
					expr()
				}
				if flags&3 != 0 {
					s.byte() // elemkind or reftype
				}
				k := s.u32()
				if !bounded(k) {
					return false
				}
				for j := uint32(0); j < k && s.err == nil; j++ {
					if flags&4 != 0 {
						expr()
					} else {
						s.u32()
					}
				}
			}
		case secData:
			for i := uint32(0); i < n && s.err == nil; i++ {
				flags := s.u32()
				if flags == 2 {
					s.u32()
				}
				if flags != 1 {
					expr()
				}
				k := s.u32()
				if !bounded(k) {
					return false
				}
				s.bytes(int(k))
			}
		case secType:
			for i := uint32(0); i < n && s.err == nil; i++ {
				if s.byte() == 0x4e {
					k := s.u32()
					if int(k) > len(payload) {
						return false
					}
					s.byte()
				}
				for j := 0; j < 2 && s.err == nil; j++ {
					c := s.u32()
					if int(c) > len(payload)-s.pos {
						return false
					}
					s.bytes(int(c))
				}
			}
		case secCode:
			for i := uint32(0); i < n && s.err == nil; i++ {
				body := &reader{b: s.bytes(int(s.u32()))}
				nd := body.u32()
				var total uint64
				for j := uint32(0); j < nd && body.err == nil; j++ {
					total += uint64(body.u32())
					body.byte()
				}
				if total > 1<<20 || int(nd) > len(body.b) || body.err != nil {
					return false
				}
			}
		}
		if s.err != nil {
			// A count cut off by the section's end: certainly invalid, and
			// wazero would read the count on into the next section.
			return false
		}
	}
	return r.err == nil
}
