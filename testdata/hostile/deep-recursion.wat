;; deep-recursion: unbounded recursion with a few locals per frame; wazero
;; stops it with a stack-overflow trap at its own stack ceiling.
(module
  (func $f (param $n i64) (result i64)
    (local $a i64) (local $b i64) (local $c i64)
    (local.set $a (i64.add (local.get $n) (i64.const 1)))
    (i64.add (call $f (local.get $a)) (local.get $a)))
  (func (export "_start") (drop (call $f (i64.const 0)))))
