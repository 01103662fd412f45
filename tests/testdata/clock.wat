;; A task for the tests of concurrency keys and rate limits.
;;   hold: reads the wall clock, burns a few ms of CPU, reads it again, and
;;         returns "START-END" (ns since the epoch, 16 hex digits each):
;;         when it ran, by its own account (needs the clock grant)
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 64) "0123456789abcdef")

  ;; hex writes the clock's reading as 16 hex digits at ptr.
  (func $hex (param $ptr i32)
    (local $t i64) (local $i i32)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 400)))
    (local.set $t (i64.load (i32.const 400)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
      (i32.store8 (i32.add (local.get $ptr) (local.get $i))
        (i32.load8_u (i32.add (i32.const 64)
          (i32.wrap_i64 (i64.and (i64.shr_u (local.get $t) (i64.extend_i32_u (i32.mul (i32.sub (i32.const 15) (local.get $i)) (i32.const 4)))) (i64.const 15))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))

  (func (export "hold") (result i32)
    (local $off i64) (local $i i32) (local $n i64)
    (i32.store8 (i32.const 500) (i32.const 34))
    (call $hex (i32.const 501))
    (loop $more
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (br_if $more (i64.lt_u (local.get $n) (i64.const 2000000))))
    (i32.store8 (i32.const 517) (i32.const 45))
    (call $hex (i32.const 518))
    (i32.store8 (i32.const 534) (i32.const 34))
    (local.set $off (call $alloc (i64.const 35)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 35)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (i32.const 500) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $output_set (local.get $off) (i64.const 35))
    (i32.const 0))
)
