;; Tries to read a host file through WASI: opens "/etc/passwd" relative to
;; fd 3 (the first preopen, if any) and reads from it. Outputs the errno of
;; path_open as a JSON number, or the bytes read as a JSON string on success.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "etc/passwd")
  (func $out_digit (param $d i32)
    (local $off i64)
    (local.set $off (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $off) (i32.add (i32.const 48) (local.get $d)))
    (call $output_set (local.get $off) (i64.const 1)))
  ;; read: 0 means the file was opened (a sandbox escape); otherwise the errno's last digit
  (func (export "read") (result i32)
    (local $errno i32)
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 10)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 100)))
    (if (i32.eqz (local.get $errno))
      (then (call $out_digit (i32.const 0)) (return (i32.const 0))))
    (call $out_digit (i32.rem_u (local.get $errno) (i32.const 10)))
    (i32.const 0))
  ;; env: the number of environment variables the guest sees (0..9)
  (func (export "env") (result i32)
    (drop (call $environ_sizes_get (i32.const 200) (i32.const 204)))
    (call $out_digit (i32.load (i32.const 200)))
    (i32.const 0))
)
