package instrument

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The golden tests pin what Instrument produces, byte for byte, so that a
// change meant to keep behaviour (a refactoring) is seen to keep it. A change
// meant to alter the output updates the sums below in the same commit, and
// says why.

// goldenFiles are SHA-256 sums of the instrumented output (Config{}) of the
// project's guests and of a few spec binaries of wazero v1.12.0 chosen for
// their features. "testdata/..." is under the module root; "spec/..." under
// wazero's internal/integration_test/spectest.
var goldenFiles = []struct{ path, sum string }{
	{"testdata/spin.wasm", "a89c65aa35d0655a9ae8eb1cbdaa2240ffb0350105d6e0692b61695056fca040"},
	{"testdata/fuel.wasm", "52ca477197151f20f5873bf58f637626248cd7ff624550e332dd69bde4364d03"},
	{"testdata/cguest.wasm", "963ef4e6ad94627d6868ab23a12e53b5ccba9f7e7616e67ea4fea330519a063b"},
	{"testdata/goguest.wasm", "93c22372d52ee7c033ef4cc7889239b2b5b296921cbaf781bdf4e89313425a7e"},
	{"spec/v2/testdata/br_table.0.wasm", "f0dcc46a2c42d2dbbd362a15aa09de119ee435e3befd78dc32fc1af12c30f15c"},
	{"spec/v2/testdata/simd_store8_lane.0.wasm", "56171f742e6a250548e8f22d9c98d7048029b3affee3253bf29fde9c75ebc913"},
	{"spec/v2/testdata/memory_copy.96.wasm", "72afacb9548f7fc95aaef15bb3a5c56b9858eced34030922815a5559cb30fb4e"},
	{"spec/v2/testdata/names.2.wasm", "d4a030cc575117d7205641366b872d3aacfe66b5530a768b51b012c11198f812"},
	{"spec/threads/testdata/atomic.0.wasm", "ee66222da2bc9a7ace11e8a80c98c7a0d47c8ff73f8e3695bf794fc6b74f9b7f"},
	{"spec/exception-handling/testdata/try_table.1.wasm", "80609573ccb19379a75e98fc5bedb9cac8f347ed8ba8569b514ba349747244de"},
	{"spec/exception-handling/testdata/throw_ref.0.wasm", "c9b469b6fe1a5a31f9b967840f0f6508bb180fcbae60ed6d7360acfaaf30318f"},
	{"spec/tail-call/testdata/return_call_indirect.0.wasm", "824d99f0240bdf6d9cd33612b3a93195397814675e1226f5cbdee54474fe2d5b"},
	{"spec/typed-function-references/testdata/func.0.wasm", "46c295dde9f2d290ec99e5054efbf6c5777e9fb29a5aef89c152bb311849feec"},
}

// The corpus digests: goldenCorpusIn is the SHA-256 of the inputs (their
// paths and bytes), goldenCorpusOut that of everything Instrument returns
// for them (output bytes and Report, or the error) under every
// goldenVariant, and for goldenMutants malformed variants of each. The
// corpus is every spec binary of wazero v1.12.0, every .wasm under the
// module's testdata/ (the hostile inputs included), this package's
// testdata/golden (legacy exception handling, dynamic bulk operations) and
// fuzz corpus files, and goldenCrafted. If goldenCorpusIn changes, the inputs
// did (wazero upgraded, a file added): recompute both sums on unchanged
// instrument code.
const (
	goldenCorpusIn  = "f8e92e9233a5f11370076dc0a6ae8022ee33ae4e831ca43557cec4fca80e421d"
	goldenCorpusOut = "456e5322f67e9a53c777b62f9ec672a4a313fe2cc2c712b6b69b50936b066a3f"
)

// goldenMutants is the number of malformed variants of each corpus input
// that are instrumented too (under Config{}), so that the errors (their
// messages and offsets) and the paths that reach them are pinned as well.
const goldenMutants = 4

