;; WASI randomness for TestRandomPerCall: _initialize reads some, "bytes"
;; outputs 16 random bytes in hex, "burn" reads 4 KiB and outputs 1.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "0123456789abcdef")

  (func (export "_initialize")
    (drop (call $random_get (i32.const 1024) (i32.const 8))))

  ;; bytes: "<32 hex digits>"
  (func (export "bytes") (result i32)
    (local $off i64) (local $i i32) (local $b i32)
    (drop (call $random_get (i32.const 64) (i32.const 16)))
    (local.set $off (call $alloc (i64.const 34)))
    (call $store_u8 (local.get $off) (i32.const 34))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
      (local.set $b (i32.load8_u (i32.add (i32.const 64) (local.get $i))))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (i32.add (i32.const 1) (i32.shl (local.get $i) (i32.const 1)))))
        (i32.load8_u (i32.shr_u (local.get $b) (i32.const 4))))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (i32.add (i32.const 2) (i32.shl (local.get $i) (i32.const 1)))))
        (i32.load8_u (i32.and (local.get $b) (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $store_u8 (i64.add (local.get $off) (i64.const 33)) (i32.const 34))
    (call $output_set (local.get $off) (i64.const 34))
    (i32.const 0))

  (func (export "burn") (result i32)
    (local $off i64)
    (drop (call $random_get (i32.const 4096) (i32.const 4096)))
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (i32.const 49))
    (call $output_set (local.get $off) (i64.const 1))
    (i32.const 0))
)
