;; The "env" module basic.wat imports: a host function re-exported from the
;; test's "go" host module, and an immutable global.
(module
  (import "go" "add" (func $add (param i32 i32) (result i32)))
  (export "host_add" (func $add))
  (global (export "base") i32 (i32.const 42)))
