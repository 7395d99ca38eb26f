;; table-million: a table of 1,000,000 elements at instantiation (8 MB of
;; host memory per instance in wazero, outside any linear-memory bound).
(module
  (table 1000000 funcref)
  (func (export "_start")))
