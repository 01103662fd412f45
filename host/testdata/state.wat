;; Tasks that keep state between calls, for the tests of the per-call reset.
;;   count: increments a global and a byte of memory; outputs the byte
;;   clock: the wall clock (WASI clock_time_get), in ns, as 16 hex digits
;;   grow:  grows the memory by a page, outputs its new size in pages
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 64) "0123456789abcdef")

  (func $out (param $ptr i32) (param $len i32)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $output_set (local.get $off) (i64.extend_i32_u (local.get $len))))

  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const 201) (i32.add (i32.load8_u (i32.const 201)) (i32.const 1)))
    ;; output: the global's count and the memory's, as two digits in a JSON array
    (i32.store8 (i32.const 300) (i32.const 91))   ;; [
    (i32.store8 (i32.const 301) (i32.add (i32.const 48) (global.get $calls)))
    (i32.store8 (i32.const 302) (i32.const 44))   ;; ,
    (i32.store8 (i32.const 303) (i32.add (i32.const 48) (i32.load8_u (i32.const 201))))
    (i32.store8 (i32.const 304) (i32.const 93))   ;; ]
    (call $out (i32.const 300) (i32.const 5))
    (i32.const 0))

  (func (export "clock") (result i32)
    (local $t i64) (local $i i32)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 400)))
    (local.set $t (i64.load (i32.const 400)))
    (i32.store8 (i32.const 500) (i32.const 34))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
      (i32.store8 (i32.add (i32.const 501) (local.get $i))
        (i32.load8_u (i32.add (i32.const 64)
          (i32.wrap_i64 (i64.and (i64.shr_u (local.get $t) (i64.extend_i32_u (i32.mul (i32.sub (i32.const 15) (local.get $i)) (i32.const 4)))) (i64.const 15))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store8 (i32.const 517) (i32.const 34))
    (call $out (i32.const 500) (i32.const 18))
    (i32.const 0))

  (func (export "grow") (result i32)
    (i32.store8 (i32.const 600) (i32.add (i32.const 48) (memory.grow (i32.const 1))))
    (call $out (i32.const 600) (i32.const 1))
    (i32.const 0))
)