// mutate returns the k-th mutant of b: a truncation, a byte overwritten, a
// byte inserted or a byte removed, at a place drawn from seed (splitmix64,
// so that the mutants never depend on a library's generator).
func mutate(b []byte, seed uint64, k int) []byte {
	next := func() uint64 {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	for range k + 1 {
		next()
	}
	if len(b) <= 8 {
		return append(b[:len(b):len(b)], byte(next()))
	}
	at := 8 + int(next()%uint64(len(b)-8)) // past the header
	switch k % 4 {
	case 0:
		return b[:at]
	case 1:
		m := append([]byte(nil), b...)
		m[at] = byte(next())
		return m
	case 2:
		m := append([]byte(nil), b[:at]...)
		m = append(m, byte(next()))
		return append(m, b[at:]...)
	}
	m := append([]byte(nil), b[:at]...)
	return append(m, b[at+1:]...)
}

// goldenVariants are the configurations the corpus is instrumented under:
// the default, each measurement knob and all of them (they change the
// emitted checks), a cost table with a different non-zero cost for nearly
// every operator (so that each operator is seen charged its own cost), one
// of zero costs (no segment charged, no bulk charge), the largest unit
// costs (segment costs saturate), tight limits (every limit error), and the
// custom-section options.
func goldenVariants() []struct {
	name  string
	cfg   Config
	knobs knobs
} {
	c := &CostTable{PerByte: 3, PerElement: 5, FunctionEntry: 2}
	for i := range c.Op {
		c.Op[i] = int64(i%7 + 1)
	}
	for i := range c.Misc {
		c.Misc[i] = int64(i%5 + 1)
	}
	for i := range c.Vec {
		c.Vec[i] = int64(i%11 + 1)
	}
	for i := range c.Atomic {
		c.Atomic[i] = int64(i%3 + 2)
	}
	maxUnit := DefaultCosts()
	maxUnit.PerByte, maxUnit.PerElement = MaxUnitCost, MaxUnitCost
	// Small enough that the corpus meets every limit somewhere.
	tight := Limits{Types: 20, Functions: 30, Imports: 10, Exports: 20, Globals: 10, Tags: 3,
		DataSegments: 3, Tables: 2, Memories: 1, ElementSegments: 5, Elements: 20, TableInitial: 50,
		TableMaximum: 7, MemoryInitialPages: 2, FunctionBodySize: 300, Locals: 10, TotalLocals: 30,
		Params: 4, Results: 2}
	return []struct {
		name  string
		cfg   Config
		knobs knobs
	}{
		{"default", Config{}, knobs{}},
		{"checkEvery", Config{}, knobs{checkEvery: true}},
		{"reloadCheck", Config{}, knobs{reloadCheck: true}},
		{"allEntries", Config{}, knobs{allEntries: true}},
		{"allKnobs", Config{}, knobs{checkEvery: true, reloadCheck: true, allEntries: true}},
		{"costs", Config{Costs: c, ImportModule: "m", ImportName: "n", FuelExport: "f"}, knobs{}},
		{"maxUnit", Config{Costs: maxUnit}, knobs{}},
		{"zeroCosts", Config{Costs: &CostTable{}}, knobs{}},
		{"tight", Config{Limits: tight}, knobs{}},
		{"tightTotals", Config{Limits: Limits{TotalLocals: 30, Elements: 20}}, knobs{}},
		{"strip", Config{StripCustom: true}, knobs{}},
		{"customBudget", Config{MaxCustomBytes: 40}, knobs{}},
	}
}

// goldenPath resolves a goldenFiles path.
func goldenPath(t testing.TB, p string) string {
	if rest, ok := strings.CutPrefix(p, "spec/"); ok {
		return filepath.Join(wazeroDir(t), "internal", "integration_test", "spectest", rest)
	}
	return filepath.Join(repoRoot(t), p)
}

func TestGoldenFiles(t *testing.T) {
	for _, g := range goldenFiles {
		wasm, err := os.ReadFile(goldenPath(t, g.path))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Instrument(wasm, Config{})
		if err != nil {
			t.Fatalf("%s: %v", g.path, err)
		}
		sum := sha256.Sum256(res.Wasm)
		if got := hex.EncodeToString(sum[:]); got != g.sum {
			t.Errorf("%s: instrumented output changed: sha256 %s, want %s", g.path, got, g.sum)
		}
	}
}

// goldenCorpus returns the corpus files, sorted, with paths relative to
// their roots ("spec/...", "testdata/...", "fuzz/...").
func goldenCorpus(t testing.TB) (names []string, inputs map[string][]byte) {
	inputs = map[string][]byte{}
	add := func(prefix, root, pattern string, decode func([]byte) []byte) {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden corpus files %s in %s: %v", pattern, root, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, f)
			name := prefix + filepath.ToSlash(rel)
			names = append(names, name)
			inputs[name] = decode(b)
		}
	}
	same := func(b []byte) []byte { return b }
	add("spec/", filepath.Join(wazeroDir(t), "internal", "integration_test", "spectest"), "*/testdata/*.wasm", same)
	add("testdata/", filepath.Join(repoRoot(t), "testdata"), "*.wasm", same)
	add("testdata/", filepath.Join(repoRoot(t), "testdata"), "*/*.wasm", same)
	add("golden/", filepath.Join("testdata", "golden"), "*.wasm", same)
	add("fuzz/", filepath.Join("testdata", "fuzz", "FuzzInstrument"), "*", func(b []byte) []byte {
		// go test fuzz v1
		// []byte("...")
		_, v, ok := strings.Cut(string(b), "\n[]byte(")
		if !ok {
			t.Fatalf("fuzz corpus file not in the expected format: %q", b)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(v), ")"))
		if err != nil {
			t.Fatalf("fuzz corpus file: %v", err)
		}
		return []byte(s)
	})
	for _, c := range goldenCrafted() {
		name := "crafted/" + c.name
		names = append(names, name)
		inputs[name] = c.wasm
	}
	sort.Strings(names)
	return names, inputs
}

