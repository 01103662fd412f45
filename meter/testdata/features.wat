;; One function per instruction family the walker must skip correctly:
;; SIMD (memarg, lane, v128.const, shuffle immediates), bulk memory,
;; reference types, non-trapping float-to-int, sign extension, select t,
;; and threads (atomics on a shared memory). Each returns a value that
;; depends on the instructions having run as written.
(module
  (memory (export "memory") 1 1 shared)
  (data $d "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10")
  (table $t 4 funcref)
  (table $ext 2 externref)
  (elem $e func $seven $eight)

  (func $seven (result i32) (i32.const 7))
  (func $eight (result i32) (i32.const 8))

  (func (export "simd") (result i64)
    (local $v v128)
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 16))
    (local.set $v (v128.load offset=0 align=16 (i32.const 0)))
    (local.set $v (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 (local.get $v) (local.get $v)))
    (local.set $v (i32x4.add (local.get $v) (v128.const i32x4 1 2 3 4)))
    (local.set $v (i8x16.replace_lane 3 (local.get $v) (i32.const 99)))
    (local.set $v (v128.load32_lane 1 (i32.const 4) (local.get $v)))
    (v128.store64_lane offset=32 0 (i32.const 0) (local.get $v))
    (local.set $v (v128.or (local.get $v) (v128.load32_zero offset=8 (i32.const 0))))
    (local.set $v (i16x8.add (local.get $v) (v128.load16_splat (i32.const 2))))
    (local.set $v (i32x4.add (local.get $v) (v128.load8x8_u (i32.const 3))))
    (i64.add
      (i64.add
        (i64x2.extract_lane 0 (local.get $v))
        (i64x2.extract_lane 1 (local.get $v)))
      (i64.add
        (i64.extend_i32_u (i8x16.extract_lane_u 5 (local.get $v)))
        (i64.load offset=32 (i32.const 0)))))

  (func (export "bulk") (result i32)
    (memory.fill (i32.const 100) (i32.const 0xab) (i32.const 10))
    (memory.copy (i32.const 200) (i32.const 95) (i32.const 20))
    (data.drop $d)
    (table.init $t $e (i32.const 1) (i32.const 0) (i32.const 2))
    (elem.drop $e)
    (table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 2))
    (drop (table.grow $t (ref.null func) (i32.const 3)))
    (table.fill $t (i32.const 5) (ref.func $seven) (i32.const 2))
    (i32.add
      (i32.add (i32.load (i32.const 204)) (table.size $t))
      (i32.add
        (call_indirect (result i32) (i32.const 0))
        (call_indirect (result i32) (i32.const 6)))))

  (func (export "refs") (param $x externref) (result i32)
    (table.set $ext (i32.const 1) (local.get $x))
    (i32.add
      (i32.add
        (ref.is_null (table.get $ext (i32.const 0)))
        (i32.shl (ref.is_null (table.get $ext (i32.const 1))) (i32.const 1)))
      (i32.shl (ref.is_null (select (result funcref) (ref.func $eight) (ref.null func) (i32.const 1))) (i32.const 2))))

  (func (export "numeric") (param $f f64) (result i64)
    (i64.add
      (i64.add
        (i64.trunc_sat_f64_s (local.get $f))
        (i64.extend_i32_u (i32.trunc_sat_f32_u (f32.demote_f64 (local.get $f)))))
      (i64.add
        (i64.extend8_s (i64.const 0x80))
        (i64.extend_i32_s (i32.extend16_s (i32.const 0x8001))))))

  (func (export "atomics") (result i64)
    (i32.atomic.store offset=64 (i32.const 0) (i32.const 10))
    (drop (i32.atomic.rmw.add offset=64 (i32.const 0) (i32.const 5)))
    (drop (i32.atomic.rmw.cmpxchg offset=64 (i32.const 0) (i32.const 15) (i32.const 40)))
    (i64.atomic.store offset=72 (i32.const 0) (i64.const 1))
    (drop (i64.atomic.rmw8.xor_u offset=72 (i32.const 0) (i64.const 3)))
    (atomic.fence)
    (i64.add
      (i64.extend_i32_u
        (i32.add (i32.atomic.load offset=64 (i32.const 0))
                 (memory.atomic.notify offset=64 (i32.const 0) (i32.const 1))))
      (i64.atomic.load offset=72 (i32.const 0))))
)
