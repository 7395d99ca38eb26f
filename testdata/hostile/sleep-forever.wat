;; sleep-forever: a WASI sleep of 2^63-1 ns (poll_oneoff, one relative
;; clock subscription). Before: wazero slept on the guest's goroutine and
;; held a worker; nothing could stop it.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))                        ;; eventtype: clock
    (i64.store (i32.const 24) (i64.const 0x7fffffffffffffff))        ;; timeout
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 96)))))
