;; fuel.wat: functions whose fuel under Wasmtime's default cost rule is known
;; by construction (the expected figures are in the comments, and asserted by
;; wasmtask/instrument's exact-fuel tests). Built by build.sh with
;; wat2wasm --enable-tail-call.
(module
  (type $i2i (func (param i32) (result i32)))
  (memory 1)
  (table $t 4 funcref)
  (table $grow 0 funcref)
  (elem (table $t) (i32.const 0) func $double $inc)
  (data $d "abcdefgh")

  ;; entry 1 + get + br_table = 3; then
  ;;   i=0: const, const, add (+return 0) = 6
  ;;   i=1: const = 4
  ;;   else: const = 4
  (func (export "brtable") (param $i i32) (result i32)
    (block $b2
      (block $b1
        (block $b0
          (br_table $b0 $b1 $b2 (local.get $i)))
        (return (i32.add (i32.const 1) (i32.const 9))))
      (return (i32.const 11)))
    (i32.const 12))

  ;; 4 each
  (func $double (type $i2i) (i32.add (local.get 0) (local.get 0)))
  ;; 4 each
  (func $inc (type $i2i) (i32.add (local.get 0) (i32.const 1)))

  ;; entry 1 + get x + get k + call_indirect = 4, + callee 4 = 8
  (func (export "indirect") (param $x i32) (param $k i32) (result i32)
    (call_indirect (type $i2i) (local.get $x) (local.get $k)))

  ;; entry 1 + 3 consts + memory.copy 1 + 50 bytes = 55
  (func (export "copy50")
    (memory.copy (i32.const 0) (i32.const 100) (i32.const 50)))

  ;; entry 1 + 2 consts + get + memory.copy 1 + n = 5 + n
  (func (export "copyn") (param $n i32)
    (memory.copy (i32.const 0) (i32.const 100) (local.get $n)))

  ;; entry 1 + 2 consts + get + memory.fill 1 + n = 5 + n
  (func (export "filln") (param $n i32)
    (memory.fill (i32.const 0) (i32.const 7) (local.get $n)))

  ;; entry 1 + 3 consts + memory.init 1 + 4 = 9
  (func (export "init4")
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 4)))

  ;; entry 1 + ref.null + get + table.grow 1 + n = 4 + n
  (func (export "grown") (param $n i32) (result i32)
    (table.grow $grow (ref.null func) (local.get $n)))

  ;; entry 1 + 3 consts + table.copy 1 + 2 = 7
  (func (export "tcopy2")
    (table.copy $t $t (i32.const 2) (i32.const 0) (i32.const 2)))

  ;; entry 1 + get + eqz + if = 4; then const = 5;
  ;; else get, const, sub, return_call = 8 + next: tc(n) = 8n + 5
  (func $tc (export "tailcall") (param $n i64) (result i64)
    (if (result i64) (i64.eqz (local.get $n))
      (then (i64.const 42))
      (else (return_call $tc (i64.sub (local.get $n) (i64.const 1))))))

  ;; entry 1 + block 0 + br 1 (dead code costs nothing) + const 1 = 3
  (func (export "dead") (result i32)
    (block
      (br 0)
      (drop (i32.const 1))
      (drop (i32.add (i32.const 1) (i32.const 2))))
    (i32.const 7))

  ;; Nested loops: the outer runs n times, the inner m times per outer.
  ;; entry 1 + const, set (i=0) = 3
  ;; outer header per iteration: const, set (j=0) = 2
  ;;   inner per iteration: get j, const, add, tee j, get m, lt_u, br_if = 7
  ;;   after inner: get i, const, add, tee i, get n, lt_u, br_if = 7
  ;; end: get i = 1
  ;; total = 3 + n*(2 + 7m + 7) + 1 = 4 + n*(9 + 7m)   (n, m >= 1)
  (func (export "nested") (param $n i32) (param $m i32) (result i32)
    (local $i i32) (local $j i32)
    (local.set $i (i32.const 0))
    (loop $outer
      (local.set $j (i32.const 0))
      (loop $inner
        (br_if $inner (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $m))))
      (br_if $outer (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.get $i))

;; Loops the instrumenter wraps (wasmtask/instrument/cold.go) with labels
  ;; in their bodies that cross the wrappers: a br_table from the inner loop
  ;; to itself, to a block outside it and to the outer loop; a br_if out of
  ;; both loops; and a loop with a result.
  (func (export "loopout") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done
      (loop $outer
        (block $next
          (loop $inner
            (local.set $acc (i32.add (local.get $acc) (i32.const 3)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (br_table $inner $next $outer $inner (i32.rem_u (local.get $acc) (i32.const 4)))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
        (br $outer)))
    (i32.add (local.get $acc)
      (loop $r (result i32)
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $r (i32.gt_s (local.get $i) (i32.const 0)))
        (local.get $acc))))

  ;; Traps after the charge of its only segment: entry 1 + const, const, div_s = 4
  (func (export "divzero") (result i32)
    (i32.div_s (i32.const 1) (i32.const 0)))
)
