package instrument

import (
	"context"
	"fmt"
	"math/bits"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// A tiny reference interpreter, independent of the rewrite: it executes the
// original (uninstrumented) module operator by operator and adds up the
// CostTable cost of every operator it executes, plus the function-entry and
// per-unit bulk costs. It supports the integer subset of Wasm that the
// project's test guests use and fails the test on anything else.

type refFunc struct {
	typ     int
	nLocals int // including params
	body    []byte
	start   int         // first operator
	ends    map[int]int // block/loop/if pc -> pc after its end
	elses   map[int]int // if pc -> pc after its else
}

type refModule struct {
	types   [][2]int // params, results
	nImp    int
	funcs   []refFunc // defined functions
	globals []uint64
	mem     []byte
	table   []int32
	grow    []int32 // second table (fuel.wat)
	datas   [][]byte
	exports map[string]int
	costs   *CostTable
	fuel    int64
	t       testing.TB
}

func newRefModule(t testing.TB, wasm []byte) *refModule {
	m, err := parse(wasm, Limits{}.resolved(), &Report{})
	if err != nil {
		t.Fatal(err)
	}
	rm := &refModule{exports: map[string]int{}, costs: DefaultCosts(), t: t}
	constExpr := func(r *reader) uint64 {
		var v uint64
		for {
			switch op := r.byte(); op {
			case opI32Const:
				v = uint64(uint32(r.s32()))
			case opI64Const:
				v = uint64(r.s64())
			case opEnd:
				return v
			default:
				t.Fatalf("ref: const op %#x", op)
			}
		}
	}
	for _, s := range m.sections {
		r := newReader(s)
		switch s.id {
		case secType:
			for n := r.u32(); n > 0; n-- {
				r.byte()
				np := r.u32()
				r.bytes(int(np))
				nr := r.u32()
				r.bytes(int(nr))
				rm.types = append(rm.types, [2]int{int(np), int(nr)})
			}
		case secImport:
			for n := r.u32(); n > 0; n-- {
				r.name()
				r.name()
				if r.byte() != 0 {
					t.Fatal("ref: only function imports")
				}
				r.u32()
				rm.nImp++
			}
		case secFunction:
			for n := r.u32(); n > 0; n-- {
				rm.funcs = append(rm.funcs, refFunc{typ: int(r.u32())})
			}
		case secTable:
			for n, i := r.u32(), 0; n > 0; n, i = n-1, i+1 {
				r.byte()
				flags := r.byte()
				min := r.u32()
				if flags == 1 {
					r.u32()
				}
				tab := make([]int32, min)
				for j := range tab {
					tab[j] = -1
				}
				if i == 0 {
					rm.table = tab
				} else {
					rm.grow = tab
				}
			}
		case secMemory:
			r.u32()
			flags := r.byte()
			rm.mem = make([]byte, int(r.u32())*65536)
			if flags == 1 {
				r.u32()
			}
		case secGlobal:
			for n := r.u32(); n > 0; n-- {
				r.byte()
				r.byte()
				rm.globals = append(rm.globals, constExpr(r))
			}
		case secExport:
			for n := r.u32(); n > 0; n-- {
				name := string(r.name())
				kind := r.byte()
				idx := r.u32()
				if kind == 0 {
					rm.exports[name] = int(idx)
				}
			}
		case secElement:
			for n := r.u32(); n > 0; n-- {
				flags := r.u32()
				if flags != 0 {
					t.Fatalf("ref: element flags %d", flags)
				}
				off := constExpr(r)
				for k, i := r.u32(), uint64(0); k > 0; k, i = k-1, i+1 {
					rm.table[off+i] = int32(r.u32())
				}
			}
		case secData:
			for n := r.u32(); n > 0; n-- {
				switch flags := r.u32(); flags {
				case 0:
					off := constExpr(r)
					b := r.bytes(int(r.u32()))
					copy(rm.mem[off:], b)
					rm.datas = append(rm.datas, nil)
				case 1:
					rm.datas = append(rm.datas, r.bytes(int(r.u32())))
				default:
					t.Fatalf("ref: data flags %d", flags)
				}
			}
		case secCode:
			r.u32()
			for i := range rm.funcs {
				size := r.u32()
				body := r.bytes(int(size))
				f := &rm.funcs[i]
				f.body = body
				br := &reader{b: body}
				f.nLocals = rm.types[f.typ][0]
				for n := br.u32(); n > 0; n-- {
					f.nLocals += int(br.u32())
					br.byte()
				}
				f.start = br.pos
				rm.scan(f)
			}
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	return rm
}

// imm skips the immediates of the operator at r.pos-1 (op already read).
func (rm *refModule) imm(r *reader, op byte) {
	switch {
	case op == opBlock || op == opLoop || op == opIf:
		r.s33()
	case op == opBr || op == opBrIf || op == opCall || op == opReturnCall || op == opRefFunc ||
		(op >= opLocalGet && op <= opGlobalSet) || op == 0x3f || op == 0x40:
		r.u32()
	case op == opBrTable:
		for n := r.u32() + 1; n > 0; n-- {
			r.u32()
		}
	case op == opCallIndirect:
		r.u32()
		r.u32()
	case op >= 0x28 && op <= 0x3e:
		r.u32()
		r.u32()
	case op == opI32Const:
		r.s32()
	case op == opI64Const:
		r.s64()
	case op == opRefNull:
		r.byte()
	case op == opPrefixMisc:
		switch sub := r.u32(); sub {
		case miscMemoryInit, miscMemoryCopy, miscTableInit, miscTableCopy:
			r.u32()
			r.u32()
		case miscMemoryFill, miscDataDrop, miscElemDrop, miscTableGrow, miscTableSize, miscTableFill:
			r.u32()
		}
	}
}

// scan matches every block, loop and if with its else and end.
func (rm *refModule) scan(f *refFunc) {
	f.ends, f.elses = map[int]int{}, map[int]int{}
	r := &reader{b: f.body, pos: f.start}
	var stack []int
	for !r.eof() && r.err == nil {
		pc := r.pos
		op := r.byte()
		rm.imm(r, op)
		switch op {
		case opBlock, opLoop, opIf:
			stack = append(stack, pc)
		case opElse:
			f.elses[stack[len(stack)-1]] = r.pos
		case opEnd:
			if len(stack) > 0 {
				f.ends[stack[len(stack)-1]] = r.pos
				stack = stack[:len(stack)-1]
			}
		}
	}
}

func (rm *refModule) blockArity(r *reader, loop bool) int {
	v := r.s33()
	switch {
	case v == -64:
		return 0
	case v < 0:
		if loop {
			return 0
		}
		return 1
	case loop:
		return rm.types[v][0]
	default:
		return rm.types[v][1]
	}
}

type refLabel struct {
	cont, height, arity int
	loop                bool
}

func (rm *refModule) call(fidx int, args []uint64) []uint64 {
	if fidx < rm.nImp {
		rm.t.Fatalf("ref: call to import %d", fidx)
	}
	f := &rm.funcs[fidx-rm.nImp]
	rm.fuel += rm.costs.FunctionEntry
	locals := make([]uint64, f.nLocals)
	copy(locals, args)
	nres := rm.types[f.typ][1]
	var st []uint64
	push := func(v uint64) { st = append(st, v) }
	pop := func() uint64 { v := st[len(st)-1]; st = st[:len(st)-1]; return v }
	labels := []refLabel{{cont: len(f.body), height: 0, arity: nres}}
	r := &reader{b: f.body, pos: f.start}
	branch := func(l int) bool { // returns true when the function returns
		lab := labels[len(labels)-1-l]
		vals := append([]uint64(nil), st[len(st)-lab.arity:]...)
		st = append(st[:lab.height], vals...)
		if len(labels)-1-l == 0 {
			return true
		}
		if lab.loop {
			labels = labels[:len(labels)-l]
		} else {
			labels = labels[:len(labels)-1-l]
		}
		r.pos = lab.cont
		return false
	}
	mem := func(n int) (int, bool) {
		r.u32()
		off := uint64(r.u32())
		ea := uint64(uint32(pop())) + off
		if ea+uint64(n) > uint64(len(rm.mem)) {
			rm.t.Fatalf("ref: out of bounds")
		}
		return int(ea), true
	}
	for {
		if r.err != nil {
			rm.t.Fatal(r.err)
		}
		if r.eof() {
			return st[len(st)-nres:]
		}
		pc := r.pos
		op := r.byte()
		if op != opPrefixMisc {
			rm.fuel += rm.costs.Op[op]
		}
		switch op {
		case opNop:
		case opUnreachable:
			rm.t.Fatal("ref: unreachable executed")
		case opBlock, opLoop:
			ar := rm.blockArity(r, op == opLoop)
			cont := f.ends[pc]
			if op == opLoop {
				cont = r.pos
			}
			labels = append(labels, refLabel{cont: cont, height: len(st) - 0, arity: ar, loop: op == opLoop})
		case opIf:
			ar := rm.blockArity(r, false)
			c := uint32(pop())
			labels = append(labels, refLabel{cont: f.ends[pc], height: len(st), arity: ar})
			if c == 0 {
				if e, ok := f.elses[pc]; ok {
					r.pos = e
				} else {
					r.pos = f.ends[pc]
					labels = labels[:len(labels)-1]
				}
			}
		case opElse: // end of a taken then-branch
			lab := labels[len(labels)-1]
			labels = labels[:len(labels)-1]
			r.pos = lab.cont
		case opEnd:
			if len(labels) == 1 {
				return st[len(st)-nres:]
			}
			labels = labels[:len(labels)-1]
		case opBr:
			if branch(int(r.u32())) {
				return st[len(st)-nres:]
			}
		case opBrIf:
			l := int(r.u32())
			if uint32(pop()) != 0 && branch(l) {
				return st[len(st)-nres:]
			}
		case opBrTable:
			n := r.u32()
			ls := make([]int, n+1)
			for i := range ls {
				ls[i] = int(r.u32())
			}
			i := uint32(pop())
			if i > n {
				i = n
			}
			if branch(ls[i]) {
				return st[len(st)-nres:]
			}
		case opReturn:
			return st[len(st)-nres:]
		case opCall, opReturnCall, opCallIndirect:
			var callee int
			if op == opCallIndirect {
				r.u32()
				r.u32()
				callee = int(rm.table[uint32(pop())])
			} else {
				callee = int(r.u32())
			}
			ty := rm.types[rm.funcs[callee-rm.nImp].typ]
			args := append([]uint64(nil), st[len(st)-ty[0]:]...)
			st = st[:len(st)-ty[0]]
			res := rm.call(callee, args)
			if op == opReturnCall {
				return res
			}
			st = append(st, res...)
		case opDrop:
			pop()
		case opSelect:
			c := uint32(pop())
			b, a := pop(), pop()
			if c != 0 {
				push(a)
			} else {
				push(b)
			}
		case opLocalGet:
			push(locals[r.u32()])
		case opLocalSet:
			locals[r.u32()] = pop()
		case opLocalTee:
			locals[r.u32()] = st[len(st)-1]
		case opGlobalGet:
			push(rm.globals[r.u32()])
		case opGlobalSet:
			rm.globals[r.u32()] = pop()
		case opI32Const:
			push(uint64(uint32(r.s32())))
		case opI64Const:
			push(uint64(r.s64()))
		case opRefNull:
			r.byte()
			push(^uint64(0))
		case 0x28, 0x29, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35:
			n := map[byte]int{0x28: 4, 0x29: 8, 0x2c: 1, 0x2d: 1, 0x2e: 2, 0x2f: 2, 0x30: 1, 0x31: 1, 0x32: 2, 0x33: 2, 0x34: 4, 0x35: 4}[op]
			ea, _ := mem(n)
			var v uint64
			for i := n - 1; i >= 0; i-- {
				v = v<<8 | uint64(rm.mem[ea+i])
			}
			signed := op == 0x2c || op == 0x2e || op == 0x30 || op == 0x32 || op == 0x34
			if signed {
				v = uint64(int64(v<<(64-8*n)) >> (64 - 8*n))
			}
			if op == 0x28 || (op >= 0x2c && op <= 0x2f) { // i32 result
				v = uint64(uint32(v))
			}
			push(v)
		case 0x36, 0x37, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e:
			n := map[byte]int{0x36: 4, 0x37: 8, 0x3a: 1, 0x3b: 2, 0x3c: 1, 0x3d: 2, 0x3e: 4}[op]
			v := pop()
			ea, _ := mem(n)
			for i := 0; i < n; i++ {
				rm.mem[ea+i] = byte(v >> (8 * i))
			}
		case 0x3f:
			r.u32()
			push(uint64(len(rm.mem) / 65536))
		case opPrefixMisc:
			sub := r.u32()
			rm.fuel += rm.costs.Misc[sub]
			switch sub {
			case miscMemoryCopy, miscMemoryFill, miscMemoryInit:
				var seg uint32
				if sub == miscMemoryInit {
					seg = r.u32()
				}
				r.u32()
				if sub == miscMemoryCopy {
					r.u32()
				}
				n, s, d := uint32(pop()), uint32(pop()), uint32(pop())
				rm.fuel += int64(n) * rm.costs.PerByte
				switch sub {
				case miscMemoryCopy:
					copy(rm.mem[d:d+n], rm.mem[s:s+n])
				case miscMemoryFill:
					for i := uint32(0); i < n; i++ {
						rm.mem[d+i] = byte(s)
					}
				default:
					copy(rm.mem[d:d+n], rm.datas[seg][s:s+n])
				}
			case miscTableGrow:
				r.u32()
				n := uint32(pop())
				pop()
				rm.fuel += int64(n) * rm.costs.PerElement
				old := len(rm.grow)
				rm.grow = append(rm.grow, make([]int32, n)...)
				push(uint64(old))
			case miscTableCopy:
				r.u32()
				r.u32()
				n, s, d := uint32(pop()), uint32(pop()), uint32(pop())
				rm.fuel += int64(n) * rm.costs.PerElement
				copy(rm.table[d:d+n], rm.table[s:s+n])
			default:
				rm.t.Fatalf("ref: unsupported 0xfc %d", sub)
			}
		default:
			if !rm.numeric(op, pop, push) {
				rm.t.Fatalf("ref: unsupported operator %#x", op)
			}
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// numeric executes the integer numeric operators.
func (rm *refModule) numeric(op byte, pop func() uint64, push func(uint64)) bool {
	switch {
	case op == 0x45:
		push(b2u(uint32(pop()) == 0))
	case op >= 0x46 && op <= 0x4f:
		b, a := uint32(pop()), uint32(pop())
		push(b2u([]bool{a == b, a != b, int32(a) < int32(b), a < b, int32(a) > int32(b), a > b,
			int32(a) <= int32(b), a <= b, int32(a) >= int32(b), a >= b}[op-0x46]))
	case op == 0x50:
		push(b2u(pop() == 0))
	case op >= 0x51 && op <= 0x5a:
		b, a := pop(), pop()
		push(b2u([]bool{a == b, a != b, int64(a) < int64(b), a < b, int64(a) > int64(b), a > b,
			int64(a) <= int64(b), a <= b, int64(a) >= int64(b), a >= b}[op-0x51]))
	case op >= 0x67 && op <= 0x69:
		a := uint32(pop())
		push(uint64([]int{bits.LeadingZeros32(a), bits.TrailingZeros32(a), bits.OnesCount32(a)}[op-0x67]))
	case op >= 0x6a && op <= 0x78:
		b, a := uint32(pop()), uint32(pop())
		var v uint32
		switch op {
		case 0x6a:
			v = a + b
		case 0x6b:
			v = a - b
		case 0x6c:
			v = a * b
		case 0x6d:
			v = uint32(int32(a) / int32(b))
		case 0x6e:
			v = a / b
		case 0x6f:
			v = uint32(int32(a) % int32(b))
		case 0x70:
			v = a % b
		case 0x71:
			v = a & b
		case 0x72:
			v = a | b
		case 0x73:
			v = a ^ b
		case 0x74:
			v = a << (b & 31)
		case 0x75:
			v = uint32(int32(a) >> (b & 31))
		case 0x76:
			v = a >> (b & 31)
		case 0x77:
			v = bits.RotateLeft32(a, int(b&31))
		case 0x78:
			v = bits.RotateLeft32(a, -int(b&31))
		}
		push(uint64(v))
	case op >= 0x79 && op <= 0x7b:
		a := pop()
		push(uint64([]int{bits.LeadingZeros64(a), bits.TrailingZeros64(a), bits.OnesCount64(a)}[op-0x79]))
	case op >= 0x7c && op <= 0x8a:
		b, a := pop(), pop()
		var v uint64
		switch op {
		case 0x7c:
			v = a + b
		case 0x7d:
			v = a - b
		case 0x7e:
			v = a * b
		case 0x7f:
			v = uint64(int64(a) / int64(b))
		case 0x80:
			v = a / b
		case 0x81:
			v = uint64(int64(a) % int64(b))
		case 0x82:
			v = a % b
		case 0x83:
			v = a & b
		case 0x84:
			v = a | b
		case 0x85:
			v = a ^ b
		case 0x86:
			v = a << (b & 63)
		case 0x87:
			v = uint64(int64(a) >> (b & 63))
		case 0x88:
			v = a >> (b & 63)
		case 0x89:
			v = bits.RotateLeft64(a, int(b&63))
		case 0x8a:
			v = bits.RotateLeft64(a, -int(b&63))
		}
		push(v)
	case op == 0xa7:
		push(uint64(uint32(pop())))
	case op == 0xac:
		push(uint64(int64(int32(uint32(pop())))))
	case op == 0xad:
		push(uint64(uint32(pop())))
	case op == 0xc0:
		push(uint64(uint32(int32(int8(pop())))))
	case op == 0xc1:
		push(uint64(uint32(int32(int16(pop())))))
	case op == 0xc2:
		push(uint64(int64(int8(pop()))))
	case op == 0xc3:
		push(uint64(int64(int16(pop()))))
	case op == 0xc4:
		push(uint64(int64(int32(pop()))))
	default:
		return false
	}
	return true
}

// TestFuelMatchesReferenceInterpreter compares, call by call, the fuel
// consumed by instrumented guests on wazero with the operator count of the
// reference interpreter running the original module, and their results.
func TestFuelMatchesReferenceInterpreter(t *testing.T) {
	ctx := context.Background()
	type call struct {
		fn   string
		args []uint64
	}
	guests := []struct {
		file  string
		calls []call
	}{
		{"spin.wasm", []call{{"spin", []uint64{0}}, {"spin", []uint64{1}}, {"spin", []uint64{1234}}, {"fib", []uint64{0}}, {"fib", []uint64{1}}, {"fib", []uint64{17}}}},
		{"fuel.wasm", []call{{"brtable", []uint64{0}}, {"brtable", []uint64{1}}, {"brtable", []uint64{5}},
			{"indirect", []uint64{4, 0}}, {"indirect", []uint64{4, 1}}, {"copy50", nil}, {"copyn", []uint64{777}},
			{"filln", []uint64{4096}}, {"init4", nil}, {"grown", []uint64{3}}, {"tcopy2", nil}, {"tailcall", []uint64{300}},
			{"dead", nil}, {"nested", []uint64{5, 9}},
			{"loopout", []uint64{0}}, {"loopout", []uint64{1}}, {"loopout", []uint64{77}}, {"loopout", []uint64{5000}}}},
		{"cguest.wasm", []call{{"sieve", []uint64{10000}}, {"sieve", []uint64{100}}, {"hash", []uint64{2}}, {"memops", []uint64{40}}}},
	}
	for _, g := range guests {
		t.Run(g.file, func(t *testing.T) {
			plain := readTestdata(t, g.file)
			ref := newRefModule(t, plain)
			m := &meter{refill: 1000}
			r := newMeteredRuntime(t, ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesTailCall), m)
			defer r.Close(ctx)
			wasi := r.NewHostModuleBuilder("wasi_snapshot_preview1")
			wasi.NewFunctionBuilder().WithFunc(func(int32, int32, int32, int32) int32 { return 0 }).Export("fd_write")
			if _, err := wasi.Instantiate(ctx); err != nil {
				t.Fatal(err)
			}
			mod, err := r.InstantiateWithConfig(ctx, mustInstrument(t, plain, Config{}), wazero.NewModuleConfig().WithStartFunctions())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range g.calls {
				before, refBefore := m.consumed(mod), ref.fuel
				got, err := mod.ExportedFunction(c.fn).Call(ctx, c.args...)
				if err != nil {
					t.Fatal(err)
				}
				idx, ok := ref.exports[c.fn]
				if !ok {
					t.Fatalf("no export %s", c.fn)
				}
				want := ref.call(idx, c.args)
				fuel, refFuel := m.consumed(mod)-before, ref.fuel-refBefore
				if fmt.Sprint(got) != fmt.Sprint(want) && !(len(want) == 1 && len(got) == 1 && uint32(want[0]) == uint32(got[0])) {
					t.Errorf("%s%v: result %v, reference %v", c.fn, c.args, got, want)
				}
				if fuel != refFuel {
					t.Errorf("%s%v: fuel %d, reference interpreter %d", c.fn, c.args, fuel, refFuel)
				}
				t.Logf("%s%v = %v: fuel %d", c.fn, c.args, got, fuel)
			}
		})
	}
}
