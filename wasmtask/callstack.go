package wasmtask

// A smaller first native stack for the guest's wazero call engines.
//
// wazero's compiler (wazevo) gives every api.Function that
// Module.ExportedFunction makes (a "call engine") its own native stack for
// the compiled code, 10 KiB from the start (callEngine.init), and the
// compiled code checks the room left at each function's entry: a call
// that needs more exits to Go, which doubles the stack (growStack). A
// guest holds its call engine as long as it lives (guest.call keeps it;
// a command's _start holds it while it runs), so 1,000,000 suspended
// guests held 10 GB of such stacks, almost all unused: that was 10 KiB of
// the 24 KiB a suspended guest cost.
//
// wazero has no setting for that size, so shrinkCallStack replaces the
// stack of a call engine that has never run by a smaller one
// (callStackInitial, or the engine's own minimum for its parameters and
// results), exactly as init would have set it: the stack, its aligned top
// and the bottom that the compiled code's checks compare against. A guest
// that needs more grows it as it would have grown the 10 KiB one. The
// fields are found by name and type, once, through reflection: with any
// other wazero (a renamed field, another type, the interpreter's call
// engine, wazero's stack guard debug mode) nothing is changed, and
// TestShrinkCallStack fails, so that a wazero upgrade is noticed. The 10 KiB
// stack is still allocated by wazero, and dropped at once: garbage, until
// wazero lets an embedder choose the size.
//
// guest.prepare gives the exports a guest is known to call (Options.Export,
// a reactor's _initialize) their small stack when the instance is opened;
// runStart runs a command's _start on one.

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// callStackInitial is the first native stack of a guest's call engine, in
// bytes. wazevo's frames are small (a few words plus spills): spin
// suspended in its check uses 112 bytes of it, and a deeper guest pays a
// few doublings (each a copy of the used part) on its first calls.
//
// It is wazero's 10 KiB divided by 16, so that the lengths the stack grows
// through (2·len + the frame that asked + 16) stay at or above those of the
// 10 KiB stack. wazero refuses to grow a stack already over its ceiling
// (50,000,000 bytes); from here the last length allowed is at least the
// one it was, so a guest recurses at least as deep as before before it
// traps with a stack overflow (TestGuestCallStackGrows' depth: 1,760,105
// calls instead of 1,514,345; from 1 KiB it would be 1,329,440, from
// 10 KiB/32 1,011,122: a start that is not 10 KiB/2^k, or too small, ends
// its doublings below the ceiling on a shorter stack).
const callStackInitial = 10240 / 16

// callEngineLayout locates the fields of wazevo's callEngine that hold its
// native stack: byte offsets from the start of the struct.
type callEngineLayout struct {
	stack      uintptr // stack []byte
	stackTop   uintptr // stackTop uintptr: the 16-byte aligned top of stack
	bottom     uintptr // execCtx.stackBottomPtr *byte: &stack[0]
	paramSlots uintptr // sizeOfParamResultSlice int
}

var callEngineLayouts sync.Map // reflect.Type → *callEngineLayout (nil: not one we know)

const wazevoPkgPath = "github.com/tetratelabs/wazero/internal/engine/wazevo"

// layoutOf returns the layout of t's call engine, or nil if t is not
// wazevo's *callEngine with the fields this file expects.
func layoutOf(t reflect.Type) *callEngineLayout {
	if l, ok := callEngineLayouts.Load(t); ok {
		return l.(*callEngineLayout)
	}
	l := probeLayout(t)
	callEngineLayouts.Store(t, l)
	return l
}

