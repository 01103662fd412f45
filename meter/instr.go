package meter

// instrKind classifies an instruction by what the rewriter does with it.
type instrKind uint8

const (
	kPlain           instrKind = iota // copied as is
	kBlock                            // block, if: opens a label
	kLoop                             // loop: opens a label and a fuel region
	kTryTable                         // try_table: opens a label
	kEnd                              // end: closes a label, or the function
	kCall                             // call f: renumbered
	kReturnCall                       // return_call f: renumbered, depth restored before it
	kRefFunc                          // ref.func f: renumbered
	kReturn                           // return: becomes br to the wrapper block
	kReturnCallOther                  // return_call_indirect, return_call_ref: depth restored before it
	kTableGrow                        // table.grow t: checked by the host before it
	kStore                            // a store to linear memory: marks what it wrote
	kBulk                             // memory.init/copy/fill, table.init/copy/fill: charged by length, marks what it wrote
	kAtomicWrite                      // an atomic store or read-modify-write: marks all memory
)

// Value types of the values a store takes.
const (
	tI32  byte = 0x7f
	tI64  byte = 0x7e
	tF32  byte = 0x7d
	tF64  byte = 0x7c
	tV128 byte = 0x7b
)

// instr is one decoded instruction: its kind, the function index it names
// (kCall, kReturnCall, kRefFunc), the table it grows (kTableGrow) and the
// labels of a try_table's catch clauses.
type instr struct {
	kind    instrKind
	op      byte
	fn      uint32
	table   uint32
	catches []uint32
	// segments is set for an instruction that changes state outside
	// linear memory and globals: a table's elements or size, or which
	// data and element segments are dropped.
	segments bool
	// index is the local (kLocal), the global (kGlobal) or the deepest
	// label (kBranch) the instruction names: index spaces the
	// instrumentation extends, which the original code may not reach past.
	index uint32
	ref   refKind
	// A kStore's value type and memory offset; a kBulk's 0xfc sub-opcode.
	valType byte
	offset  uint64
	sub     uint32
}

// refKind tells which index space instr.index is in.
type refKind uint8

const (
	refNone refKind = iota
	refLocal
	refGlobal
	refLabel
)

