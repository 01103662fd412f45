package host

import (
	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs one instance's linear memory and refuses to grow it
// past limit: memory.grow then returns -1 to the guest, and a failed call
// is reported as KindMemory.
type linearMemory struct {
	buf        []byte // nil until the runtime first sizes the memory
	initialCap uint64 // the runtime's hint for the first allocation
	max        uint64
	limit      uint64 // current call's cap in bytes; 0 means no cap
	exceeded   uint64 // the size the guest asked for past the cap, 0 if none
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// Reallocate grows the memory to size bytes, or returns nil past the cap.
// The first call sizes the memory the module declares, which
// newInstance has already checked against the cap: the runtime cannot
// take a refusal then (it would panic).
func (m *linearMemory) Reallocate(size uint64) []byte {
	if m.buf == nil {
		m.buf = make([]byte, size, max(size, min(m.initialCap, m.max)))
		return m.buf
	}
	if size > m.max || (m.limit != 0 && size > m.limit) {
		m.exceeded = size
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	newCap := uint64(cap(m.buf)) * 2
	if newCap < size {
		newCap = size
	}
	if m.limit != 0 && newCap > m.limit {
		newCap = m.limit
	}
	if newCap > m.max {
		newCap = m.max
	}
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

// Free drops the backing buffer.
func (m *linearMemory) Free() { m.buf = nil }

// size is the current length in bytes.
func (m *linearMemory) size() uint64 { return uint64(len(m.buf)) }
