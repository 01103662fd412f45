//go:build unix

package host_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
)

// TestReadModuleFile: a plugin path that is a device, a FIFO, a socket or
// a directory is refused, naming the path, without reading from it or
// blocking; so is a file over MaxModuleSize. Regular files, and symlinks
// to them, load.
func TestReadModuleFile(t *testing.T) {
	dir := t.TempDir()
	wasm := testmod.Module(t, "testdata/hostile.wat", "testdata/hostile.json")
	module := filepath.Join(dir, "ok.wasm")
	if err := os.WriteFile(module, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.wasm")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock.wasm")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	huge := filepath.Join(dir, "huge.wasm") // sparse: takes no disk
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, host.MaxModuleSize+1); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path string
		is   error  // nil: the module reads
		msg  string // in the error
	}{
		{module, nil, ""},
		{link("link.wasm", module), nil, ""},
		{"/dev/zero", host.ErrNotRegularFile, "read module /dev/zero: not a regular file: it is a character device"},
		{"/dev/urandom", host.ErrNotRegularFile, "read module /dev/urandom: not a regular file: it is a character device"},
		{link("zero.wasm", "/dev/zero"), host.ErrNotRegularFile, "zero.wasm: not a regular file: it is a character device"},
		{fifo, host.ErrNotRegularFile, "fifo.wasm: not a regular file: it is a named pipe (FIFO)"},
		{sock, host.ErrNotRegularFile, "sock.wasm: not a regular file: it is a socket"},
		{dir, host.ErrNotRegularFile, "not a regular file: it is a directory"},
		{huge, host.ErrModuleTooLarge, "huge.wasm: module too large: 268435457 bytes; the limit is 268435456 bytes"},
		{filepath.Join(dir, "missing.wasm"), os.ErrNotExist, "missing.wasm: no such file"},
	}
	for _, c := range cases {
		name := filepath.Base(c.path)
		if c.path == dir {
			name = "directory"
		}
		t.Run(name, func(t *testing.T) {
			type result struct {
				b   []byte
				err error
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			done := make(chan result, 1)
			go func() {
				b, err := host.ReadModuleFile(c.path)
				done <- result{b, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute): // a watchdog, not a measure: the read returns at once or never
				t.Fatalf("ReadModuleFile(%s) has not returned: it blocks or reads without end", c.path)
			}
			runtime.ReadMemStats(&after)
			if c.is == nil {
				if r.err != nil || string(r.b) != string(wasm) {
					t.Fatalf("read %d bytes, %v; want the module's %d bytes", len(r.b), r.err, len(wasm))
				}
				return
			}
			if !errors.Is(r.err, c.is) || !strings.Contains(r.err.Error(), c.msg) {
				t.Fatalf("err = %v; want %v with %q", r.err, c.is, c.msg)
			}
			// Refused before reading: nothing of the file was buffered.
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
				t.Fatalf("refusing %s allocated %d KiB", c.path, grown>>10)
			}
		})
	}
	// LoadFile reads through the same check.
	e := newEngine(t)
	if _, err := e.LoadFile(context.Background(), "/dev/zero"); !errors.Is(err, host.ErrNotRegularFile) {
		t.Fatalf("LoadFile(/dev/zero): %v", err)
	}
	if m, err := e.LoadFile(context.Background(), module); err != nil || m.Name != "hostile" {
		t.Fatalf("LoadFile(%s): %v", module, err)
	}
}

// TestLoadTooLarge: Load refuses bytes over MaxModuleSize, whatever their source.
func TestLoadTooLarge(t *testing.T) {
	e := newEngine(t)
	_, err := e.Load(context.Background(), make([]byte, host.MaxModuleSize+1))
	if !errors.Is(err, host.ErrModuleTooLarge) || !strings.Contains(err.Error(), "268435457 bytes; the limit is 268435456 bytes") {
		t.Fatalf("err = %v", err)
	}
}
