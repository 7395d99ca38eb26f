;; grow-loop: grow one page at a time, touching each, until refused; then
;; trap. Bounded by the guest's limit and the engine's budget.
(module
  (memory 1)
  (func (export "_start")
    (local $p i32)
    (loop $l
      (local.set $p (memory.grow (i32.const 1)))
      (if (i32.eq (local.get $p) (i32.const -1)) (then unreachable))
      (i32.store (i32.mul (local.get $p) (i32.const 65536)) (i32.const 1))
      (br $l))))
