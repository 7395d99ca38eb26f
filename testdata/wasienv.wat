;; wasienv.wat: a WASI command that reports what it was given, as its exit
;; code: 10 × (number of environment variables) + the errno of
;; fd_prestat_get(3) (0 when a directory is preopened, 8 = EBADF when not).
;; For `wasmsched run --env/--dir` tests. Build: testdata/build.sh.
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (call $proc_exit
      (i32.add
        (i32.mul (i32.load (i32.const 0)) (i32.const 10))
        (call $fd_prestat_get (i32.const 3) (i32.const 16)))))
)
