//go:build unix

package safefile

import "syscall"

// openFlags open a file without blocking on a FIFO and without
// making a terminal the process's controlling terminal.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY
