;; Reads and writes files of the first granted directory (fd 3), for
;; TestGrantedFilesStayInside. The input is {"path":"..."}: the path is
;; the bytes between its 9-byte prefix and 2-byte suffix.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  ;; 0: an iovec; 8: bytes read or written; 12: the fd opened;
  ;; 1024: the path; 4095: the output, '"' then the bytes read then '"'
  (data (i32.const 16) "pwned")

  ;; copy the path to 1024; return its length
  (func $path (result i32)
    (local $n i32) (local $i i32)
    (local.set $n (i32.sub (i32.wrap_i64 (call $input_length)) (i32.const 11)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (i32.const 1024) (local.get $i))
        (call $input_load_u8 (i64.extend_i32_u (i32.add (local.get $i) (i32.const 9)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $n))

  ;; output len bytes at ptr
  (func $out (param $ptr i32) (param $len i32)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $output_set (local.get $off) (i64.extend_i32_u (local.get $len))))

  ;; output an errno (1..99) as a JSON number
  (func $errno (param $e i32) (result i32)
    (if (i32.ge_u (local.get $e) (i32.const 10))
      (then
        (i32.store8 (i32.const 200) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
        (i32.store8 (i32.const 201) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
        (call $out (i32.const 200) (i32.const 2)))
      (else
        (i32.store8 (i32.const 200) (i32.add (i32.const 48) (local.get $e)))
        (call $out (i32.const 200) (i32.const 1))))
    (i32.const 0))

  ;; read: the file's first 1024 bytes as a JSON string, or the errno
  (func (export "read") (result i32)
    (local $e i32) (local $n i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 1) (i32.const 1024) (call $path)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (i32.const 1024))
    (local.set $e (call $fd_read (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $fd_close (i32.load (i32.const 12))))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (local.set $n (i32.load (i32.const 8)))
    (i32.store8 (i32.const 4095) (i32.const 34))
    (i32.store8 (i32.add (i32.const 4096) (local.get $n)) (i32.const 34))
    (call $out (i32.const 4095) (i32.add (local.get $n) (i32.const 2)))
    (i32.const 0))

  ;; write: create or truncate the file and write "pwned" to it; the
  ;; errno of the first step that failed, or 0
  (func (export "write") (result i32)
    (local $e i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 1) (i32.const 1024) (call $path)
      (i32.const 9) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 12)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (local.set $e (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (local.get $e) (then (return (call $errno (local.get $e)))))
    (call $errno (i32.const 0)))
)
