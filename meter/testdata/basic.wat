;; Functions whose results must not change under instrumentation, plus the
;; recursion and endless loop the depth and fuel tests use. Compiled with
;; wat2wasm --debug-names so the "name" section is exercised.
(module
  (import "env" "host_add" (func $host_add (param i32 i32) (result i32)))
  (import "env" "base" (global $base i32))

  (type $binop (func (param i32 i32) (result i32)))
  (type $pair (func (param i32) (result i32 i32)))

  (table $t 8 funcref)
  (elem (table $t) (i32.const 0) func $add $sub $mul)
  (elem $passive func $mul $add)
  (elem declare func $fib)

  (memory (export "memory") 1)

  (global $started (mut i32) (i32.const 0))
  (global $last (export "last") (mut i32) (i32.const -1))
  (global $fref (mut funcref) (ref.func $sub))

  (start $init)

  (func $init
    global.get $base
    global.set $started)
  (func (export "started") (result i32) global.get $started)

  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))

  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; sum of i*i for i < n, nested loops to exercise loop regions
  (func (export "sum_squares") (param $n i32) (result i64)
    (local $i i32) (local $j i32) (local $acc i64)
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $inner_done
          (loop $inner
            (br_if $inner_done (i32.ge_u (local.get $j) (local.get $i)))
            (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $acc))

  ;; multi-value: a function returning two values, a block with a type
  ;; index taking a parameter, a loop with parameters.
  (func $divmod (export "divmod") (type $pair) (param $x i32) (result i32 i32)
    (if (i32.eqz (local.get $x)) (then (return (i32.const 0) (i32.const 0))))
    (i32.div_u (local.get $x) (i32.const 7))
    (i32.rem_u (local.get $x) (i32.const 7)))
  (func (export "multi_block") (param $x i32) (result i32)
    (local $tmp i32)
    (local.get $x)
    (block (type $pair) (param i32) (result i32 i32)
      (i32.const 3))
    (i32.mul)
    ;; loop with a parameter: count it down to 0, adding 1 to $x each time
    (i32.const 5)
    (loop $l (param i32) (result i32)
      (local.set $x (i32.add (local.get $x) (i32.const 1)))
      (i32.sub (i32.const 1))
      (local.tee $tmp)
      (br_if $l (local.get $tmp)))
    (i32.add)
    (call $divmod (i32.const 100))
    (i32.add)
    (i32.add))

  ;; the ways out of a function: each returns 10*way + x
  (func (export "exit_return") (param $x i32) (result i32)
    (block
      (loop
        (if (i32.gt_s (local.get $x) (i32.const 3))
          (then (return (i32.add (i32.const 10) (local.get $x)))))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br 0)))
    (i32.const -1))
  (func (export "exit_br") (param $x i32) (result i32)
    (block
      (block
        (br_if 0 (i32.eqz (local.get $x)))
        (br 2 (i32.add (i32.const 20) (local.get $x)))))
    (i32.const 21))
  (func (export "exit_br_if") (param $x i32) (result i32)
    (block
      (drop (br_if 1 (i32.add (i32.const 30) (local.get $x)) (local.get $x))))
    (i32.const 31))
  (func (export "exit_br_table") (param $x i32) (result i32)
    (block $a (result i32)
      (block $b (result i32)
        (i32.add (i32.const 40) (local.get $x))
        (br_table $a $b 2 (local.get $x)))
      (i32.add (i32.const 100)))
    (i32.add (i32.const 1000)))
  (func (export "exit_fall") (param $x i32) (result i32)
    (i32.add (i32.const 50) (local.get $x)))
  (func (export "exit_unreachable_tail") (param $x i32) (result i32)
    (return (i32.add (i32.const 60) (local.get $x)))
    (unreachable))
  (func (export "exit_void") (param $x i32)
    (if (local.get $x) (then (return)))
    (global.set $last (local.get $x)))

  ;; tables: call_indirect through the active segment, through a slot
  ;; filled by table.init from the passive segment, through a slot filled
  ;; from the funcref global and through ref.func.
  (func (export "indirect") (param $slot i32) (param $a i32) (param $b i32) (result i32)
    (call_indirect (type $binop) (local.get $a) (local.get $b) (local.get $slot)))
  (func (export "fill_table")
    (table.init $t $passive (i32.const 3) (i32.const 0) (i32.const 2))
    (table.set $t (i32.const 5) (global.get $fref))
    (table.set $t (i32.const 6) (ref.func $fib)))
  (func (export "fib_via_table") (param $n i32) (result i32)
    (call_indirect (param i32) (result i32) (local.get $n) (i32.const 6)))

  (func (export "call_host") (param i32 i32) (result i32)
    (call $host_add (local.get 0) (local.get 1)))

  ;; recursion n deep; records n at each entry into $last
  (func $down (export "down") (param $n i32) (result i32)
    (global.set $last (local.get $n))
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))

  (func (export "spin")
    (loop $forever (br $forever)))

  ;; a loop whose body is a block: the straight-line cost to the next
  ;; control instruction would be 1 per iteration; the region cost is not.
  (func (export "block_loop") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (block
        (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $n) (i32.const 3))))
        (local.set $acc (i32.xor (local.get $acc) (i32.const 0x55)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1))))
      (br_if $l (local.get $n)))
    (local.get $acc))
)
