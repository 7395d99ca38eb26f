;; wasi.wat: a guest that makes the WASI calls that wait (sleep, sched_yield,
;; stdin), for wasmtask's tests of how they suspend the guest.
;; Build: wat2wasm wasi.wat -o wasi.wasm (wasmtask/testdata/build.sh).
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; Memory layout: subscriptions at 0 (48 bytes each), events at 256
  ;; (32 bytes each), nevents at 512, an iovec at 520, the read buffer at
  ;; 1024 (4096 bytes).

  ;; clock subscription at $at: relative timeout of $ns nanoseconds
  (func $clock_sub (param $at i32) (param $ns i64)
    (i64.store (local.get $at) (i64.const 1))                     ;; userdata
    (i32.store8 (i32.add (local.get $at) (i32.const 8)) (i32.const 0)) ;; eventtype clock
    (i32.store (i32.add (local.get $at) (i32.const 16)) (i32.const 1)) ;; clock id monotonic
    (i64.store (i32.add (local.get $at) (i32.const 24)) (local.get $ns)) ;; timeout
    (i64.store (i32.add (local.get $at) (i32.const 32)) (i64.const 0))   ;; precision
    (i32.store16 (i32.add (local.get $at) (i32.const 40)) (i32.const 0))) ;; flags: relative

  ;; sleep(ns): one clock subscription; returns poll_oneoff's errno
  (func (export "sleep") (param $ns i64) (result i32)
    (call $clock_sub (i32.const 0) (local.get $ns))
    (call $poll_oneoff (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))

  ;; sleep_then_spin(ns, n): sleep, then n iterations of work; returns n
  (func (export "sleep_then_spin") (param $ns i64) (param $n i64) (result i64)
    (call $clock_sub (i32.const 0) (local.get $ns))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (block $done
      (loop $l
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $l)))
    (i64.const 1))

  ;; poll_raw(in, out, n, nevents): poll_oneoff with the caller's
  ;; arguments, after writing a subscription of event type 0xff at 600
  (func (export "poll_raw") (param $in i32) (param $out i32) (param $n i32) (param $ne i32) (result i32)
    (i32.store8 (i32.const 608) (i32.const 0xff))
    (call $poll_oneoff (local.get $in) (local.get $out) (local.get $n) (local.get $ne)))

  ;; yields(n): sched_yield n times; returns the sum of the errnos
  (func (export "yields") (param $n i32) (result i32)
    (local $sum i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (call $sched_yield)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $sum))

  ;; read_all(): reads stdin to its end; returns the number of bytes read,
  ;; or -errno
  (func (export "read_all") (result i64)
    (local $total i64) (local $errno i32)
    (i32.store (i32.const 520) (i32.const 1024))
    (i32.store (i32.const 524) (i32.const 4096))
    (block $done
      (loop $l
        (local.set $errno (call $fd_read (i32.const 0) (i32.const 520) (i32.const 1) (i32.const 512)))
        (if (local.get $errno) (then (return (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $errno))))))
        (br_if $done (i32.eqz (i32.load (i32.const 512))))
        (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (i32.load (i32.const 512)))))
        (br $l)))
    (local.get $total))

  ;; poll_stdin(ns): waits for stdin to be readable or ns to pass; returns
  ;; 10 x the number of events + the type of the first (10: the clock
  ;; fired; 11: stdin is ready), or -errno
  (func (export "poll_stdin") (param $ns i64) (result i32)
    (local $errno i32)
    (call $clock_sub (i32.const 0) (local.get $ns))
    (i64.store (i32.const 48) (i64.const 2))                   ;; userdata
    (i32.store8 (i32.const 56) (i32.const 1))                  ;; eventtype fd_read
    (i32.store (i32.const 64) (i32.const 0))                   ;; fd 0
    (local.set $errno (call $poll_oneoff (i32.const 0) (i32.const 256) (i32.const 2) (i32.const 512)))
    (if (local.get $errno) (then (return (i32.sub (i32.const 0) (local.get $errno)))))
    (i32.add (i32.mul (i32.load (i32.const 512)) (i32.const 10)) (i32.load8_u (i32.const 266))))
)
