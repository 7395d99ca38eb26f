;; mem-4gib-min: a memory whose minimum is 65,536 pages (4 GiB). Before: a
;; 63-byte module took serve to 4.2 GiB RSS.
(module
  (memory 65536)
  (func (export "_start")))
