;; guests.wat: small guests for wasmtask's tests (error paths, host calls).
;; Build: wat2wasm guests.wat -o guests.wasm (wasmtask/testdata/build.sh).
(module
  (import "test" "add_async" (func $add_async (param i64 i64) (result i64)))
  (import "test" "fail" (func $fail (param i32)))
  (import "test" "boom" (func $boom))
  (import "test" "mark" (func $mark))
  (memory (export "memory") 1)

  ;; loop forever (abort, fuel budget, shutdown)
  (func (export "forever")
    (loop $l (br $l)))

  ;; unreachable after some work
  (func (export "trap") (result i32)
    (drop (call $spin (i64.const 1000)))
    unreachable)

  ;; grow memory one page at a time until refused, then trap
  (func (export "grow") (result i32)
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)

  ;; call the async host function n times, summing; spin between calls
  (func (export "async_sum") (param $n i64) (result i64)
    (local $acc i64)
    (block $done
      (loop $l
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $acc (call $add_async (local.get $acc) (local.get $n)))
        (drop (call $spin (i64.const 1000)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $l)))
    (local.get $acc))

  ;; call the host's mark, then spin n iterations
  (func (export "mark_spin") (param $n i64) (result i64)
    (call $mark)
    (call $spin (local.get $n)))

  ;; host function that returns an error / panics
  (func (export "host_error") (call $fail (i32.const 7)))
  (func (export "host_panic") (call $boom))

  (func $spin (export "spin") (param $n i64) (result i64)
    (local $acc i64)
    (local.set $acc (i64.const 1))
    (block $done
      (loop $top
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $acc
          (i64.add
            (i64.mul (local.get $acc) (i64.const 6364136223846793005))
            (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $top)))
    (local.get $acc))
)
