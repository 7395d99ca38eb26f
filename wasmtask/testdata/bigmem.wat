;; bigmem.wat: declares 100 pages minimum (instantiation over a limit).
(module (memory (export "memory") 100) (func (export "f")))
