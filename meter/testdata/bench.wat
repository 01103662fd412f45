;; Benchmark guest: a CPU-bound loop, a store-bound loop and a trivial function.
(module
  (memory 1)
  ;; n iterations of a recurrence through memory: a word loaded, mixed
  ;; and stored back one word further, over a 16 KiB ring
  (func (export "stores") (param $n i32) (result i64)
    (local $i i32) (local $p i32) (local $x i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (i32.add (i32.mul (i32.load (local.get $p)) (i32.const 1103515245)) (local.get $i)))
        (local.set $p (i32.and (i32.add (local.get $p) (i32.const 4)) (i32.const 16383)))
        (i32.store (local.get $p) (local.get $x))
        (i32.store8 offset=16384 (local.get $p) (local.get $x))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.extend_i32_u (local.get $x)))

  ;; n iterations of a multiply-add and xor-shift on an i64
  (func (export "hot") (param $n i32) (result i64)
    (local $i i32) (local $x i64)
    (local.set $x (i64.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x
          (i64.add
            (i64.mul (local.get $x) (i64.const 6364136223846793005))
            (i64.extend_i32_u (local.get $i))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 29))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $x))

  (func (export "nop") (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1))))
