package meter

import (
	"github.com/flowhost/flowhost/internal/leb128"
)

// Dirty chunks. A host that puts an instance's linear memory back to a
// snapshot after every call (so that every call starts from the same
// state) need only copy back what the call wrote. The rewrite records it,
// in modules it can account for, in the exported mutable i64 global
// GlobalDirty: bit i set means that chunk i of the memory may have been
// written, where chunk i is the bytes [i<<s, (i+1)<<s) and s is the i32
// global GlobalDirtyShift, which the host sets (to the smallest s for
// which 64 chunks cover the memory) before it relies on the bits. A write
// of up to 16 bytes may spill past its chunk's end: the host copies back
// 16 bytes past each chunk marked.
//
//   - Every store (the MVP's, v128.store and the store lanes) marks the
//     chunk of its effective address, after it succeeded (a store that
//     traps writes nothing, and the host discards a trapped instance):
//     the address and the value are kept in added locals, the store runs,
//     then the mark is computed.
//   - memory.fill, memory.copy and memory.init mark every chunk of their
//     destination range, after they succeeded, when the range is not empty.
//   - Atomic stores and read-modify-writes mark every chunk (all bits) before
//     they run, as does every direct call of an imported function from
//     another module than extism:host/env (WASI may write anywhere; the
//     Extism kernel's imports never write the guest's memory).
//   - memory.grow writes nothing; a host compares the memory's size with
//     the snapshot's (a chunk index past 63 wraps).
//
// The marks are added with Options.MarkWrites, to a module (State.Dirty) when it defines its one memory, a
// 32-bit unshared one, and no imported function that could write it
// escapes a direct call: none is exported, put in a table, or taken by
// ref.func (an indirect call of it would write unmarked). Other modules
// are rewritten without the marks, and their hosts copy everything back.
const (
	// GlobalDirty is the exported mutable i64 global of dirty chunks.
	GlobalDirty = "flowhost_dirty"
	// GlobalDirtyShift is the exported mutable i32 global of the chunk
	// size's log2.
	GlobalDirtyShift = "flowhost_dirty_shift"
	// DirtySpill is how far past its chunk's end a marked write may reach.
	DirtySpill = 16
)

// tracking reports whether the module's writes are marked.
func (m *rewriter) tracking() bool {
	return m.marks && m.memories == 1 && !m.memImported && m.memFlags&0x06 == 0 && !m.escapes
}

// writes reports whether function f is an import that may write memory.
func (m *rewriter) writes(f uint32) bool {
	return f < uint32(len(m.writers)) && m.writers[f]
}

// noteRef records a reference to function f other than a direct call.
func (m *rewriter) noteRef(f uint32) {
	if m.writes(f) {
		m.escapes = true
	}
	if m.stdio[f] != "" {
		m.stdioEscapes = true
	}
}

// stdioGuard appends a direct call of WASI's fd_close or fd_renumber
// (import f), guarded: closing descriptor 0, 1 or 2 (stdin, stdout,
// stderr) succeeds without closing it, and renumbering from or onto one
// fails with EBADF, since no reset reopens them and a later call of the
// instance would find them gone (a channel from call to call). Other
// descriptors were opened by the call itself, and the host discards such
// an instance after it. Two i32 temporaries are needed.
func (m *rewriter) stdioGuard(out []byte, f uint32, mk marks) []byte {
	a, b := mk.local[tempAddr], mk.local[tempMid]
	if m.stdio[f] == "fd_close" {
		out = leb128.AppendUint(append(out, 0x22), a)                    // local.tee $fd
		out = append(out, 0x41, 0x03, 0x49, 0x04, 0x7f)                  // i32.const 3; i32.lt_u; if (result i32)
		out = append(out, 0x41, 0x00, 0x05)                              // i32.const 0; else
		out = leb128.AppendUint(append(out, 0x20), a)                    // local.get $fd
		out = leb128.AppendUint(append(out, 0x10), uint64(m.fn(nil, f))) // call fd_close
		return append(out, 0x0b)                                         // end
	}
	out = leb128.AppendUint(append(out, 0x21), b)                    // local.set $to
	out = leb128.AppendUint(append(out, 0x22), a)                    // local.tee $from
	out = append(out, 0x41, 0x03, 0x49)                              // i32.const 3; i32.lt_u
	out = leb128.AppendUint(append(out, 0x20), b)                    // local.get $to
	out = append(out, 0x41, 0x03, 0x49, 0x72, 0x04, 0x7f)            // i32.const 3; i32.lt_u; i32.or; if (result i32)
	out = append(out, 0x41, 0x08, 0x05)                              // i32.const 8 (EBADF); else
	out = leb128.AppendUint(append(out, 0x20), a)                    // local.get $from
	out = leb128.AppendUint(append(out, 0x20), b)                    // local.get $to
	out = leb128.AppendUint(append(out, 0x10), uint64(m.fn(nil, f))) // call fd_renumber
	return append(out, 0x0b)                                         // end
}

