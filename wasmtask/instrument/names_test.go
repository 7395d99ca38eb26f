package instrument

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// customSections returns the custom sections of wasm (name and payload
// after the name), in order.
func customSections(t *testing.T, wasm []byte) (names []string, contents [][]byte) {
	t.Helper()
	m, err := parse(wasm, Limits{}.resolved(), &Report{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.sections {
		if s.id == secCustom {
			r := newReader(s)
			names = append(names, string(r.name()))
			contents = append(contents, r.b[r.pos:])
		}
	}
	return names, contents
}

// wazeroNames compiles wasm with wazero and returns the names it decoded:
// the module name, and for each import and export of a function its name
// and parameter names (from the local names), keyed by the import's or
// export's name.
func wazeroNames(t *testing.T, wasm []byte) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(allFeatures))
	defer r.Close(ctx)
	c, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	add := func(key string, d api.FunctionDefinition) {
		names[key] = d.Name() + "(" + strings.Join(d.ParamNames(), ",") + ")"
	}
	for _, d := range c.ImportedFunctions() {
		m, n, _ := d.Import()
		add("import "+m+"."+n, d)
	}
	for n, d := range c.ExportedFunctions() {
		add("export "+n, d)
	}
	return c.Name(), names
}

// namedModule has an imported function and two defined ones, all exported
// and named, with parameter and local names, followed by the given name
// section (nameSection() for the valid one).
func namedModule(name []byte) []byte {
	types := mksec(secType, u32(2), []byte{0x60, 2, valI32, valI64, 0}, []byte{0x60, 0, 0})
	imp := mksec(secImport, u32(1), str("env"), str("imp"), []byte{0, 1})
	fns := mksec(secFunction, u32(2), []byte{0, 1})
	exp := mksec(secExport, u32(3), str("i"), []byte{0, 0}, str("a"), []byte{0, 1}, str("b"), []byte{0, 2})
	code := mksec(secCode, u32(2),
		[]byte{8, 1, 2, valI32, opCall, 2, opCall, 0, opEnd},
		[]byte{2, 0, opEnd})
	return buildModule(types, imp, fns, exp, code, name)
}

// validNames is the name section of namedModule: module name, function
// names and local names (the parameters and locals of function 1, the
// parameter-less function 2 with none).
var validNames = [][]byte{
	subsection(nameModule, str("mod")),
	subsection(nameFuncs, u32(3), u32(0), str("imp"), u32(1), str("alpha"), u32(2), str("beta")),
	subsection(nameLocals, u32(2),
		u32(1), u32(4), u32(0), str("p0"), u32(1), str("p1"), u32(2), str("l0"), u32(3), str("l1"),
		u32(2), u32(0)),
}

func TestNameSectionReencoded(t *testing.T) {
	in := namedModule(nameSection(validNames...))
	res, err := Instrument(in, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Name != NameReencoded || res.Report.CustomDropped != 0 {
		t.Fatalf("report %+v", res.Report)
	}
	// wazero decodes the same names from the input and the output.
	inMod, inNames := wazeroNames(t, in)
	outMod, outNames := wazeroNames(t, res.Wasm)
	if inMod != "mod" || outMod != inMod {
		t.Errorf("module name: input %q, output %q", inMod, outMod)
	}
	want := map[string]string{"import env.imp": "imp()", "export i": "imp()", "export a": "alpha(p0,p1)", "export b": "beta()"}
	for k, v := range want {
		if inNames[k] != v || outNames[k] != v {
			t.Errorf("%s: input %q, output %q, want %q", k, inNames[k], outNames[k], v)
		}
	}
	// The whole section, exactly: indices of defined functions shift by
	// one (the check import is function 1), locals do not.
	wantSec := cat(
		subsection(nameModule, str("mod")),
		subsection(nameFuncs, u32(3), u32(0), str("imp"), u32(2), str("alpha"), u32(3), str("beta")),
		subsection(nameLocals, u32(2),
			u32(2), u32(4), u32(0), str("p0"), u32(1), str("p1"), u32(2), str("l0"), u32(3), str("l1"),
			u32(3), u32(0)))
	names, contents := customSections(t, res.Wasm)
	if !slices.Equal(names, []string{"name"}) || !bytes.Equal(contents[0], wantSec) {
		t.Fatalf("custom sections %q, name section %x, want %x", names, contents, wantSec)
	}
}

func TestNameSectionGoGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 3 MB guest twice")
	}
	in := readTestdata(t, "goguest.wasm")
	res, err := Instrument(in, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Name != NameReencoded {
		t.Fatalf("name section %v (%s)", res.Report.Name, res.Report.NameDropReason)
	}
	inMod, inNames := wazeroNames(t, in)
	outMod, outNames := wazeroNames(t, res.Wasm)
	if inMod != outMod || len(inNames) == 0 {
		t.Fatalf("module name %q vs %q, %d names", inMod, outMod, len(inNames))
	}
	for k, v := range inNames {
		if outNames[k] != v {
			t.Errorf("%s: input %q, output %q", k, v, outNames[k])
		}
	}
	if inNames["export _start"] != "_rt0_wasm_wasip1()" {
		t.Errorf("_start named %q", inNames["export _start"])
	}
	// Go names only its defined functions, which wazero exposes only when
	// exported: compare the whole function name maps.
	inFuncs, outFuncs := funcNames(t, in), funcNames(t, res.Wasm)
	if len(inFuncs) < 2000 || len(outFuncs) != len(inFuncs) {
		t.Fatalf("%d function names in, %d out", len(inFuncs), len(outFuncs))
	}
	imports := uint32(res.Report.ImportedFunctions)
	for idx, name := range inFuncs {
		if idx >= imports {
			idx++
		}
		if outFuncs[idx] != name {
			t.Fatalf("function %d: %q in the input, %q in the output", idx, name, outFuncs[idx])
		}
	}
}

