// Package atomicfile writes a file so that a reader never sees half of
// it: to a temporary file beside it, renamed into place. Several
// processes may write the same file at once; the last rename wins, whole.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes b to path, making its directory.
func Write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