// Temporary locals a function's marks need, as bits of a mask.
const (
	needAddr = 1 << iota // i32: the address of a store, the destination of a bulk operation
	needI32              // i32: an i32 value; a bulk operation's second operand
	needLen              // i32: a bulk operation's length
	needI64
	needF32
	needV128
	needF64
	needAcc   // i64: the function's own marks, or'ed into GlobalDirty as it leaves
	needShift // i32: GlobalDirtyShift, read at entry
)

// tempTypes are the value types of the temporaries, in needs' bit order.
var tempTypes = [...]byte{tI32, tI32, tI32, tI64, tF32, tV128, tF64, tI64, tI32}

// Temporaries by position in tempTypes.
const (
	tempAddr, tempMid, tempLen = 0, 1, 2
	tempAcc, tempShift         = 7, 8
)

// marks is where a function's marks go: the dirty global, or, in a
// module where no frame is left by unwinding, the function's accumulator
// (a local, or'ed into the global at each way out: cheaper in a loop than
// a global's load and store), with the shift read once.
type marks struct {
	local [len(tempTypes)]uint64
	acc   bool
}

// valueTemp is the position, in tempTypes, of the temporary holding a
// stored value of type t.
func valueTemp(t byte) int {
	switch t {
	case tI64:
		return 3
	case tF32:
		return 4
	case tV128:
		return 5
	case tF64:
		return 6
	}
	return 1
}

// needsOf is what the instruction in requires among the temporaries.
func needsOf(in instr) int {
	switch in.kind {
	case kStore:
		return needAddr | 1<<valueTemp(in.valType)
	case kBulk:
		if in.memoryBulk() {
			return needAddr | needI32 | needLen
		}
		return needLen
	}
	return 0
}

// memoryBulk reports a kBulk instruction that writes memory (not a table).
func (in instr) memoryBulk() bool { return in.sub == 8 || in.sub == 10 || in.sub == 11 }

// temps assigns the temporaries of mask to locals from first on, and
// returns their local declarations and indices.
func temps(mask int, first uint64) (decls []byte, n uint32, local [len(tempTypes)]uint64) {
	next := first
	for i, t := range tempTypes {
		if mask&(1<<i) != 0 {
			decls = append(decls, 0x01, t)
			local[i] = next
			next++
			n++
		}
	}
	return decls, n, local
}

// markAll appends the marking of every chunk.
func (m *rewriter) markAll(out []byte) []byte {
	out = append(out, 0x42, 0x7f)                                      // i64.const -1
	return leb128.AppendUint(append(out, 0x24), uint64(m.dirtyGlobal)) // global.set $dirty
}

// markStore appends a store (the instruction's bytes, raw) between the
// saving of its operands and the marking of its chunk.
func (m *rewriter) markStore(out, raw []byte, in instr, mk marks) []byte {
	local := mk.local
	val := local[valueTemp(in.valType)]
	out = leb128.AppendUint(append(out, 0x21), val)      // local.set $value
	out = leb128.AppendUint(append(out, 0x22), local[0]) // local.tee $addr
	out = leb128.AppendUint(append(out, 0x20), val)      // local.get $value
	out = append(out, raw...)                            // the store
	out = append(out, 0x42, 0x01)                        // i64.const 1
	out = leb128.AppendUint(append(out, 0x20), local[0]) // local.get $addr
	if in.offset != 0 {
		out = leb128.AppendInt(append(out, 0x41), int64(int32(uint32(in.offset)))) // i32.const offset
		out = append(out, 0x6a)                                                    // i32.add
	}
	out = m.chunkIndex(out, mk)
	out = append(out, 0x86) // i64.shl
	return m.orDirty(out, mk)
}

