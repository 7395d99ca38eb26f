;; start-loop: a start function that never returns, so instantiation never
;; ends. The guest is instantiated inside its task: preemptible, abortable.
(module
  (func $start (loop $l (br $l)))
  (start $start)
  (func (export "_start")))
