;; mathwat: two integer tasks written by hand in the WebAssembly text format.
;;
;; It shows the smallest possible task module, and the second way to give a
;; manifest (docs/abi.md, "The manifest"): instead of a flowhost.manifest custom section, the
;; module exports `flowhost_manifest`, a function () -> i32 that outputs the
;; manifest JSON with output_set, like a task.
;;
;; build.sh puts manifest.json (newlines removed) where @MANIFEST@ stands and
;; its length in bytes where @MANIFEST_LEN@ stands, then runs wat2wasm.
;;
;; Tasks
;;   add  {a, b} -> added        a + b
;;   inc  {x}    -> incremented  x + 1
;;
;; The JSON handling is deliberately minimal. Its limits:
;;   - the input is at most 57344 bytes (it is copied into one page);
;;   - an input is found by searching the text for the key in quotes ("a")
;;     followed by optional white space and ':'; escapes in keys are not
;;     decoded and nesting is ignored, so {"o": {"a": 1}, "a": 2} finds the
;;     inner "a";
;;   - a value must be a plain integer: optional '-', 1 to 18 digits,
;;     followed by white space, ',' or '}' (no fraction, no exponent, no
;;     string, no leading '+'); anything else fails the task;
;;   - results are exact 64-bit integers (18 digits each way cannot overflow).
;;
;; Memory layout (one 64 KiB page):
;;   0      .. 63      digits of the number being written
;;   1024   .. 8191    static data: keys, error messages, the manifest
;;   8192   .. 65535   the input

