package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxModuleSize is the largest module the host reads or loads, in bytes.
// The biggest real task modules (a Go guest with large dependencies, an
// interpreter compiled to WebAssembly) are tens of MiB; a module is
// compiled whole, so this also bounds the memory compilation may take.
const MaxModuleSize = 256 << 20

// Errors of ReadModuleFile and Load, wrapped with the path or the size.
var (
	// ErrNotRegularFile: the path names a device, a FIFO, a socket or a
	// directory, which may never end or may block.
	ErrNotRegularFile = errors.New("not a regular file")
	// ErrModuleTooLarge: the module is larger than MaxModuleSize.
	ErrModuleTooLarge = errors.New("module too large")
)

// ReadModuleFile reads the module file at path: a regular file (a symlink
// to one is followed) of at most MaxModuleSize bytes. Anything else is
// refused, naming the path, before a byte of it is read: /dev/zero or
// /dev/urandom would never end, and a FIFO would block until a writer
// came. Every place that reads a module from a file reads it through here.
func ReadModuleFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	if err := checkModuleFile(path, st); err != nil {
		return nil, err
	}
	// Non-blocking, in case path became a FIFO since the Stat: the open
	// then returns at once and the second check refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	if err := checkModuleFile(path, st); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead)
	// One byte past the cap tells a file that grew since the Stat.
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxModuleSize+1)); err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	if buf.Len() > MaxModuleSize {
		return nil, fmt.Errorf("read module %s: %w: it grew past %d bytes while being read", path, ErrModuleTooLarge, MaxModuleSize)
	}
	return buf.Bytes(), nil
}

func checkModuleFile(path string, st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("read module %s: %w: it is %s", path, ErrNotRegularFile, fileKind(st.Mode()))
	}
	if st.Size() > MaxModuleSize {
		return fmt.Errorf("read module %s: %w: %d bytes; the limit is %d bytes", path, ErrModuleTooLarge, st.Size(), MaxModuleSize)
	}
	return nil
}

// fileKind names what a file that is not regular is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}
