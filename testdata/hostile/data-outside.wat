;; data-outside: an active data segment written past the end of memory:
;; instantiation fails (out of bounds), nothing is written.
(module
  (memory 1)
  (data (i32.const 65530) "0123456789")
  (func (export "_start")))
