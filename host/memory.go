package host

import (
	"fmt"

	"github.com/tetratelabs/wazero/experimental"
)

// Tables: WebAssembly bounds neither their number nor their size, and
// the runtime holds tableElemBytes of host memory per element, so the host
// bounds both, and counts their elements against the call's memory limit
// with the linear memory.
const (
	// MaxTables is the most tables a module may define.
	MaxTables = 64
	// MaxTableElements is the most elements a table may hold (8 MiB of
	// host memory); modules that declare more are refused at load, and a
	// table.grow past it returns -1.
	MaxTableElements = 1 << 20
	// tableElemBytes is what the runtime holds per table element.
	tableElemBytes = 8
)

// linearMemory backs one instance's linear memory and refuses to grow it
// past limit: memory.grow then returns -1 to the guest, and a failed call
// is reported as KindMemory. It also keeps the size of the instance's
// tables, which count against the same limit (see growTable).
type linearMemory struct {
	buf        []byte // nil until the runtime first sizes the memory
	initialCap uint64 // the runtime's hint for the first allocation
	max        uint64
	limit      uint64 // current call's cap in bytes; 0 means no cap
	exceeded   uint64 // the size the guest asked for past the cap, 0 if none

	tables     []uint64 // elements of each table
	tableMax   []uint64 // each table's declared maximum; 0 for none
	tableElems uint64   // sum of tables
	tableOver  string   // why a table.grow of this call was refused, if one was
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
	if size > m.max || (m.limit != 0 && size+m.tableBytes() > m.limit) {
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
	if m.limit != 0 && newCap > m.limit-m.tableBytes() {
		newCap = m.limit - m.tableBytes()
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

// tableBytes is the host memory the instance's tables take.
func (m *linearMemory) tableBytes() uint64 { return m.tableElems * tableElemBytes }

// used is the guest memory the instance holds: linear memory and tables.
func (m *linearMemory) used() uint64 { return m.size() + m.tableBytes() }

// growRefused is what growTable answers to refuse a growth: table.grow
// then returns -1, since no table can reach 2^32 elements.
const growRefused = 0xffffffff

// growTable answers the meter's check before a table.grow of delta
// elements on table, whose current size is size: the delta to grow by, or
// growRefused past MaxTableElements or past the call's memory limit.
func (m *linearMemory) growTable(delta, size, table uint32) uint32 {
	if int(table) >= len(m.tables) {
		return growRefused // the runtime has validated the index: unreachable
	}
	m.tableElems += uint64(size) - m.tables[table] // a grow the runtime refused did not happen
	m.tables[table] = uint64(size)
	if delta == 0 {
		return 0
	}
	want := uint64(size) + uint64(delta)
	if max := m.tableMax[table]; max != 0 && want > max {
		return delta // the runtime refuses it: the guest sees -1, the table stays
	}
	if want > MaxTableElements {
		m.tableOver = fmt.Sprintf("the guest tried to grow table %d to %d elements; a table may have at most %d", table, want, MaxTableElements)
		return growRefused
	}
	if need := m.size() + (m.tableElems+uint64(delta))*tableElemBytes; m.limit != 0 && need > m.limit {
		m.tableOver = fmt.Sprintf("the guest tried to grow table %d to %d elements (%d bytes); with its other tables and linear memory, that is %d bytes; the limit is %d bytes",
			table, want, want*tableElemBytes, need, m.limit)
		return growRefused
	}
	m.tables[table] = want
	m.tableElems += uint64(delta)
	return delta
}
