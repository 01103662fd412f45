;; Tail calls: a million-step loop written as tail recursion must not hit
;; the depth bound, since the depth is restored before each tail call.
(module
  (type $step (func (param i32 i64) (result i64)))
  (table 1 funcref)
  (elem (i32.const 0) func $count_indirect)

  (func $count (export "count") (type $step)
    (if (result i64) (i32.eqz (local.get 0))
      (then (local.get 1))
      (else (return_call $count
        (i32.sub (local.get 0) (i32.const 1))
        (i64.add (local.get 1) (i64.extend_i32_u (local.get 0)))))))

  (func $count_indirect (export "count_indirect") (type $step)
    (if (result i64) (i32.eqz (local.get 0))
      (then (local.get 1))
      (else (return_call_indirect (type $step)
        (i32.sub (local.get 0) (i32.const 1))
        (i64.add (local.get 1) (i64.extend_i32_u (local.get 0)))
        (i32.const 0)))))

  ;; plain recursion, for contrast: it does hit the bound
  (func $sum (export "sum") (type $step)
    (if (result i64) (i32.eqz (local.get 0))
      (then (local.get 1))
      (else (call $sum
        (i32.sub (local.get 0) (i32.const 1))
        (i64.add (local.get 1) (i64.extend_i32_u (local.get 0))))))))
