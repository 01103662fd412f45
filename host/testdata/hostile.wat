;; Misbehaving tasks for the host's tests: each task fails in one way.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status_code (result i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))

  (data (i32.const 0) "not json at all")                  ;; 15 bytes
  (data (i32.const 16) "{\"a\":1}")                       ;; 7 bytes
  (data (i32.const 32) "boom: the guest's own words")     ;; 27 bytes
  (data (i32.const 64) "{\"url\":\"https://example.com/\"}") ;; 30 bytes

  ;; copy len bytes at ptr into a new kernel block; return its offset
  (func $block (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $off))

  (func $output (param $ptr i32) (param $len i32)
    (call $output_set (call $block (local.get $ptr) (local.get $len)) (i64.extend_i32_u (local.get $len))))

  ;; echo: the input back, unchanged
  (func (export "echo") (result i32)
    (local $n i64) (local $off i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $off (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $off) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (call $output_set (local.get $off) (local.get $n))
    (i32.const 0))

  ;; count: how many calls this instance has served (1, 2, 3, …)
  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const 200) (i32.add (i32.const 48) (global.get $calls)))
    (call $output (i32.const 200) (i32.const 1))
    (i32.const 0))

  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))

  (func (export "grow") (result i32)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)

  (func $recurse (param $n i64) (result i64)
    (i64.add (call $recurse (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func (export "recurse") (result i32)
    (drop (call $recurse (i64.const 0)))
    (i32.const 0))

  (func (export "huge_output") (result i32)
    (call $output_set (call $alloc (i64.const 67108864)) (i64.const 67108864))
    (i32.const 0))

  (func (export "big_alloc") (result i32)
    (drop (call $alloc (i64.const 1073741824)))
    (call $output (i32.const 16) (i32.const 7))
    (i32.const 0))

  (func (export "trap") (result i32)
    unreachable)

  (func (export "div_zero") (result i32)
    (i32.div_u (i32.const 1) (i32.sub (global.get $calls) (global.get $calls))))

  (func (export "bad_json") (result i32)
    (call $output (i32.const 0) (i32.const 15))
    (i32.const 0))

  (func (export "half_outputs") (result i32)
    (call $output (i32.const 16) (i32.const 7))
    (i32.const 0))

  (func (export "fail") (result i32)
    (call $error_set (call $block (i32.const 32) (i32.const 27)))
    (i32.const 1))

  (func (export "fail_silently") (result i32)
    (i32.const 7))

  (func (export "no_output") (result i32)
    (i32.const 0))

  (func (export "bad_offset") (result i32)
    (drop (call $load_u64 (i64.const 999999999)))
    (i32.const 0))

  (func (export "http") (result i32)
    (drop (call $http_request (call $block (i32.const 64) (i32.const 30)) (i64.const 0)))
    (call $output (i32.const 16) (i32.const 7))
    (i32.const 0))

  (data (i32.const 128) "hello from the guest")
  ;; chatty: logs three lines, outputs 1
  (func (export "chatty") (result i32)
    (call $log_info (call $block (i32.const 128) (i32.const 20)))
    (call $log_info (call $block (i32.const 128) (i32.const 20)))
    (call $log_info (call $block (i32.const 128) (i32.const 20)))
    (call $output (i32.const 100) (i32.const 1))
    (i32.const 0))
  (data (i32.const 100) "1")

  ;; fetch: sends its whole input as the HTTP request ({"url": …}); outputs the response body
  (func (export "fetch") (result i32)
    (local $n i64) (local $off i64) (local $i i64) (local $resp i64)
    (local.set $n (call $input_length))
    (local.set $off (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $off) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.set $resp (call $http_request (local.get $off) (i64.const 0)))
    (if (i32.ne (call $http_status_code) (i32.const 200)) (then (return (i32.const 2))))
    (call $output_set (local.get $resp) (call $length (local.get $resp)))
    (i32.const 0))
)
