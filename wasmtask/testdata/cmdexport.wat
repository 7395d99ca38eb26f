;; cmdexport.wat: a WASI command (it exports _start) with another export
;; that says whether _start ran, for the AllowCommandExports tests.
;; Build: wat2wasm cmdexport.wat -o cmdexport.wasm (wasmtask/testdata/build.sh).
(module
  (global $started (mut i32) (i32.const 0))
  (func (export "_start") (global.set $started (i32.const 1)))
  (func (export "started") (result i32) (global.get $started))
)
