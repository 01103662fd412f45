;; Every way a module writes its memory, for TestDirty: w(kind, addr, n)
;; writes at addr (n bytes for the bulk operations) with the kind-th
;; writer. Memory: 2 pages, a passive data segment, a WASI import.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data $seg "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
  (func (export "w") (param $kind i32) (param $a i32) (param $n i32)
    (block $k14 (block $k13 (block $k12 (block $k11 (block $k10 (block $k9 (block $k8
    (block $k7 (block $k6 (block $k5 (block $k4 (block $k3 (block $k2 (block $k1 (block $k0
      (br_table $k0 $k1 $k2 $k3 $k4 $k5 $k6 $k7 $k8 $k9 $k10 $k11 $k12 $k13 $k14 (local.get $kind)))
      (i32.store (local.get $a) (i32.const -1)) (return))
      (i64.store offset=3 (local.get $a) (i64.const -1)) (return))
      (f32.store (local.get $a) (f32.const 1.5)) (return))
      (f64.store offset=8 (local.get $a) (f64.const 2.5)) (return))
      (i32.store8 (local.get $a) (i32.const 7)) (return))
      (i32.store16 offset=1 (local.get $a) (i32.const 7)) (return))
      (i64.store32 (local.get $a) (i64.const 7)) (return))
      (v128.store offset=16 (local.get $a) (v128.const i64x2 -1 -1)) (return))
      (v128.store64_lane 1 (local.get $a) (v128.const i64x2 -1 -1)) (return))
      (memory.fill (local.get $a) (i32.const 255) (local.get $n)) (return))
      (memory.copy (local.get $a) (i32.const 0) (local.get $n)) (return))
      (memory.init $seg (local.get $a) (i32.const 0) (local.get $n)) (return))
      (drop (i32.atomic.rmw.add (local.get $a) (i32.const 1))) (return))
      (drop (call $random_get (local.get $a) (local.get $n))) (return))
    ;; a loop of byte stores, the way a compiler writes memset
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (i32.store8 (i32.add (local.get $a) (local.get $n)) (i32.const 9))
        (br $l))))
  (func (export "clear") (memory.fill (i32.const 0) (i32.const 0) (i32.const 131072)))
)
