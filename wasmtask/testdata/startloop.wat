;; startloop.wat: a start function that never returns (preemptible
;; instantiation, abort during instantiation).
(module
  (func $start (loop $l (br $l)))
  (start $start))
