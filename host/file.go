package host

import (
	"errors"
	"fmt"

	"github.com/flowhost/flowhost/internal/safefile"
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
	ErrNotRegularFile = safefile.ErrNotRegular
	// ErrModuleTooLarge: the module is larger than MaxModuleSize.
	ErrModuleTooLarge = errors.New("module too large")
)

// ReadModuleFile reads the module file at path: a regular file (a symlink
// to one is followed) of at most MaxModuleSize bytes. Anything else is
// refused, naming the path, before a byte of it is read: /dev/zero or
// /dev/urandom would never end, and a FIFO would block until a writer
// came. Every place that reads a module from a file reads it through here.
func ReadModuleFile(path string) ([]byte, error) {
	b, err := safefile.Read(path, MaxModuleSize)
	var big *safefile.TooLargeError
	switch {
	case errors.As(err, &big):
		return nil, fmt.Errorf("read module %s: %w: %v", path, ErrModuleTooLarge, big)
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, fmt.Errorf("read module %s: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("read module: %w", err) // an *fs.PathError names the path
	}
	return b, nil
}
