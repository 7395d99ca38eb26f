;; grow-huge: one memory.grow(65535) (1 fuel), then touch the last page;
;; trap if the grow is refused. Before: wazero allocated and zeroed 4 GiB
;; in one uninterruptible step.
(module
  (memory 1)
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))
    (i32.store (i32.const 0xfffffff0) (i32.const 1))))
