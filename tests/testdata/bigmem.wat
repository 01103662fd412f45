;; A module that declares more initial memory (2049 pages, 128 MiB + 64 KiB)
;; than a call may have: it must be refused at instantiation, not crash.
(module
  (memory (export "memory") 2049)
  (func (export "run") (result i32) (i32.const 0))
)
