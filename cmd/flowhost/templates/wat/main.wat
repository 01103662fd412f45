;; @NAME@: a flowhost task library written by hand in the WebAssembly
;; text format: the Extism calling convention with nothing in between.
;;
;; Every task is an exported function () -> i32. It reads its input (a
;; JSON object with one member per declared input) with input_length and
;; input_load_u8, writes its output (JSON) into a block it allocates and
;; gives it to output_set, and returns 0; or gives an error text to
;; error_set and returns 1.
;;
;; The JSON handling is deliberately minimal: a string input is found by
;; searching for its key in quotes, and its text is copied as written
;; (escapes stay escapes, which the output, a JSON string too, keeps).
;;
;; Memory (two 64 KiB pages):
;;   0     .. 1023    static data: keys and error messages
;;   1024  .. 61023   the input
;;   65536 ..         the output being built
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))

  (memory (export "memory") 2 2)

  (global $IN i32 (i32.const 1024))
  (global $IN_MAX i32 (i32.const 60000))
  (global $OUT i32 (i32.const 65536))
  (global $len (mut i32) (i32.const 0))
  ;; Set by $string: where the string's text starts and ends.
  (global $start (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))

  (data (i32.const 0) "\"name\"") ;; 6 bytes
  (data (i32.const 16) "\"greeting\"") ;; 10 bytes
  (data (i32.const 32) "greet: input \"name\" must be a string") ;; 36 bytes
  (data (i32.const 96) "greet: input \"greeting\" must be a string") ;; 40 bytes
  (data (i32.const 160) "greet: the input is larger than 60000 bytes") ;; 43 bytes

  ;; Copies len bytes at ptr into a new host block and returns its offset.
  (func $to_host (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (local.get $off))

  ;; Sets the call's error to len bytes at ptr and returns 1.
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (call $error_set (call $to_host (local.get $ptr) (local.get $len)))
    (i32.const 1))

  ;; Reads the input into memory at $IN; 0 when it is too large.
  (func $read (result i32)
    (local $n i64) (local $i i32)
    (local.set $n (call $input_length))
    (if (i64.gt_u (local.get $n) (i64.extend_i32_u (global.get $IN_MAX)))
      (then (return (i32.const 0))))
    (global.set $len (i32.wrap_i64 (local.get $n)))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (global.get $len)))
        (i32.store8 (i32.add (global.get $IN) (local.get $i))
          (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (i32.const 1))

  ;; Finds the string member whose key (with its quotes) is klen bytes at
  ;; key: sets $start and $end to its text and returns 1, or returns 0.
  (func $string (param $key i32) (param $klen i32) (result i32)
    (local $i i32) (local $j i32) (local $c i32)
    (block $notfound
      (loop $scan
        (br_if $notfound (i32.gt_u (i32.add (local.get $i) (local.get $klen)) (global.get $len)))
        ;; Does the key start at $i?
        (local.set $j (i32.const 0))
        (block $differs
          (loop $cmp
            (if (i32.eq (local.get $j) (local.get $klen))
              (then
                ;; Found: skip white space and ':', then expect '"'.
                (local.set $i (i32.add (local.get $i) (local.get $klen)))
                (block $value
                  (loop $skip
                    (br_if $value (i32.ge_u (local.get $i) (global.get $len)))
                    (local.set $c (i32.load8_u (i32.add (global.get $IN) (local.get $i))))
                    (if (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 58)))
                                (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 9))))
                      (then (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $skip)))))
                (if (i32.or (i32.ge_u (local.get $i) (global.get $len))
                            (i32.ne (i32.load8_u (i32.add (global.get $IN) (local.get $i))) (i32.const 34)))
                  (then (return (i32.const 0))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (global.set $start (local.get $i))
                ;; The text runs to the next '"' that no backslash escapes.
                (loop $text
                  (if (i32.ge_u (local.get $i) (global.get $len)) (then (return (i32.const 0))))
                  (local.set $c (i32.load8_u (i32.add (global.get $IN) (local.get $i))))
                  (if (i32.eq (local.get $c) (i32.const 34))
                    (then (global.set $end (local.get $i)) (return (i32.const 1))))
                  (if (i32.eq (local.get $c) (i32.const 92))
                    (then (local.set $i (i32.add (local.get $i) (i32.const 1)))))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $text))))
            (br_if $differs (i32.ne
              (i32.load8_u (i32.add (global.get $IN) (i32.add (local.get $i) (local.get $j))))
              (i32.load8_u (i32.add (local.get $key) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $cmp)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const 0))

  ;; Appends the bytes from start to end to the output at pos; returns
  ;; the new pos.
  (func $append (param $pos i32) (param $start i32) (param $end i32) (result i32)
    (memory.copy (local.get $pos) (local.get $start) (i32.sub (local.get $end) (local.get $start)))
    (i32.add (local.get $pos) (i32.sub (local.get $end) (local.get $start))))

  ;; greet: a greeting for name: "GREETING, NAME!".
  (func (export "greet") (result i32)
    (local $pos i32) (local $ns i32) (local $ne i32)
    (if (i32.eqz (call $read))
      (then (return (call $fail (i32.const 160) (i32.const 43)))))
    (if (i32.eqz (call $string (i32.const 0) (i32.const 6)))
      (then (return (call $fail (i32.const 32) (i32.const 36)))))
    (local.set $ns (i32.add (global.get $IN) (global.get $start)))
    (local.set $ne (i32.add (global.get $IN) (global.get $end)))
    ;; The greeting's default ("Hello") comes from the manifest.
    (if (i32.eqz (call $string (i32.const 16) (i32.const 10)))
      (then (return (call $fail (i32.const 96) (i32.const 40)))))
    (local.set $pos (global.get $OUT))
    (i32.store8 (local.get $pos) (i32.const 34))
    (local.set $pos (call $append (i32.add (local.get $pos) (i32.const 1))
      (i32.add (global.get $IN) (global.get $start)) (i32.add (global.get $IN) (global.get $end))))
    (i32.store8 (local.get $pos) (i32.const 44))
    (i32.store8 (i32.add (local.get $pos) (i32.const 1)) (i32.const 32))
    (local.set $pos (call $append (i32.add (local.get $pos) (i32.const 2)) (local.get $ns) (local.get $ne)))
    (i32.store8 (local.get $pos) (i32.const 33))
    (i32.store8 (i32.add (local.get $pos) (i32.const 1)) (i32.const 34))
    (local.set $pos (i32.add (local.get $pos) (i32.const 2)))
    (call $output_set
      (call $to_host (global.get $OUT) (i32.sub (local.get $pos) (global.get $OUT)))
      (i64.extend_i32_u (i32.sub (local.get $pos) (global.get $OUT))))
    (i32.const 0))
)