func probeLayout(t reflect.Type) *callEngineLayout {
	if t.Kind() != reflect.Pointer {
		return nil
	}
	s := t.Elem()
	if s.Kind() != reflect.Struct || s.Name() != "callEngine" || s.PkgPath() != wazevoPkgPath {
		return nil
	}
	stack, ok1 := s.FieldByName("stack")
	top, ok2 := s.FieldByName("stackTop")
	slots, ok3 := s.FieldByName("sizeOfParamResultSlice")
	ec, ok4 := s.FieldByName("execCtx")
	if !ok1 || !ok2 || !ok3 || !ok4 || ec.Type.Kind() != reflect.Struct ||
		stack.Type != reflect.TypeFor[[]byte]() || top.Type.Kind() != reflect.Uintptr || slots.Type.Kind() != reflect.Int {
		return nil
	}
	bottom, ok := ec.Type.FieldByName("stackBottomPtr")
	if !ok || bottom.Type != reflect.TypeFor[*byte]() {
		return nil
	}
	return &callEngineLayout{stack: stack.Offset, stackTop: top.Offset, bottom: ec.Offset + bottom.Offset, paramSlots: slots.Offset}
}

// shrinkCallStack gives fn, a call engine just made by ExportedFunction
// and never called, a native stack of callStackInitial bytes (at least
// what wazero requires for its parameters and results). It leaves fn as
// it is unless fn is wazevo's call engine in the state init leaves it in.
func shrinkCallStack(fn api.Function) {
	if fn == nil {
		return
	}
	l := layoutOf(reflect.TypeOf(fn))
	if l == nil {
		return
	}
	p := reflect.ValueOf(fn).UnsafePointer()
	stack := (*[]byte)(unsafe.Add(p, l.stack))
	top := (*uintptr)(unsafe.Add(p, l.stackTop))
	bottom := (**byte)(unsafe.Add(p, l.bottom))
	slots := *(*int)(unsafe.Add(p, l.paramSlots))
	s := *stack
	if len(s) == 0 || *bottom != &s[0] || *top != alignedStackTop(s) {
		return // not as init leaves it (a stack guard page, a stack grown)
	}
	// wazevo's requiredInitialStackSize: the parameters and results twice,
	// a call frame's information, and alignment.
	size := max(callStackInitial, slots*8*2+32+16)
	if size >= len(s) {
		return
	}
	s = make([]byte, size)
	*stack, *top, *bottom = s, alignedStackTop(s), &s[0]
}

// alignedStackTop is wazevo's: the 16-byte aligned address of s's last
// byte, where the stack starts.
func alignedStackTop(s []byte) uintptr {
	addr := uintptr(unsafe.Pointer(&s[len(s)-1]))
	return addr - addr&(16-1)
}

// prepare makes the api.Function of the open instance's export, with a
// small first stack, and keeps it in funcs, where call finds it.
func (g *guest) prepare(export string) {
	if g.function(export) != nil {
		return
	}
	fn := g.mod.ExportedFunction(export)
	if fn == nil {
		return // call reports it as before
	}
	shrinkCallStack(fn)
	g.funcs = append(g.funcs, exportFunc{export, fn})
}

// exportFunc is an export of the open instance and its api.Function. A
// guest keeps them in a slice: most call one export (a map would cost a
// suspended guest 300 bytes more), an Instance a handful.
type exportFunc struct {
	name string
	fn   api.Function
}

// function returns the kept api.Function of export, or nil.
func (g *guest) function(export string) api.Function {
	for _, f := range g.funcs {
		if f.name == export {
			return f.fn
		}
	}
	return nil
}

// runStart runs a WASI command's _start as wazero's InstantiateModule runs
// its start functions (which the guests' configuration leaves empty), on a
// call engine with a small first stack: a command suspended in _start
// holds it as long as it runs. A failure closes the module; exit code 0 is
// success, another exit code is returned as is, and any other error is
// wrapped as wazero wraps it.
func runStart(ctx context.Context, mod api.Module) error {
	start := mod.ExportedFunction(startExport)
	if start == nil {
		return nil
	}
	shrinkCallStack(start)
	if _, err := start.Call(ctx); err != nil {
		_ = mod.Close(ctx) // as wazero: don't leak the module on error
		if se, ok := err.(*sys.ExitError); ok {
			if se.ExitCode() == 0 {
				return nil
			}
			return err // as wazero: an exit error is not wrapped
		}
		return fmt.Errorf("module[%s] function[%s] failed: %w", mod.Name(), startExport, err)
	}
	return nil
}
