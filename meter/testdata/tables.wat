;; table.grow on two tables, for TestTableGrow.
(module
  (type $ret (func (result i32)))
  (table $a 1 funcref)
  (table $b 2 externref)
  (func $seven (result i32) (i32.const 7))
  (elem (table $a) (i32.const 0) func $seven)
  ;; grow_b: table.grow of $b (index 1) by delta; its result (the old size or -1)
  (func (export "grow_b") (param $delta i32) (result i32)
    (table.grow $b (ref.null extern) (local.get $delta)))
  ;; grow_a: the same on $a (index 0), inside an expression, then a call through it
  (func (export "grow_a") (param $delta i32) (result i32)
    (i32.add
      (i32.mul (table.grow $a (ref.func $seven) (local.get $delta)) (i32.const 100))
      (call_indirect (type $ret) (i32.const 0))))
  (func (export "size_b") (result i32) (table.size $b))
)
