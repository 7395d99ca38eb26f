package instrument

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// validates reports whether wazero (interpreter, all features) accepts wasm.
// A panic inside wazero (its validator has index bugs on some malformed
// inputs, found by this fuzz target) is reported as an error.
func validates(wasm []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	fuzzRuntimeOnce.Do(func() {
		fuzzRuntime = wazero.NewRuntimeWithConfig(context.Background(),
			wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allFeatures))
	})
	c, err := fuzzRuntime.CompileModule(context.Background(), wasm)
	if err == nil {
		c.Close(context.Background())
	}
	return err
}

// FuzzInstrument checks that Instrument never panics (a recovered panic
// surfaces as an "internal error"), that every module wazero accepts is
// instrumented, and that the output is accepted by wazero too. The seed
// corpus is the spec suites' binaries (every 10th in -short mode) plus the
// project's guests.
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
	f.Fuzz(func(t *testing.T, wasm []byte) {
		res, err := Instrument(wasm, Config{})
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("Instrument panicked: %v", err)
		}
		if verr := validates(wasm); verr != nil {
			return // invalid input: any error (or output) is fine
		}
		if err != nil {
			if _, ok := err.(*ConfigError); ok && strings.Contains(err.Error(), "already exports") {
				return
			}
			t.Fatalf("wazero accepts the input but Instrument fails: %v", err)
		}
		if verr := validates(res.Wasm); verr != nil {
			// wazero accepted the input, so the output must be accepted too.
			t.Fatalf("instrumented output rejected by wazero: %v", verr)
		}
		if res.Report.BytesIn != len(wasm) || res.Report.BytesOut != len(res.Wasm) {
			t.Fatalf("report byte counts wrong: %+v", res.Report)
		}
	})
}
