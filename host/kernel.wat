;; The WebAssembly half of the kernel (kernel.go): the functions of the
;; Extism guest ABI that only touch the arena, the input and the output,
;; run here, so that a guest's calls of them are calls between two
;; WebAssembly modules, not exits to Go. One instance of this module serves
;; one guest instance; the guest's "extism:host/env" imports resolve to it.
;; The rest of the ABI (config, vars, logs, HTTP) is Go: this module
;; imports it from "flowhost:kernel" and exports it again, so that the
;; guest finds every function of the ABI in one module.
;;
;; Its linear memory holds the arena at the offsets the guest sees: the
;; block at offset off starts at address off. Addresses below arenaBase
;; (8), never part of the arena, hold the output that output_set set, for
;; the host to read: its offset (0 for none: no block is at 0) at 0, and
;; its length at 4, in 32 bits each. The table of blocks grows down from
;; the top of the memory, an i64 an entry, oldest first: the entry of
;; block i is at (memory size) - 8 - 8i, with the block's offset in its low
;; 32 bits (bit 0 set once the block is freed: offsets are multiples of 8)
;; and its length in its high 32 bits.
;;
;; A failure sets $fail to one of the codes below, and $fail_a, $fail_b,
;; $fail_c to its arguments, then traps: the host turns that into the
;; error it describes (kernelFailure in kernel.go). The codes:
;;   1 alloc past the call's limit (n, limit)
;;   2 error_set of an offset that is not a block (off)
;;   3 input_load_u8 past the input (off, input length)
;;   4 input_load_u64 past the input (off, input length)
;;   5 output_set of more than the output limit (n, limit)
;;   6 alloc past what the memory can hold (n, bytes needed)
;;   16+f bytes [off, off+n) outside the arena (off, n, arena length), in
;;        function f: 0 load_u8, 1 load_u64, 2 store_u8, 3 store_u64,
;;        4 output_set
;;
;; Source of kernel.wasm: `wat2wasm kernel.wat -o kernel.wasm`
;; (TestKernelWasm checks that they agree).
(module
  (import "flowhost:kernel" "config_get" (func $config_get (param i64) (result i64)))
  (import "flowhost:kernel" "var_get" (func $var_get (param i64) (result i64)))
  (import "flowhost:kernel" "var_set" (func $var_set (param i64 i64)))
  (import "flowhost:kernel" "log_info" (func $log_info (param i64)))
  (import "flowhost:kernel" "log_debug" (func $log_debug (param i64)))
  (import "flowhost:kernel" "log_warn" (func $log_warn (param i64)))
  (import "flowhost:kernel" "log_error" (func $log_error (param i64)))
  (import "flowhost:kernel" "log_trace" (func $log_trace (param i64)))
  (import "flowhost:kernel" "get_log_level" (func $get_log_level (result i32)))
  (import "flowhost:kernel" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "flowhost:kernel" "http_status_code" (func $http_status_code (result i32)))
  (import "flowhost:kernel" "http_headers" (func $http_headers (result i64)))
  ;; charge takes fuel from the guest for the bytes a large alloc zeroes
  ;; (kernelCharge in kernel.go): a guest that allocs and frees in a loop
  ;; pays for the work, as for a memory.fill of its own.
  (import "flowhost:kernel" "charge" (func $charge (param i64)))
  (export "config_get" (func $config_get))
  (export "var_get" (func $var_get))
  (export "var_set" (func $var_set))
  (export "log_info" (func $log_info))
  (export "log_debug" (func $log_debug))
  (export "log_warn" (func $log_warn))
  (export "log_error" (func $log_error))
  (export "log_trace" (func $log_trace))
  (export "get_log_level" (func $get_log_level))
  (export "http_request" (func $http_request))
  (export "http_status_code" (func $http_status_code))
  (export "http_headers" (func $http_headers))

  ;; At most 65535 pages, so that the memory's size in bytes fits in 32 bits.
  (memory (export "memory") 1 65535)

  ;; The call's state, which reset sets.
  (global $end (export "end") (mut i64) (i64.const 8)) ;; address past the arena: arenaBase + its length
  (global $n (mut i32) (i32.const 0)) ;; blocks in the table
  (global $input_off (mut i64) (i64.const 0))
  (global $input_len (mut i64) (i64.const 0))
  (global $err_off (export "err_off") (mut i64) (i64.const 0))
  (global $limit (mut i64) (i64.const 0)) ;; 0: none
  (global $max_output (mut i64) (i64.const 0)) ;; 0: none
  (global $var_bytes (export "var_bytes") (mut i64) (i64.const 0)) ;; what the vars take, set by the host
  (global $fail (export "fail") (mut i32) (i32.const 0))
  (global $fail_a (export "fail_a") (mut i64) (i64.const 0))
  (global $fail_b (export "fail_b") (mut i64) (i64.const 0))
  (global $fail_c (export "fail_c") (mut i64) (i64.const 0))

  (func $die (param $code i32) (param $a i64) (param $b i64) (param $c i64)
    (global.set $fail (local.get $code))
    (global.set $fail_a (local.get $a))
    (global.set $fail_b (local.get $b))
    (global.set $fail_c (local.get $c))
    (unreachable))

  ;; reset starts a call: no blocks, no output, no error, and a block of
  ;; input_len bytes for the input (which the host then copies in), whose
  ;; offset it returns.
  (func (export "reset") (param $input_len i64) (param $limit i64) (param $max_output i64) (result i64)
    (global.set $end (i64.const 8))
    (global.set $n (i32.const 0))
    (i64.store (i32.const 0) (i64.const 0)) ;; no output
    (global.set $err_off (i64.const 0))
    (global.set $var_bytes (i64.const 0))
    (global.set $fail (i32.const 0)) ;; its arguments are read only with it
    (global.set $limit (local.get $limit))
    (global.set $max_output (local.get $max_output))
    (global.set $input_len (local.get $input_len))
    (global.set $input_off (call $alloc (local.get $input_len)))
    (global.get $input_off))

  ;; $top is the memory's size in bytes, where the table of blocks ends.
  (func $top (result i64)
    (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))

  ;; $entry is the address of block i's entry.
  (func $entry (param $i i32) (result i32)
    (i32.wrap_i64 (i64.sub (call $top)
      (i64.add (i64.const 8) (i64.shl (i64.extend_i32_u (local.get $i)) (i64.const 3))))))

  ;; $find returns the index of the live block that starts at off, or -1.
  (func $find (param $off i64) (result i32)
    (local $e i64) (local $lo i32) (local $hi i32) (local $mid i32)
    (if (i32.eqz (global.get $n)) (then (return (i32.const -1))))
    ;; The common case: the newest block.
    (local.set $e (i64.load (call $entry (i32.sub (global.get $n) (i32.const 1)))))
    (if (i64.eq (i64.and (local.get $e) (i64.const 0xfffffff8)) (local.get $off))
      (then
        (if (i64.ne (i64.and (local.get $e) (i64.const 1)) (i64.const 0))
          (then (return (i32.const -1))))
        (return (i32.sub (global.get $n) (i32.const 1)))))
    (local.set $hi (global.get $n))
    (block $done
      (loop $search
        (br_if $done (i32.ge_u (local.get $lo) (local.get $hi)))
        (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))
        (if (i64.lt_u (i64.and (i64.load (call $entry (local.get $mid))) (i64.const 0xfffffff8)) (local.get $off))
          (then (local.set $lo (i32.add (local.get $mid) (i32.const 1))))
          (else (local.set $hi (local.get $mid))))
        (br $search)))
    (if (i32.lt_u (local.get $lo) (global.get $n))
      (then
        (local.set $e (i64.load (call $entry (local.get $lo))))
        (if (i32.and
              (i64.eq (i64.and (local.get $e) (i64.const 0xfffffff8)) (local.get $off))
              (i64.eqz (i64.and (local.get $e) (i64.const 1))))
          (then (return (local.get $lo))))))
    (i32.const -1))

  ;; $grow makes the memory at least need bytes (doubling it where it
  ;; can), and moves the table of blocks to its new top; n is the size of
  ;; the alloc that needs it. Where the memory cannot double, it grows by
  ;; half as much, a quarter, ... down to what need takes: by a page at a
  ;; time, past half the most a call may have, every growth would copy
  ;; the whole memory (host and table) for the page an alloc needed.
  (func $grow (param $need i64) (param $n i64)
    (local $pages i32) (local $want i32) (local $old i64) (local $len i32) (local $min i32) (local $d i32)
    (local.set $pages (memory.size))
    (local.set $old (call $top))
    (local.set $want (i32.wrap_i64 (i64.shr_u (i64.add (local.get $need) (i64.const 0xffff)) (i64.const 16))))
    (local.set $min (i32.sub (local.get $want) (local.get $pages)))
    (local.set $d (select (local.get $min) (local.get $pages) (i32.gt_u (local.get $min) (local.get $pages))))
    (block $grown
      (loop $try
        (br_if $grown (i32.ne (memory.grow (local.get $d)) (i32.const -1)))
        (if (i32.le_u (local.get $d) (local.get $min))
          (then (call $die (i32.const 6) (local.get $n) (local.get $need) (i64.const 0))))
        (local.set $d (i32.shr_u (local.get $d) (i32.const 1)))
        (if (i32.lt_u (local.get $d) (local.get $min)) (then (local.set $d (local.get $min))))
        (br $try)))
    (local.set $len (i32.shl (global.get $n) (i32.const 3)))
    (memory.copy
      (i32.wrap_i64 (i64.sub (call $top) (i64.extend_i32_u (local.get $len))))
      (i32.wrap_i64 (i64.sub (local.get $old) (i64.extend_i32_u (local.get $len))))
      (local.get $len)))

  (func $alloc (export "alloc") (param $n i64) (result i64)
    (local $start i64) (local $e i64) (local $need i64)
    (if (i64.eqz (local.get $n)) (then (return (i64.const 0))))
    ;; In arena indices (an offset less arenaBase), as the limit counts them.
    (local.set $start (i64.and (i64.add (i64.sub (global.get $end) (i64.const 8)) (i64.const 7)) (i64.const -8)))
    (local.set $e (i64.add (local.get $start) (local.get $n)))
    (if (i32.or
          (i64.lt_u (local.get $e) (local.get $start))
          (i32.and
            (i64.ne (global.get $limit) (i64.const 0))
            (i64.gt_u (i64.add (local.get $e) (global.get $var_bytes)) (global.get $limit))))
      (then (call $die (i32.const 1) (local.get $n) (global.get $limit) (i64.const 0))))
    ;; The arena's new end, the table with one entry more.
    (if (i64.gt_u (local.get $e) (i64.const 0xfff00000))
      (then (call $die (i32.const 6) (local.get $n) (local.get $e) (i64.const 0))))
    (local.set $need (i64.add (i64.add (local.get $e) (i64.const 16))
      (i64.shl (i64.extend_i32_u (global.get $n)) (i64.const 3))))
    (if (i64.gt_u (local.get $need) (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
      (then (call $grow (local.get $need) (local.get $n))))
    (if (i64.ge_u (local.get $n) (i64.const 256)) (then (call $charge (local.get $n))))
    ;; A new block's bytes, and the padding before it, are zero.
    (memory.fill (i32.wrap_i64 (global.get $end)) (i32.const 0)
      (i32.wrap_i64 (i64.sub (i64.add (local.get $e) (i64.const 8)) (global.get $end))))
    (global.set $end (i64.add (local.get $e) (i64.const 8)))
    ;; The new entry, at $entry($n) (written out: this is the hot path).
    (i64.store (i32.sub (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 8))
        (i32.shl (global.get $n) (i32.const 3)))
      (i64.or (i64.add (local.get $start) (i64.const 8)) (i64.shl (local.get $n) (i64.const 32))))
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i64.add (local.get $start) (i64.const 8)))

  (func (export "free") (param $off i64)
    (local $i i32) (local $a i32)
    (local.set $i (call $find (local.get $off)))
    (if (i32.lt_s (local.get $i) (i32.const 0)) (then (return)))
    (if (i32.and
          (i32.eq (local.get $i) (i32.sub (global.get $n) (i32.const 1)))
          (i64.ne (local.get $off) (global.get $input_off)))
      (then
        ;; Give the space of the newest block back to the arena.
        (global.set $n (local.get $i))
        (global.set $end (local.get $off))
        (return)))
    (local.set $a (call $entry (local.get $i)))
    (i64.store (local.get $a) (i64.or (i64.load (local.get $a)) (i64.const 1))))

  (func $length (export "length") (param $off i64) (result i64)
    (local $i i32)
    (local.set $i (call $find (local.get $off)))
    (if (i32.lt_s (local.get $i) (i32.const 0)) (then (return (i64.const 0))))
    (i64.shr_u (i64.load (call $entry (local.get $i))) (i64.const 32)))

  (func (export "length_unsafe") (param $off i64) (result i64)
    (call $length (local.get $off)))

  (func (export "input_length") (result i64) (global.get $input_len))
  (func (export "input_offset") (result i64) (global.get $input_off))

  (func (export "input_load_u8") (param $i i64) (result i32)
    (if (i64.ge_u (local.get $i) (global.get $input_len))
      (then (call $die (i32.const 3) (local.get $i) (global.get $input_len) (i64.const 0))))
    (i32.load8_u (i32.wrap_i64 (i64.add (global.get $input_off) (local.get $i)))))

  (func (export "input_load_u64") (param $i i64) (result i64)
    (if (i32.or
          (i64.gt_u (local.get $i) (global.get $input_len))
          (i64.lt_u (i64.sub (global.get $input_len) (local.get $i)) (i64.const 8)))
      (then (call $die (i32.const 4) (local.get $i) (global.get $input_len) (i64.const 0))))
    (i64.load (i32.wrap_i64 (i64.add (global.get $input_off) (local.get $i)))))

  (func (export "load_u8") (param $off i64) (result i32)
    (if (i32.or (i32.or
          (i64.lt_u (local.get $off) (i64.const 8))
          (i64.gt_u (local.get $off) (global.get $end)))
          (i64.gt_u (i64.const 1) (i64.sub (global.get $end) (local.get $off))))
      (then (call $die (i32.const 16) (local.get $off) (i64.const 1) (i64.sub (global.get $end) (i64.const 8)))))
    (i32.load8_u (i32.wrap_i64 (local.get $off))))

  (func (export "load_u64") (param $off i64) (result i64)
    (if (i32.or (i32.or
          (i64.lt_u (local.get $off) (i64.const 8))
          (i64.gt_u (local.get $off) (global.get $end)))
          (i64.gt_u (i64.const 8) (i64.sub (global.get $end) (local.get $off))))
      (then (call $die (i32.const 17) (local.get $off) (i64.const 8) (i64.sub (global.get $end) (i64.const 8)))))
    (i64.load (i32.wrap_i64 (local.get $off))))

  (func (export "store_u8") (param $off i64) (param $v i32)
    (if (i32.or (i32.or
          (i64.lt_u (local.get $off) (i64.const 8))
          (i64.gt_u (local.get $off) (global.get $end)))
          (i64.gt_u (i64.const 1) (i64.sub (global.get $end) (local.get $off))))
      (then (call $die (i32.const 18) (local.get $off) (i64.const 1) (i64.sub (global.get $end) (i64.const 8)))))
    (i32.store8 (i32.wrap_i64 (local.get $off)) (local.get $v)))

  (func (export "store_u64") (param $off i64) (param $v i64)
    (if (i32.or (i32.or
          (i64.lt_u (local.get $off) (i64.const 8))
          (i64.gt_u (local.get $off) (global.get $end)))
          (i64.gt_u (i64.const 8) (i64.sub (global.get $end) (local.get $off))))
      (then (call $die (i32.const 19) (local.get $off) (i64.const 8) (i64.sub (global.get $end) (i64.const 8)))))
    (i64.store (i32.wrap_i64 (local.get $off)) (local.get $v)))

  (func (export "output_set") (param $off i64) (param $n i64)
    (if (i32.and
          (i64.ne (global.get $max_output) (i64.const 0))
          (i64.gt_u (local.get $n) (global.get $max_output)))
      (then (call $die (i32.const 5) (local.get $n) (global.get $max_output) (i64.const 0))))
    (if (i32.or (i32.or
          (i64.lt_u (local.get $off) (i64.const 8))
          (i64.gt_u (local.get $off) (global.get $end)))
          (i64.gt_u (local.get $n) (i64.sub (global.get $end) (local.get $off))))
      (then (call $die (i32.const 20) (local.get $off) (local.get $n) (i64.sub (global.get $end) (i64.const 8)))))
    ;; Both less than 2^32, and off is 8 at least.
    (i32.store (i32.const 0) (i32.wrap_i64 (local.get $off)))
    (i32.store (i32.const 4) (i32.wrap_i64 (local.get $n))))

  (func (export "output_offset") (result i64) (i64.load32_u (i32.const 0)))
  (func (export "output_length") (result i64) (i64.load32_u (i32.const 4)))

  (func (export "error_set") (param $off i64)
    (if (i32.and
          (i64.ne (local.get $off) (i64.const 0))
          (i32.lt_s (call $find (local.get $off)) (i32.const 0)))
      (then (call $die (i32.const 2) (local.get $off) (i64.const 0) (i64.const 0))))
    (global.set $err_off (local.get $off)))

  (func (export "error_get") (result i64) (global.get $err_off))
)
