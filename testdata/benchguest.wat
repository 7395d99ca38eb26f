;; benchguest.wat: a WASI command shaped like a sightglass benchmark: it
;; imports bench.start and bench.end (the harness's timing hooks), which
;; only `wasmsched run --stub-imports` provides, and prints a line between
;; them. Build: testdata/build.sh.
(module
  (import "bench" "start" (func $start))
  (import "bench" "end" (func $end))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "benchmark body ran\n")
  (func (export "_start")
    (call $start)
    ;; iovec at 0: {ptr 64, len 19}
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 19))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (call $end))
)