// decodeInstr reads one instruction at r's position. It knows the
// immediates of the MVP, sign-extension, non-trapping float-to-int, bulk
// memory, reference types, multi-value, SIMD (with relaxed SIMD), threads,
// tail calls, typed function references, exception handling (try_table,
// throw, throw_ref), memory64 and multi-memory. It refuses the legacy
// exception handling instructions and the GC proposal.
func decodeInstr(r *reader) instr {
	at := r.off()
	op := r.byte()
	in := instr{op: op}
	switch op {
	case 0x00, 0x01, 0x05, // unreachable nop else
		0x0a,       // throw_ref
		0x1a, 0x1b, // drop select
		0xd1, 0xd3, 0xd4: // ref.is_null ref.eq ref.as_non_null
	case 0x02, 0x04: // block if
		r.blockType()
		in.kind = kBlock
	case 0x03: // loop
		r.blockType()
		in.kind = kLoop
	case 0x06, 0x07, 0x09, 0x18, 0x19:
		unsupported(at, "legacy exception handling instruction %#x (try/catch/rethrow/delegate); translate the module to try_table (exnref)", op)
	case 0x08: // throw tag
		r.u32()
	case 0x0b:
		in.kind = kEnd
	case 0x0c, 0x0d, 0xd5, 0xd6: // br br_if br_on_null br_on_non_null
		in.ref, in.index = refLabel, r.u32()
	case 0x0e: // br_table
		n := r.u32()
		in.ref = refLabel
		for i := uint32(0); i <= n; i++ {
			in.index = max(in.index, r.u32())
		}
	case 0x0f:
		in.kind = kReturn
	case 0x10:
		in.kind, in.fn = kCall, r.u32()
	case 0x11: // call_indirect type table
		r.u32()
		r.u32()
	case 0x12:
		in.kind, in.fn = kReturnCall, r.u32()
	case 0x13: // return_call_indirect type table
		r.u32()
		r.u32()
		in.kind = kReturnCallOther
	case 0x14: // call_ref type
		r.u32()
	case 0x15: // return_call_ref type
		r.u32()
		in.kind = kReturnCallOther
	case 0x1c: // select t*
		n := r.u32()
		for i := uint32(0); i < n; i++ {
			r.valType()
		}
	case 0x1f: // try_table bt catch*
		r.blockType()
		n := r.u32()
		for i := uint32(0); i < n; i++ {
			switch k := r.byte(); k {
			case 0x00, 0x01: // catch tag label, catch_ref tag label
				r.u32()
			case 0x02, 0x03: // catch_all label, catch_all_ref label
			default:
				r.malformed("invalid try_table catch kind %#x", k)
			}
			in.catches = append(in.catches, r.u32())
		}
		in.kind = kTryTable
	case 0x20, 0x21, 0x22: // local.get local.set local.tee
		in.ref, in.index = refLocal, r.u32()
	case 0x23, 0x24: // global.get global.set
		in.ref, in.index = refGlobal, r.u32()
	case 0x25, 0x26: // table.get table.set
		r.u32()
		in.segments = op == 0x26
	case 0x3f, 0x40: // memory.size memory.grow (memory index)
		r.u32()
	case 0x41:
		r.sleb(32)
	case 0x42:
		r.sleb(64)
	case 0x43:
		r.bytes(4)
	case 0x44:
		r.bytes(8)
	case 0xd0: // ref.null heaptype
		r.sleb(33)
	case 0xd2:
		in.kind, in.fn = kRefFunc, r.u32()
	case 0xfb:
		unsupported(at, "GC instruction (0xfb prefix)")
	case 0xfc:
		sub, idx := decodeMisc(r, at)
		switch sub {
		case 15:
			in.kind, in.table = kTableGrow, idx
		case 8, 10, 11, 12, 14, 17: // memory.init, memory.copy, memory.fill, table.init, table.copy, table.fill
			in.kind, in.sub = kBulk, sub
		}
		// data.drop, table.init, elem.drop, table.copy, table.grow, table.fill
		in.segments = sub == 9 || (sub >= 12 && sub <= 15) || sub == 17
	case 0xfd:
		if store, offset := decodeSIMD(r, at); store {
			in.kind, in.valType, in.offset = kStore, tV128, offset
		}
	case 0xfe:
		if decodeAtomic(r, at) {
			in.kind = kAtomicWrite
		}
	default:
		switch {
		case op >= 0x36 && op <= 0x3e: // stores
			in.kind, in.offset = kStore, r.memarg()
			in.valType = [...]byte{tI32, tI64, tF32, tF64, tI32, tI32, tI64, tI64, tI64}[op-0x36]
		case op >= 0x28 && op <= 0x35: // loads
			r.memarg()
		case op >= 0x45 && op <= 0xc4: // numeric, sign extension
		default:
			unsupported(at, "unknown opcode %#x", op)
		}
	}
	return in
}

// decodeMisc reads an instruction of the 0xfc prefix after the prefix:
// it returns the sub-opcode and the instruction's first immediate.
func decodeMisc(r *reader, at int) (sub, imm uint32) {
	switch sub = r.u32(); {
	case sub <= 7: // trunc_sat
	case sub == 8: // memory.init data mem
		imm = r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
		// data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
		imm = r.u32()
	case sub == 10, sub == 12, sub == 14: // memory.copy, table.init, table.copy
		imm = r.u32()
		r.u32()
	default:
		unsupported(at, "unknown instruction 0xfc %d", sub)
	}
	return sub, imm
}

// decodeSIMD reads an instruction of the 0xfd prefix after the prefix;
// store reports v128.store and the store lane instructions, whose memory
// offset is offset.
func decodeSIMD(r *reader, at int) (store bool, offset uint64) {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
		offset = r.memarg()
		store = sub == 11
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		offset = r.memarg()
		r.byte()
		store = sub >= 88
	case sub <= 0x113: // the rest, relaxed SIMD included, has no immediate
	default:
		unsupported(at, "unknown instruction 0xfd %d", sub)
	}
	return store, offset
}

// decodeAtomic reads an instruction of the 0xfe prefix after the prefix,
// and reports whether it writes memory (a store, a read-modify-write or a
// compare-exchange).
func decodeAtomic(r *reader, at int) (writes bool) {
	switch sub := r.u32(); {
	case sub == 3: // atomic.fence
		if c := r.byte(); c != 0 {
			r.malformed("atomic.fence: expected 0x00, got %#x", c)
		}
	case sub <= 2, sub >= 0x10 && sub <= 0x4e:
		r.memarg()
		writes = sub >= 0x17
	default:
		unsupported(at, "unknown instruction 0xfe %d", sub)
	}
	return writes
}