// funcNames decodes the function names subsection of wasm's name section.
func funcNames(t *testing.T, wasm []byte) map[uint32]string {
	names, contents := customSections(t, wasm)
	i := slices.Index(names, "name")
	if i < 0 {
		t.Fatal("no name section")
	}
	m := map[uint32]string{}
	r := &reader{b: contents[i]}
	for !r.eof() && r.err == nil {
		id := r.byte()
		sub := &reader{b: r.bytes(int(r.u32()))}
		if id != nameFuncs {
			continue
		}
		n := sub.u32()
		for j := uint32(0); j < n && sub.err == nil; j++ {
			idx := sub.u32()
			m[idx] = string(sub.name())
		}
		if sub.err != nil || !sub.eof() {
			t.Fatalf("function names: %v", sub.err)
		}
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return m
}

func TestNameSectionMalformedDropped(t *testing.T) {
	mod, funcs, locals := validNames[0], validNames[1], validNames[2]
	cases := []struct {
		name string
		subs [][]byte
	}{
		{"module name not UTF-8", [][]byte{subsection(nameModule, []byte{2, 0xc3, 0x28})}},
		{"function name not UTF-8", [][]byte{subsection(nameFuncs, u32(1), u32(1), []byte{1, 0xff})}},
		{"local name not UTF-8", [][]byte{subsection(nameLocals, u32(1), u32(1), u32(1), u32(0), []byte{1, 0x80})}},
		{"duplicate subsection", [][]byte{funcs, funcs}},
		{"function index out of range", [][]byte{subsection(nameFuncs, u32(1), u32(3), str("x"))}},
		{"function indices out of order", [][]byte{subsection(nameFuncs, u32(2), u32(2), str("x"), u32(1), str("y"))}},
		{"function index repeated", [][]byte{subsection(nameFuncs, u32(2), u32(1), str("x"), u32(1), str("y"))}},
		{"local indices out of order", [][]byte{subsection(nameLocals, u32(1), u32(1), u32(2), u32(1), str("x"), u32(0), str("y"))}},
		{"local names function out of range", [][]byte{subsection(nameLocals, u32(1), u32(9), u32(0))}},
		{"subsection longer than its content", [][]byte{mod, subsection(nameFuncs, u32(0), []byte{0})}},
		{"subsection shorter than its content", [][]byte{{nameModule, 2, 3, 'm', 'o', 'd'}}},
		{"subsection past the section", [][]byte{locals, {nameFuncs, 9, 0}}},
		{"subsection size cut off", [][]byte{mod, {nameFuncs}}},
		{"count past the subsection", [][]byte{subsection(nameFuncs, u32(3), u32(0), str("imp"))}},
		{"name past the subsection", [][]byte{subsection(nameFuncs, u32(1), u32(0), u32(5), []byte("ab"))}},
		{"function names count bomb", [][]byte{subsection(nameFuncs, huge, u32(0), str("x"))}},
		{"local names count bomb", [][]byte{subsection(nameLocals, huge, u32(1), u32(0))}},
		{"local names inner count bomb", [][]byte{subsection(nameLocals, u32(1), u32(1), huge, u32(0), str("x"))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Instrument(namedModule(nameSection(c.subs...)), Config{})
			if err != nil {
				t.Fatal(err)
			}
			rep := res.Report
			if rep.Name != NameDropped || rep.NameDropReason == "" || rep.CustomDropped != 1 {
				t.Fatalf("report %+v", rep)
			}
			if strings.HasSuffix(c.name, "bomb") && !strings.Contains(rep.NameDropReason, "count exceeds the remaining bytes") {
				t.Fatalf("dropped because %q", rep.NameDropReason)
			}
			if names, _ := customSections(t, res.Wasm); len(names) != 0 {
				t.Fatalf("custom sections %q", names)
			}
			if err := validates(res.Wasm); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNameSectionPlacement(t *testing.T) {
	// Unknown subsections are left out; the rest is kept.
	res, err := Instrument(namedModule(nameSection(validNames[0], subsection(3, u32(0)), subsection(7, []byte{1, 2, 3}))), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Name != NameReencoded || res.Report.NameSubsectionsDropped != 2 {
		t.Fatalf("report %+v", res.Report)
	}
	if _, c := customSections(t, res.Wasm); !bytes.Equal(c[0], validNames[0]) {
		t.Fatalf("name section %x", c[0])
	}
	// Subsections out of order are accepted (wazero does not care) and
	// written back in order.
	res, err = Instrument(namedModule(nameSection(validNames[2], validNames[0])), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, c := customSections(t, res.Wasm); res.Report.Name != NameReencoded || !bytes.HasPrefix(c[0], validNames[0]) {
		t.Fatalf("report %+v, name section %x", res.Report, c[0])
	}
	// A second name section (which wazero rejects) is dropped; the first
	// stays.
	in := namedModule(cat(nameSection(validNames[0]), nameSection(validNames[1])))
	res, err = Instrument(in, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Name != NameReencoded || res.Report.CustomDropped != 1 {
		t.Fatalf("report %+v", res.Report)
	}
	if err := validates(res.Wasm); err != nil {
		t.Fatal(err)
	}
	if names, c := customSections(t, res.Wasm); len(names) != 1 || !bytes.Equal(c[0], validNames[0]) {
		t.Fatalf("custom sections %q %x", names, c)
	}
	// A name section before the code section is re-encoded in place.
	sec := nameSection(validNames...)
	in = namedModule(nil)
	at := bytes.Index(in, []byte{secCode})
	in = cat(in[:at], sec, in[at:])
	res, err = Instrument(in, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.Name != NameReencoded {
		t.Fatalf("report %+v", res.Report)
	}
	if _, names := wazeroNames(t, res.Wasm); names["export a"] != "alpha(p0,p1)" {
		t.Fatalf("names %q", names)
	}
}

func TestCustomSections(t *testing.T) {
	custom := func(name string, n int) []byte { return mksec(secCustom, str(name), make([]byte, n)) }
	// Payload sizes: 1+1+100, 1+1+200, 1+1+50.
	in := namedModule(cat(custom("a", 100), nameSection(validNames[0]), custom("b", 200), custom("c", 50)))
	cases := []struct {
		name      string
		cfg       Config
		kept      []string
		nameState NameStatus
		keptBytes int
	}{
		{"default budget", Config{}, []string{"a", "name", "b", "c"}, NameReencoded, 102 + 202 + 52},
		{"budget 160", Config{MaxCustomBytes: 160}, []string{"a", "name", "c"}, NameReencoded, 102 + 52},
		{"budget 356", Config{MaxCustomBytes: 356}, []string{"a", "name", "b", "c"}, NameReencoded, 356},
		{"budget 355", Config{MaxCustomBytes: 355}, []string{"a", "name", "b"}, NameReencoded, 304},
		{"no budget", Config{MaxCustomBytes: -1}, []string{"name"}, NameReencoded, 0},
		{"strip", Config{StripCustom: true}, nil, NameStripped, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Instrument(in, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			names, _ := customSections(t, res.Wasm)
			rep := res.Report
			kept := len(c.kept)
			if slices.Contains(c.kept, "name") {
				kept--
			}
			droppedBytes := 102 + 202 + 52 - c.keptBytes
			if c.nameState == NameStripped {
				droppedBytes += len("\x04name") + len(validNames[0])
			}
			if !slices.Equal(names, c.kept) || rep.Name != c.nameState || rep.CustomKept != kept ||
				rep.CustomKeptBytes != c.keptBytes || rep.CustomDropped != 4-len(c.kept) ||
				rep.CustomDroppedBytes != droppedBytes {
				t.Fatalf("kept %q, report %+v", names, rep)
			}
			if err := validates(res.Wasm); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The default budget, at and past its end.
	for _, n := range []int{DefaultMaxCustomBytes - 2, DefaultMaxCustomBytes - 1} {
		res, err := Instrument(oneFunc(custom("x", n)), Config{})
		if err != nil {
			t.Fatal(err)
		}
		if keep := n+2 <= DefaultMaxCustomBytes; (res.Report.CustomKept == 1) != keep || (res.Report.CustomDropped == 1) == keep {
			t.Fatalf("payload %d: report %+v", n+2, res.Report)
		}
	}
	// A custom section with nothing after its name is dropped (fuzz
	// finding: wazero rejects one at the end of the module, where dropping
	// a later name section can put it).
	res, err := Instrument(oneFunc(mksec(secCustom, str("empty")), nameSection(subsection(nameFuncs, huge))), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := customSections(t, res.Wasm); len(names) != 0 || res.Report.CustomDropped != 2 {
		t.Fatalf("custom sections %q, report %+v", names, res.Report)
	}
	if err := validates(res.Wasm); err != nil {
		t.Fatal(err)
	}
	// A custom section whose name is not UTF-8 makes the module malformed,
	// kept or not.
	for _, cfg := range []Config{{}, {StripCustom: true}} {
		var de *DecodeError
		if _, err := Instrument(oneFunc(mksec(secCustom, []byte{1, 0xff})), cfg); !errors.As(err, &de) {
			t.Fatalf("got %v, want a *DecodeError", err)
		}
	}
}
