;; A module for TestParseModuleShape: its declared memory, tables and data.
(module
  (import "env" "base" (global $base i32))
  (memory 3 10)
  (table 5 funcref)
  (table 2 100 externref)
  (data (i32.const 16) "abc")
  (data "passive")
  (data (i32.const -256) "x")
  (data (offset (global.get $base)) "yz")
  (data (offset (i32.add (i32.const 1) (i32.const 2))) "w")
)
