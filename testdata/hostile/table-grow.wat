;; table-grow: one table.grow by 0xfffffff0 elements on a table with no
;; maximum. wazero would allocate 8 bytes per element (32 GiB) at once.
(module
  (table 1 funcref)
  (func (export "_start")
    (if (i32.ne (table.grow 0 (ref.null func) (i32.const 0xfffffff0)) (i32.const -1)) (then unreachable))))
