;; memory.wat: a guest that grows and touches its memory, for wasmtask's
;; tests of memory limits and the engine's budget. Its memory is not
;; exported, so the engine learns its minimum only from the instrumenter.
;; Build: wat2wasm memory.wat -o memory.wasm (wasmtask/testdata/build.sh).
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory 1)

  ;; grow_sleep(n, ns): grow by n pages (trap if refused), then sleep ns
  ;; (a clock subscription at offset 0, the event at 64); returns the size
  (func (export "grow_sleep") (param $n i32) (param $ns i64) (result i32)
    (if (i32.eq (memory.grow (local.get $n)) (i32.const -1)) (then unreachable))
    (i64.store (i32.const 0) (i64.const 1))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (local.get $ns))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 96)))
    (memory.size))

  ;; grow(n): memory.grow(n) (the old size in pages, or -1)
  (func (export "grow") (param $n i32) (result i32)
    (memory.grow (local.get $n)))

  ;; grow_until_refused(): grow one page at a time until refused; returns
  ;; the final size in pages
  (func (export "grow_until_refused") (result i32)
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size))

  ;; grow_touch(n): grow by n pages (trap if refused) and write one byte
  ;; in every 4 KiB of the whole memory; returns the size in pages
  (func (export "grow_touch") (param $n i32) (result i32)
    (local $p i32) (local $end i32)
    (if (i32.eq (memory.grow (local.get $n)) (i32.const -1)) (then unreachable))
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (i32.store8 (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br $l)))
    (memory.size))

  ;; sum(): reads one byte in every 4 KiB of the memory (fresh pages read
  ;; as zeros)
  (func (export "sum") (result i32)
    (local $p i32) (local $end i32) (local $s i32)
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br $l)))
    (local.get $s))
)
