;; Extism vars (var_set, var_get) for TestVarsCounted.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (memory (export "memory") 1)

  ;; the output 1
  (func $one (result i32)
    (local $off i64)
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (i32.const 49))
    (call $output_set (local.get $off) (i64.const 1))
    (i32.const 0))

  ;; set var number i to size zero bytes, keeping no block behind
  (func $set (param $i i64) (param $size i64)
    (local $key i64) (local $val i64)
    (local.set $key (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $key) (local.get $i))
    (local.set $val (call $alloc (local.get $size)))
    (call $var_set (local.get $key) (local.get $val))
    (call $free (local.get $val))
    (call $free (local.get $key)))

  ;; flood: 256 vars of 1 MiB each; only the vars hold memory
  (func (export "flood") (result i32)
    (local $i i64)
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (i64.const 256)))
      (call $set (local.get $i) (i64.const 1048576))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (call $one))

  ;; mixed: a var of 384 KiB, then a block of 768 KiB: together over 1 MiB
  (func (export "mixed") (result i32)
    (call $set (i64.const 0) (i64.const 393216))
    (drop (call $alloc (i64.const 786432)))
    (call $one))

  ;; roundtrip: a var of one byte "7", read back as the output
  (func (export "roundtrip") (result i32)
    (local $key i64) (local $val i64) (local $got i64)
    (local.set $key (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $key) (i64.const 42))
    (local.set $val (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $val) (i32.const 55))
    (call $var_set (local.get $key) (local.get $val))
    (local.set $got (call $var_get (local.get $key)))
    (call $output_set (local.get $got) (i64.const 1))
    (i32.const 0))
)
