// Package safefile reads a file named by an untrusted path: only a
// regular file (a symlink to one is followed), of at most a given size,
// refused before a byte is read otherwise. /dev/zero or /dev/urandom
// would never end, and a FIFO would block until a writer came.
package safefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is wrapped by the error of a path that names a device, a
// FIFO, a socket or a directory; the message says which ("not a regular
// file: it is a named pipe (FIFO)").
var ErrNotRegular = errors.New("not a regular file")

// TooLargeError is the error of a file larger than the limit. Size is -1
// for a file that grew past the limit while being read.
type TooLargeError struct{ Size, Limit int64 }

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("it grew past %d bytes while being read", e.Limit)
	}
	return fmt.Sprintf("%d bytes; the limit is %d bytes", e.Size, e.Limit)
}

// Read reads the regular file at path, of at most limit bytes. Its
// errors do not name the path: callers say what the file was for.
func Read(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check(st, limit); err != nil {
		return nil, err
	}
	// Non-blocking, in case path became a FIFO since the Stat: the open
	// then returns at once and the second check refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := check(st, limit); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead)
	// One byte past the limit tells a file that grew since the Stat.
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, &TooLargeError{Size: -1, Limit: limit}
	}
	return buf.Bytes(), nil
}

func check(st fs.FileInfo, limit int64) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: it is %s", ErrNotRegular, Kind(st.Mode()))
	}
	if st.Size() > limit {
		return &TooLargeError{Size: st.Size(), Limit: limit}
	}
	return nil
}

// Kind names what a file that is not regular is.
func Kind(m fs.FileMode) string {
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
