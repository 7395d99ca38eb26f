;; Legacy exception handling (try, catch, catch_all, rethrow, delegate) and
;; bulk operations with dynamic sizes, in functions that work on the fuel
;; global (they catch) and in functions that cache it in a local. Input of
;; the golden tests (golden_test.go); rebuild with
;;   wat2wasm --enable-exceptions legacy-try.wat -o legacy-try.wasm
(module
  (type $t (func (param i32)))
  (tag $e (type $t))
  (tag $e0)
  (memory 1)
  (table 4 funcref)
  (data $d "abcdefgh")
  (elem $el func $plain $catches)
  (func $plain (param i32) (result i32)
    (local i64)
    (memory.fill (i32.const 0) (i32.const 7) (local.get 0))
    (memory.copy (i32.const 8) (i32.const 0) (i32.const 16))
    (memory.init $d (i32.const 0) (i32.const 0) (local.get 0))
    (table.init $el (i32.const 0) (i32.const 0) (local.get 0))
    (table.copy (i32.const 1) (i32.const 0) (local.get 0))
    (drop (table.grow 0 (ref.null func) (local.get 0)))
    (table.fill 0 (i32.const 0) (ref.null func) (local.get 0))
    (block $b
      (loop $l
        (br_if $b (i32.eqz (local.get 0)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br_table $l $b 1 (local.get 0))))
    (if (local.get 0) (then (return (i32.const 1))) (else (nop)))
    (local.get 0))
  (func $catches (param i32) (result i32)
    (try $outer (result i32)
      (do
        (try $inner
          (do
            (memory.fill (i32.const 0) (i32.const 7) (local.get 0))
            (throw $e (local.get 0)))
          (catch $e
            (drop)
            (rethrow $inner))
          (catch_all
            (rethrow $inner)))
        (i32.const 0))
      (catch $e
        (call $plain))
      (catch_all
        (i32.const 2))))
  (func $delegates (param i32) (result i32)
    (try $a (result i32)
      (do
        (try
          (do
            (loop $l
              (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
            (throw $e0))
          (delegate $a))
        (i32.const 0))
      (catch_all
        (table.fill 0 (i32.const 0) (ref.null func) (local.get 0))
        (i32.const 3))))
  (export "plain" (func $plain))
  (export "catches" (func $catches))
  (export "delegates" (func $delegates)))
