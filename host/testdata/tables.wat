;; table.grow bombs for TestTableGrowth: each step adds 262144 elements
;; (2 MiB of host memory), up to 256 steps (512 MiB).
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (table $t 0 funcref)

  ;; output n (0..9) as JSON
  (func $out (param $n i32)
    (local $off i64)
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (i32.add (i32.const 48) (local.get $n)))
    (call $output_set (local.get $off) (i64.const 1)))

  ;; grow: 256 steps; a refused step traps
  (func (export "grow") (result i32)
    (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 256)))
      (if (i32.eq (table.grow $t (ref.null func) (i32.const 262144)) (i32.const -1))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $out (i32.const 9))
    (i32.const 0))

  ;; steps: grow until refused; output how many steps succeeded
  (func (export "steps") (result i32)
    (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 256)))
      (br_if $done (i32.eq (table.grow $t (ref.null func) (i32.const 262144)) (i32.const -1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $out (local.get $i))
    (i32.const 0))
)