// goldenCrafted are hand-made inputs for paths the files do not reach:
// malformed control structure and immediates, unknown operators, a saturating segment cost (under the maxUnit
// variant), an empty data count section that is not last, an unsupported
// constant expression, malformed or shared tables, name sections repeated or with a
// repeated subsection.
func goldenCrafted() []struct {
	name string
	wasm []byte
} {
	// One function () -> () with no locals and the given code.
	body := func(code ...byte) []byte {
		return buildModule(secOneType, secOneFunc, secOneMem, codeSec([]byte{0}, code))
	}
	fill := []byte{opI32Const, 0x7f, opPrefixMisc, miscMemoryFill, 0} // size 2^32-1
	return []struct {
		name string
		wasm []byte
	}{
		{"delegate outside try", body(opDelegate, 0, opEnd)},
		{"delegate without try", body(opBlock, blockTypeNil, opDelegate, 0, opEnd, opEnd)},
		{"catch without try", body(opBlock, blockTypeNil, opCatch, 0, opEnd, opEnd)},
		{"catch_all without try", body(opBlock, blockTypeNil, opCatchAll, opEnd, opEnd)},
		{"else without if", body(opBlock, blockTypeNil, opElse, opEnd, opEnd)},
		{"trailing bytes", body(opEnd, opNop)},
		{"call immediate cut off", body(opCall, 0x80)},
		{"invalid catch kind", body(opTryTable, blockTypeNil, 1, 4, 0, opEnd, opEnd)},
		{"unknown operator", body(0x27, opEnd)},
		{"unknown 0xfc operator", body(opPrefixMisc, 18, opEnd)},
		{"unknown 0xfd operator", body(opPrefixVec, 0x80, 0x04, opEnd)},
		{"unknown 0xfe operator", body(opPrefixAtomic, 4, opEnd)},
		{"saturating bulk", body(cat(fill, fill, fill, []byte{opEnd})...)},
		{"empty data count not last", cat(emptyModule, mksec(secDataCount), mksec(secData, u32(0)))},
		{"v128 constant expression", cat(emptyModule, mksec(secGlobal, u32(1), []byte{0x7b, 0, opPrefixVec, 13}, make([]byte, 16), []byte{opEnd}))},
		{"invalid table initializer prefix", oneFunc(mksec(secTable, u32(1), []byte{0x40, 1, 0x70, 0, 1, opRefNull, 0x70, opEnd}))},
		{"shared table", oneFunc(mksec(secTable, u32(1), []byte{0x70, 3, 1, 2}))},
		{"two name sections", oneFunc(nameSection(subsection(nameModule, str("a"))), nameSection(subsection(nameModule, str("b"))))},
		{"repeated name subsection", oneFunc(nameSection(subsection(nameModule, str("a")), subsection(nameModule, str("b"))))},
	}
}

func writeField(h hash.Hash, s string) {
	fmt.Fprintf(h, "%d:", len(s))
	h.Write([]byte(s))
}

func TestGoldenCorpus(t *testing.T) {
	names, inputs := goldenCorpus(t)
	in, out := sha256.New(), sha256.New()
	for _, n := range names {
		writeField(in, n)
		writeField(in, string(inputs[n]))
	}
	// With GOLDEN_LIST=file, every record's own sum is listed there, to
	// find what changed by diffing the lists of two versions.
	var list []string
	listPath := os.Getenv("GOLDEN_LIST")
	record := func(label string, wasm []byte, cfg Config) {
		var r string
		if res, err := Instrument(wasm, cfg); err != nil {
			r = "error: " + err.Error()
		} else {
			r = fmt.Sprintf("%d:%s%+v", len(res.Wasm), res.Wasm, res.Report)
		}
		writeField(out, label)
		writeField(out, r)
		if listPath != "" {
			sum := sha256.Sum256([]byte(r))
			list = append(list, label+"\t"+hex.EncodeToString(sum[:]))
		}
	}
	saved := defaultKnobs
	defer func() { defaultKnobs = saved }()
	for _, v := range goldenVariants() {
		defaultKnobs = v.knobs
		for _, n := range names {
			record(v.name+" "+n, inputs[n], v.cfg)
		}
	}
	defaultKnobs = knobs{}
	for i, n := range names {
		for k := range goldenMutants {
			record("mutant "+strconv.Itoa(k)+" "+n, mutate(inputs[n], uint64(i), k), Config{})
		}
	}
	if listPath != "" {
		if err := os.WriteFile(listPath, []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gotIn, gotOut := hex.EncodeToString(in.Sum(nil)), hex.EncodeToString(out.Sum(nil))
	t.Logf("golden corpus: %d inputs, %d variants, %d mutants each", len(names), len(goldenVariants()), goldenMutants)
	if gotIn != goldenCorpusIn {
		t.Fatalf("golden corpus inputs changed (sha256 %s, want %s): recompute both sums on unchanged instrument code", gotIn, goldenCorpusIn)
	}
	if gotOut != goldenCorpusOut {
		t.Errorf("instrumented corpus changed: sha256 %s, want %s", gotOut, goldenCorpusOut)
	}
}
