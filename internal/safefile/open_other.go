//go:build !unix

package safefile

// openFlags: nothing to add where there are no FIFOs to block on.
const openFlags = 0