(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))

  (memory (export "memory") 1 1)

  (global $IN i32 (i32.const 8192))
  (global $IN_MAX i32 (i32.const 57344))
  (global $in_len (mut i32) (i32.const 0))
  ;; Set by $int: 1 when the last number read was well-formed.
  (global $ok (mut i32) (i32.const 0))

  ;; Keys, with their quotes.
  (data (i32.const 1024) "\"a\"")                                     ;; 3 bytes
  (data (i32.const 1028) "\"b\"")                                     ;; 3 bytes
  (data (i32.const 1032) "\"x\"")                                     ;; 3 bytes
  ;; Error messages.
  (data (i32.const 1040) "input too large: at most 57344 bytes")       ;; 36 bytes
  (data (i32.const 1088) "add: inputs 'a' and 'b' must be integers of at most 18 digits") ;; 61 bytes
  (data (i32.const 1152) "inc: input 'x' must be an integer of at most 18 digits")        ;; 54 bytes
  ;; The manifest.
  (global $MANIFEST i32 (i32.const 2048))
  (global $MANIFEST_LEN i32 (i32.const @MANIFEST_LEN@))
  (data (i32.const 2048) "@MANIFEST@")

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

  ;; Sets the call's output to len bytes at ptr.
  (func $output (param $ptr i32) (param $len i32)
    (call $output_set
      (call $to_host (local.get $ptr) (local.get $len))
      (i64.extend_i32_u (local.get $len))))

  ;; Sets the call's error to len bytes at ptr and returns 1.
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (call $error_set (call $to_host (local.get $ptr) (local.get $len)))
    (i32.const 1))

  ;; Copies the input to $IN. Returns 0, or 1 (with the error set) when it
  ;; does not fit.
  (func $read_input (result i32)
    (local $n i64) (local $i i32)
    (local.set $n (call $input_length))
    (if (i64.gt_u (local.get $n) (i64.extend_i32_u (global.get $IN_MAX)))
      (then (return (call $fail (i32.const 1040) (i32.const 36)))))
    (global.set $in_len (i32.wrap_i64 (local.get $n)))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (global.get $in_len)))
        (i32.store8
          (i32.add (global.get $IN) (local.get $i))
          (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (i32.const 0))

  ;; The input byte at index i, or -1 past the end.
  (func $at (param $i i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $i) (global.get $in_len))
      (then (i32.load8_u (i32.add (global.get $IN) (local.get $i))))
      (else (i32.const -1))))

  (func $is_space (param $c i32) (result i32)
    (i32.or
      (i32.or (i32.eq (local.get $c) (i32.const 0x20)) (i32.eq (local.get $c) (i32.const 0x09)))
      (i32.or (i32.eq (local.get $c) (i32.const 0x0a)) (i32.eq (local.get $c) (i32.const 0x0d)))))

  ;; The first index at or after i that is not white space.
  (func $skip_ws (param $i i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (call $is_space (call $at (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))

  ;; Finds the key (klen bytes at kptr, quotes included) followed by ':' and
  ;; returns the index of the value after it, or -1.
  (func $find (param $kptr i32) (param $klen i32) (result i32)
    (local $i i32) (local $j i32) (local $p i32)
    (block $notfound
      (loop $scan
        (br_if $notfound (i32.gt_u (i32.add (local.get $i) (local.get $klen)) (global.get $in_len)))
        ;; does the key start at i?
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $cmp
            (if (i32.eq (local.get $j) (local.get $klen))
              (then
                ;; matched: is it followed by ':'?
                (local.set $p (call $skip_ws (i32.add (local.get $i) (local.get $klen))))
                (if (i32.eq (call $at (local.get $p)) (i32.const 0x3a))
                  (then (return (call $skip_ws (i32.add (local.get $p) (i32.const 1))))))
                (br $mismatch)))
            (br_if $mismatch
              (i32.ne
                (i32.load8_u (i32.add (global.get $IN) (i32.add (local.get $i) (local.get $j))))
                (i32.load8_u (i32.add (local.get $kptr) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $cmp)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  ;; Reads the integer of the input named by the key at kptr. Sets $ok.
  (func $int (param $kptr i32) (param $klen i32) (result i64)
    (local $i i32) (local $c i32) (local $neg i32) (local $n i32) (local $v i64)
    (global.set $ok (i32.const 0))
    (local.set $i (call $find (local.get $kptr) (local.get $klen)))
    (if (i32.lt_s (local.get $i) (i32.const 0)) (then (return (i64.const 0))))
    (if (i32.eq (call $at (local.get $i)) (i32.const 0x2d)) ;; '-'
      (then
        (local.set $neg (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (block $end
      (loop $digit
        (local.set $c (call $at (local.get $i)))
        (br_if $end (i32.gt_u (i32.sub (local.get $c) (i32.const 0x30)) (i32.const 9)))
        (local.set $v
          (i64.add
            (i64.mul (local.get $v) (i64.const 10))
            (i64.extend_i32_u (i32.sub (local.get $c) (i32.const 0x30)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digit)))
    ;; 1..18 digits, no leading zero unless the number is 0, then a delimiter.
    (if (i32.or (i32.eqz (local.get $n)) (i32.gt_u (local.get $n) (i32.const 18)))
      (then (return (i64.const 0))))
    (if (i32.and
          (i32.gt_u (local.get $n) (i32.const 1))
          (i32.eq (call $at (i32.sub (local.get $i) (local.get $n))) (i32.const 0x30)))
      (then (return (i64.const 0))))
    (local.set $c (call $at (local.get $i)))
    (if (i32.eqz
          (i32.or
            (i32.or (call $is_space (local.get $c)) (i32.eq (local.get $c) (i32.const -1)))
            (i32.or (i32.eq (local.get $c) (i32.const 0x2c)) (i32.eq (local.get $c) (i32.const 0x7d)))))
      (then (return (i64.const 0))))
    (global.set $ok (i32.const 1))
    (if (result i64) (local.get $neg)
      (then (i64.sub (i64.const 0) (local.get $v)))
      (else (local.get $v))))

  ;; Outputs v in decimal.
  (func $output_int (param $v i64)
    (local $neg i32) (local $p i32)
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (local.set $neg (i32.const 1))
        (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    ;; digits are written backwards, ending at 63
    (local.set $p (i32.const 63))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (if (local.get $neg)
      (then
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (i32.store8 (local.get $p) (i32.const 0x2d))))
    (call $output (local.get $p) (i32.sub (i32.const 63) (local.get $p))))

  ;; add: {a, b} -> a + b
  (func (export "add") (result i32)
    (local $a i64) (local $b i64)
    (if (call $read_input) (then (return (i32.const 1))))
    (local.set $a (call $int (i32.const 1024) (i32.const 3)))
    (if (i32.eqz (global.get $ok)) (then (return (call $fail (i32.const 1088) (i32.const 61)))))
    (local.set $b (call $int (i32.const 1028) (i32.const 3)))
    (if (i32.eqz (global.get $ok)) (then (return (call $fail (i32.const 1088) (i32.const 61)))))
    (call $output_int (i64.add (local.get $a) (local.get $b)))
    (i32.const 0))

  ;; inc: {x} -> x + 1
  (func (export "inc") (result i32)
    (local $x i64)
    (if (call $read_input) (then (return (i32.const 1))))
    (local.set $x (call $int (i32.const 1032) (i32.const 3)))
    (if (i32.eqz (global.get $ok)) (then (return (call $fail (i32.const 1152) (i32.const 54)))))
    (call $output_int (i64.add (local.get $x) (i64.const 1)))
    (i32.const 0))

  ;; flowhost_manifest: outputs the manifest (docs/abi.md, "The manifest": the second way).
  (func (export "flowhost_manifest") (result i32)
    (call $output (global.get $MANIFEST) (global.get $MANIFEST_LEN))
    (i32.const 0))
)
