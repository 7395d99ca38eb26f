;; reactor.wat: a WASI-style reactor for wasmtask's Instance tests. It
;; exports _initialize (run once, before any other export), keeps state in
;; globals and memory across calls, and follows the (ptr, len) convention
;; of Instance.CallBytes: alloc(len) -> ptr, and an export taking (ptr, len)
;; that returns an i64 packing (ptr << 32) | len.
;; Build: wat2wasm reactor.wat -o reactor.wasm (wasmtask/testdata/build.sh).
(module
  (import "test" "add_async" (func $add_async (param i64 i64) (result i64)))
  (import "test" "mark" (func $mark))
  (memory (export "memory") 1)
  (global $inits (mut i32) (i32.const 0))
  (global $counter (mut i64) (i64.const 0))
  (global $heap (mut i32) (i32.const 1024))

  ;; the initializer: counts its runs, sets the counter's start
  (func (export "_initialize")
    (global.set $inits (i32.add (global.get $inits) (i32.const 1)))
    (global.set $counter (i64.const 100)))

  ;; how many times _initialize ran in this instance
  (func (export "inits") (result i32) (global.get $inits))

  ;; state across calls: counter += 1, returned
  (func (export "next") (result i64)
    (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
    (global.get $counter))

  ;; counter += 1, then trap: the call fails after changing state
  (func (export "next_then_trap") (result i64)
    (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
    unreachable)

  ;; loop forever (cancellation, preemption)
  (func (export "forever")
    (loop $l (br $l)))

  ;; the async host function, once
  (func (export "async_add") (param i64 i64) (result i64)
    (call $add_async (local.get 0) (local.get 1)))

  ;; call the host's mark n+1 times with a fixed amount of work between
  ;; two marks: the fuel the host reads grows by the same step each time
  (func (export "marks") (param $n i64)
    (call $mark)
    (block $done
      (loop $l
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (call $mark)
        (br $l))))

  ;; bump allocator: never frees, returns 0 when out of memory
  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.const 65536))
      (then (return (i32.const 0))))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  ;; upper(ptr, len): ASCII upper-case copy of the input, (ptr << 32) | len
  (func (export "upper") (param $p i32) (param $n i32) (result i64)
    (local $q i32) (local $i i32) (local $c i32)
    (local.set $q (call $alloc (local.get $n)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (local.set $c (i32.sub (local.get $c) (i32.const 32)))))
        (i32.store8 (i32.add (local.get $q) (local.get $i)) (local.get $c))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $q)) (i64.const 32)) (i64.extend_i32_u (local.get $n))))

  ;; bad_result(ptr, len): a result pointing outside memory
  (func (export "bad_result") (param i32 i32) (result i64)
    (i64.const 0x0000fff000001000))

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