// markBulk appends a bulk memory operation (raw) between the saving of
// its operands (destination, source or value, length) and the marking of
// the chunks of its destination.
func (m *rewriter) markBulk(out, raw []byte, mk marks) []byte {
	dst, mid, n := mk.local[tempAddr], mk.local[tempMid], mk.local[tempLen]
	out = leb128.AppendUint(append(out, 0x21), n)   // local.set $n
	out = leb128.AppendUint(append(out, 0x21), mid) // local.set $mid
	out = leb128.AppendUint(append(out, 0x22), dst) // local.tee $dst
	out = leb128.AppendUint(append(out, 0x20), mid) // local.get $mid
	out = leb128.AppendUint(append(out, 0x20), n)   // local.get $n
	out = append(out, raw...)
	out = leb128.AppendUint(append(out, 0x20), n) // local.get $n
	out = append(out, 0x04, 0x40)                 // if (a non-empty range)
	// (-1 << first) & (-1 >>u (63 - last)): the bits first..last
	out = append(out, 0x42, 0x7f)                   // i64.const -1
	out = leb128.AppendUint(append(out, 0x20), dst) // local.get $dst
	out = m.chunkIndex(out, mk)
	out = append(out, 0x86)                         // i64.shl
	out = append(out, 0x42, 0x7f, 0x42, 0x3f)       // i64.const -1; i64.const 63
	out = leb128.AppendUint(append(out, 0x20), dst) // local.get $dst
	out = leb128.AppendUint(append(out, 0x20), n)   // local.get $n
	out = append(out, 0x6a, 0x41, 0x01, 0x6b)       // i32.add; i32.const 1; i32.sub
	out = m.chunkIndex(out, mk)
	out = append(out, 0x7d, 0x88, 0x83) // i64.sub; i64.shr_u; i64.and
	out = m.orDirty(out, mk)
	return append(out, 0x0b) // end
}

// chunkIndex turns the i32 address on the stack into its chunk's index,
// an i64.
func (m *rewriter) chunkIndex(out []byte, mk marks) []byte {
	if mk.acc {
		out = leb128.AppendUint(append(out, 0x20), mk.local[tempShift]) // local.get $shift
	} else {
		out = leb128.AppendUint(append(out, 0x23), uint64(m.shiftGlobal)) // global.get $shift
	}
	return append(out, 0x76, 0xad) // i32.shr_u; i64.extend_i32_u
}

// orDirty ors the i64 on the stack into the function's marks.
func (m *rewriter) orDirty(out []byte, mk marks) []byte {
	if mk.acc {
		out = leb128.AppendUint(append(out, 0x20), mk.local[tempAcc])  // local.get $acc
		out = append(out, 0x84)                                        // i64.or
		return leb128.AppendUint(append(out, 0x21), mk.local[tempAcc]) // local.set $acc
	}
	out = leb128.AppendUint(append(out, 0x23), uint64(m.dirtyGlobal))  // global.get $dirty
	out = append(out, 0x84)                                            // i64.or
	return leb128.AppendUint(append(out, 0x24), uint64(m.dirtyGlobal)) // global.set $dirty
}

// enterMarks appends, at a function's entry, the reading of the shift
// into its local.
func (m *rewriter) enterMarks(out []byte, mk marks) []byte {
	if !mk.acc {
		return out
	}
	out = leb128.AppendUint(append(out, 0x23), uint64(m.shiftGlobal)) // global.get $shift
	return leb128.AppendUint(append(out, 0x21), mk.local[tempShift])  // local.set $shift
}

// leaveMarks appends, where a function leaves, the or of its marks into
// the dirty global.
func (m *rewriter) leaveMarks(out []byte, mk marks) []byte {
	if !mk.acc {
		return out
	}
	out = leb128.AppendUint(append(out, 0x23), uint64(m.dirtyGlobal))  // global.get $dirty
	out = leb128.AppendUint(append(out, 0x20), mk.local[tempAcc])      // local.get $acc
	out = append(out, 0x84)                                            // i64.or
	return leb128.AppendUint(append(out, 0x24), uint64(m.dirtyGlobal)) // global.set $dirty
}
