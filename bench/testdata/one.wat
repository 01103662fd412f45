;; one: a task that ignores its input and returns the JSON number 1.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "one") (result i32)
    (local $off i64)
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (i32.const 49))
    (call $output_set (local.get $off) (i64.const 1))
    (i32.const 0)))
