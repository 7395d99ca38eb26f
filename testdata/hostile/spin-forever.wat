;; spin-forever: an endless loop in _start. Fuel, timeouts and Abort stop it.
(module
  (func (export "_start") (loop $l (br $l))))
