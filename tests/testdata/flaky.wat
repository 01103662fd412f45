;; Tasks for the end-to-end tests of retries and timeouts.
;;   flaky: the first call on each instance fails; later calls return "ok"
;;          (only under state = "keep": otherwise every call starts afresh)
;;   spin:  never returns
;;   busy:  burns ~50 ms of CPU, then returns 1
;;   slow:  burns ~2 s of CPU (busy's loop 40 times), then returns 1
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 0) "\"ok\"")
  (data (i32.const 16) "flaky: the first call fails")
  (func $block (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $off))
  (func (export "flaky") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.eq (global.get $calls) (i32.const 1))
      (then
        (call $error_set (call $block (i32.const 16) (i32.const 27)))
        (return (i32.const 1))))
    (call $output_set (call $block (i32.const 0) (i32.const 4)) (i64.const 4))
    (i32.const 0))
  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "busy") (result i32)
    (local $i i64)
    (loop $more
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $more (i64.lt_u (local.get $i) (i64.const 40000000))))
    (call $output_set (call $block (i32.const 48) (i32.const 1)) (i64.const 1))
    (i32.const 0))
  (func (export "slow") (result i32)
    (local $i i64)
    (loop $more
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $more (i64.lt_u (local.get $i) (i64.const 1600000000))))
    (call $output_set (call $block (i32.const 48) (i32.const 1)) (i64.const 1))
    (i32.const 0))
  (data (i32.const 48) "1")
)
