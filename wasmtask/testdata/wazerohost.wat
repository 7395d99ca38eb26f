;; wazerohost.wat: a guest importing host functions written for wazero
;; (typed Go functions on wazero's HostModuleBuilder), for
;; TestWazeroHostModules.
;; Build: wat2wasm wazerohost.wat -o wazerohost.wasm (wasmtask/testdata/build.sh).
(module
  (import "env" "double" (func $double (param i32) (result i32)))
  (import "env" "add_later" (func $add_later (param i64 i64) (result i64)))
  (import "env" "fuel" (func $fuel (result i64)))
  (memory (export "memory") 1)

  ;; double(x) + 1, through the typed host function
  (func (export "double_plus_one") (param $x i32) (result i32)
    (i32.add (call $double (local.get $x)) (i32.const 1)))

  ;; the async host function (HostCallFrom + Await)
  (func (export "add_later") (param i64 i64) (result i64)
    (call $add_later (local.get 0) (local.get 1)))

  ;; the fuel the host reads, twice, with the same work before each
  (func (export "fuel_twice") (result i64)
    (i64.sub (call $fuel) (call $fuel)))
)
