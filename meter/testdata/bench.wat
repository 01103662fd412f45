;; Benchmark guest: a CPU-bound loop and a trivial function.
(module
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
