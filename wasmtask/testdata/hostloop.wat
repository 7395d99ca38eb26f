;; hostloop.wat: calls the host function env.tick n times, for the floor
;; of a guest's suspend + resume (BenchmarkSuspendResume's floor-*
;; baselines: one exit from Wasm to a Go host function per iteration, with
;; or without a coroutine switch pair inside it).
;; Build: wat2wasm hostloop.wat -o hostloop.wasm (wasmtask/testdata/build.sh).
(module
  (import "env" "tick" (func $tick))
  (func (export "loop") (param $n i64)
    (block $done
      (loop $top
        (br_if $done (i64.eqz (local.get $n)))
        (call $tick)
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $top))))
)
