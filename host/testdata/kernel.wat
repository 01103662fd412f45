;; A guest that calls the kernel's functions as its input says, for
;; TestKernelGuest: the input is records of 17 bytes, an op and two u64
;; arguments (little-endian); an op with bit 0x80 set adds the offset of
;; the last block it allocated to its first argument, with bit 0x40 to
;; its second. Then it outputs
;; {"x":1}. The ops: 0 alloc, 1 free, 2 length, 3 load_u8, 4 load_u64,
;; 5 store_u8, 6 store_u64, 7 output_set, 8 error_set, 9 input_load_u8,
;; 10 input_load_u64, 11 var_set, 12 var_get, 13 config_get, 14 log_info,
;; 15 error_set and return 1, 16 length_unsafe.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "length_unsafe" (func $length_unsafe (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $i i64) (local $n i64) (local $op i32) (local $a i64) (local $b i64) (local $last i64) (local $out i64)
    (local.set $n (call $input_length))
    (block $done
      (loop $next
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 17)) (local.get $n)))
        (local.set $op (call $input_load_u8 (local.get $i)))
        (local.set $a (call $input_load_u64 (i64.add (local.get $i) (i64.const 1))))
        (local.set $b (call $input_load_u64 (i64.add (local.get $i) (i64.const 9))))
        (local.set $i (i64.add (local.get $i) (i64.const 17)))
        (if (i32.and (local.get $op) (i32.const 0x80))
          (then (local.set $a (i64.add (local.get $a) (local.get $last)))))
        (if (i32.and (local.get $op) (i32.const 0x40))
          (then (local.set $b (i64.add (local.get $b) (local.get $last)))))
        (block $b16 (block $b15 (block $b14 (block $b13 (block $b12 (block $b11 (block $b10 (block $b9
        (block $b8 (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
          (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b9 $b10 $b11 $b12 $b13 $b14 $b15 $b16 $b16
            (i32.and (local.get $op) (i32.const 0x3f))))
          (local.set $last (call $alloc (local.get $a))) (br $next))
          (call $free (local.get $a)) (br $next))
          (drop (call $length (local.get $a))) (br $next))
          (drop (call $load_u8 (local.get $a))) (br $next))
          (drop (call $load_u64 (local.get $a))) (br $next))
          (call $store_u8 (local.get $a) (i32.wrap_i64 (local.get $b))) (br $next))
          (call $store_u64 (local.get $a) (local.get $b)) (br $next))
          (call $output_set (local.get $a) (local.get $b)) (return (i32.const 0)))
          (call $error_set (local.get $a)) (br $next))
          (drop (call $input_load_u8 (local.get $a))) (br $next))
          (drop (call $input_load_u64 (local.get $a))) (br $next))
          (call $var_set (local.get $a) (local.get $b)) (br $next))
          (drop (call $var_get (local.get $a))) (br $next))
          (drop (call $config_get (local.get $a))) (br $next))
          (call $log_info (local.get $a)) (br $next))
          (call $error_set (local.get $a)) (return (i32.const 1)))
          (drop (call $length_unsafe (local.get $a))) (br $next)))
    (local.set $out (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $out) (i64.const 0x7d313a2278227b)) ;; {"x":1}
    (call $output_set (local.get $out) (i64.const 7))
    (i32.const 0))
  ;; peek: allocates a block, reports whether it or the padding before it
  ;; holds a byte that is not zero, then fills it with 0xff.
  (func (export "peek") (result i32)
    (local $off i64) (local $i i64) (local $dirty i32) (local $out i64)
    (local.set $off (call $alloc (i64.const 4096)))
    ;; From the end of the input, or 7 bytes before the block.
    (local.set $i (i64.add (call $input_length) (i64.const 8)))
    (if (i64.lt_u (local.get $i) (i64.sub (local.get $off) (i64.const 7)))
      (then (local.set $i (i64.sub (local.get $off) (i64.const 7)))))
    (block $done
      (loop $l
        (br_if $done (i64.ge_u (local.get $i) (i64.add (local.get $off) (i64.const 4096))))
        (local.set $dirty (i32.or (local.get $dirty) (call $load_u8 (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $l)))
    (local.set $i (local.get $off))
    (block $done
      (loop $l
        (br_if $done (i64.ge_u (local.get $i) (i64.add (local.get $off) (i64.const 4096))))
        (call $store_u64 (local.get $i) (i64.const -1))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $l)))
    (local.set $out (call $alloc (i64.const 8)))
    ;; {"x":0} or {"x":1}
    (call $store_u64 (local.get $out) (i64.const 0x7d303a2278227b))
    (if (local.get $dirty) (then (call $store_u8 (i64.add (local.get $out) (i64.const 5)) (i32.const 0x31))))
    (call $output_set (local.get $out) (i64.const 7))
    (i32.const 0))
)
