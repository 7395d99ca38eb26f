;; spin.wat: small CPU-bound guest with operator counts known by construction.
;; Built by testdata/build.sh (wat2wasm). Used by wasmtask/instrument tests
;; and by the scheduler/wasmtask tests.
(module
  ;; spin(n) runs n iterations of cheap arithmetic; the result depends on
  ;; every iteration (an LCG step plus the counter).
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

  ;; fib(n): naive doubly recursive Fibonacci.
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
)
