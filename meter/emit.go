package meter

import (
	"fmt"

	"github.com/flowhost/flowhost/internal/leb128"
)

// emit writes the instrumented module.
func (m *rewriter) emit() []byte {
	out := make([]byte, 0, len(m.in)+len(m.in)/3+256)
	out = append(out, m.in[:8]...)

	// Sections the instrumentation needs that the module may lack.
	missing := map[byte]bool{secType: true, secImport: true, secGlobal: true, secExport: true}
	for _, s := range m.sections {
		delete(missing, s.id)
	}
	flush := func(before int) {
		for _, id := range []byte{secType, secImport, secGlobal, secExport} {
			if missing[id] && order[id] < before {
				delete(missing, id)
				out = appendSection(out, id, m.rewriteSection(id, newReader(nil, 0)))
			}
		}
	}
	for _, s := range m.sections {
		if s.id != secCustom {
			flush(order[s.id])
		}
		var p []byte
		within(sectionName(s.id)+" section", func() {
			p = m.rewriteSection(s.id, m.payload(s))
		})
		if p != nil {
			out = appendSection(out, s.id, p)
		}
	}
	flush(1 << 30)
	return out
}

func appendSection(out []byte, id byte, payload []byte) []byte {
	out = append(out, id)
	out = leb128.AppendUint(out, uint64(len(payload)))
	return append(out, payload...)
}

// rewriteSection returns the new payload of a section, or nil to drop it.
// An empty reader stands for a section the module did not have.
func (m *rewriter) rewriteSection(id byte, r *reader) []byte {
	var out []byte
	count := func() uint32 {
		if r.eof() && len(r.b) == 0 {
			return 0
		}
		return r.u32()
	}
	switch id {
	case secType:
		n := count()
		out = leb128.AppendUint(out, uint64(n)+uint64(len(m.newTypes)))
		out = append(out, r.b[r.pos:]...)
		r.pos = len(r.b)
		for _, t := range m.newTypes {
			out = append(out, t...)
		}
	case secImport:
		n := count()
		out = leb128.AppendUint(out, uint64(n)+uint64(m.added))
		out = append(out, r.b[r.pos:]...)
		r.pos = len(r.b)
		for _, name := range []string{FuncOutOfFuel, FuncTooDeep} {
			out = appendName(out, ImportModule)
			out = appendName(out, name)
			out = leb128.AppendUint(append(out, 0x00), uint64(m.voidType))
		}
		if m.tableGrows {
			out = appendName(out, ImportModule)
			out = appendName(out, FuncTableGrow)
			out = leb128.AppendUint(append(out, 0x00), uint64(m.tableGrowTy))
		}
	case secTable:
		n := r.u32()
		out = leb128.AppendUint(out, uint64(n))
		for i := uint32(0); i < n; i++ {
			start := r.pos
			init := r.peek() == 0x40
			if init {
				r.byte()
				if c := r.byte(); c != 0x00 {
					r.malformed("table %d: invalid table encoding %#x", i, c)
				}
			}
			r.valType()
			r.limits()
			out = append(out, r.b[start:r.pos]...)
			if init {
				out = m.constExpr(r, out)
			}
		}
	case secGlobal:
		n := count()
		added := uint64(2)
		if m.tracking() {
			added = 4
		}
		out = leb128.AppendUint(out, uint64(n)+added)
		for i := uint32(0); i < n; i++ {
			start := r.pos
			r.valType()
			r.byte()
			out = append(out, r.b[start:r.pos]...)
			out = m.constExpr(r, out)
		}
		out = leb128.AppendInt(append(out, 0x7e, 0x01, 0x42), InitialFuel) // mut i64, i64.const
		out = append(out, 0x0b)
		out = leb128.AppendInt(append(out, 0x7f, 0x01, 0x41), int64(InitialDepth)) // mut i32, i32.const
		out = append(out, 0x0b)
		if m.tracking() {
			out = append(out, 0x7e, 0x01, 0x42, 0x00, 0x0b) // $dirty: mut i64, i64.const 0
			out = append(out, 0x7f, 0x01, 0x41, 0x00, 0x0b) // $shift: mut i32, i32.const 0
		}
	case secExport:
		n := count()
		added := 2 + uint64(len(m.mutable))
		if m.tracking() {
			added += 2
		}
		out = leb128.AppendUint(out, uint64(n)+added)
		for i := uint32(0); i < n; i++ {
			name := r.name()
			kind := r.byte()
			idx := r.u32()
			if kind == 0 {
				idx = m.fn(r, idx)
			}
			out = appendName(out, name)
			out = leb128.AppendUint(append(out, kind), uint64(idx))
		}
		out = leb128.AppendUint(append(appendName(out, GlobalFuel), 0x03), uint64(m.fuelGlobal))
		out = leb128.AppendUint(append(appendName(out, GlobalDepth), 0x03), uint64(m.depthGlobal))
		if m.tracking() {
			out = leb128.AppendUint(append(appendName(out, GlobalDirty), 0x03), uint64(m.dirtyGlobal))
			out = leb128.AppendUint(append(appendName(out, GlobalDirtyShift), 0x03), uint64(m.shiftGlobal))
		}
		for _, g := range m.mutable {
			out = leb128.AppendUint(append(appendName(out, fmt.Sprintf("%s%d", GlobalPrefix, g)), 0x03), uint64(g))
		}
	case secStart:
		out = leb128.AppendUint(out, uint64(m.fn(r, r.u32())))
	case secElement:
		out = m.rewriteElements(r)
	case secCode:
		out = m.rewriteCode(r)
	case secCustom:
		out = m.rewriteCustom(r)
	default:
		return r.b
	}
	if id != secCustom && !r.eof() {
		r.malformed("%d unexpected bytes at the end of the section", len(r.b)-r.pos)
	}
	return out
}

// constExpr copies a constant expression, renumbering ref.func.
func (m *rewriter) constExpr(r *reader, out []byte) []byte {
	for {
		start := r.pos
		in := decodeInstr(r)
		switch in.kind {
		case kRefFunc:
			m.noteRef(in.fn)
			out = leb128.AppendUint(append(out, 0xd2), uint64(m.fn(r, in.fn)))
		case kEnd:
			return append(out, r.b[start:r.pos]...)
		case kPlain:
			out = append(out, r.b[start:r.pos]...)
		default:
			r.pos = start
			r.malformed("instruction %#x in a constant expression", in.op)
		}
	}
}

func (m *rewriter) rewriteElements(r *reader) []byte {
	n := r.u32()
	out := leb128.AppendUint(nil, uint64(n))
	for i := uint32(0); i < n; i++ {
		within(fmt.Sprintf("segment %d", i), func() {
			flags := r.u32()
			if flags > 7 {
				r.malformed("invalid element segment flags %d", flags)
			}
			out = leb128.AppendUint(out, uint64(flags))
			if flags&3 == 2 { // active, explicit table
				out = leb128.AppendUint(out, uint64(r.u32()))
			}
			if flags&1 == 0 { // active: offset
				out = m.constExpr(r, out)
			}
			if flags&3 != 0 { // elemkind or reftype
				start := r.pos
				if flags&4 == 0 {
					if c := r.byte(); c != 0x00 {
						r.malformed("invalid element kind %#x", c)
					}
				} else {
					r.valType()
				}
				out = append(out, r.b[start:r.pos]...)
			}
			k := r.u32()
			out = leb128.AppendUint(out, uint64(k))
			for j := uint32(0); j < k; j++ {
				if flags&4 == 0 {
					f := r.u32()
					m.noteRef(f)
					out = leb128.AppendUint(out, uint64(m.fn(r, f)))
				} else {
					out = m.constExpr(r, out)
				}
			}
		})
	}
	return out
}

func (m *rewriter) rewriteCode(r *reader) []byte {
	n := r.u32()
	out := leb128.AppendUint(make([]byte, 0, len(r.b)+len(r.b)/3), uint64(n))
	var body []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		base := r.off()
		in := r.bytes(uint64(size))
		within(fmt.Sprintf("function %d", m.nImpFunc+i), func() {
			body = m.rewriteBody(body[:0], newReader(in, base), int(i))
		})
		out = leb128.AppendUint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out
}

// rewriteBody instruments the body of defined function i.
func (m *rewriter) rewriteBody(out []byte, r *reader, i int) []byte {
	p := m.plans[i]
	nDecl := r.u32()
	declStart := r.pos
	nLocals := uint64(m.types[m.funcTypes[i]].nParams)
	for j := uint32(0); j < nDecl; j++ {
		nLocals += uint64(r.u32())
		r.valType()
	}
	saved := int64(-1) // local holding the depth during the body, if the body catches
	var added []byte   // local declarations added
	var nAdded uint32
	if p.catches {
		saved = int64(nLocals)
		added, nAdded = append(added, 0x01, 0x7f), 1 // (local $saved i32)
	}
	track := m.tracking()
	var mk marks // where the dirty marks go, and the temporaries
	needs := 0
	if p.bulk {
		needs = needLen // bulk operations are charged by length
	}
	if p.stdio {
		needs |= needAddr | needI32 // the guards of fd_close and fd_renumber
	}
	if track && p.needs != 0 {
		needs |= p.needs
		if !m.throws {
			needs |= needAcc | needShift
			mk.acc = true
		}
	}
	if needs != 0 {
		decls, n, local := temps(needs, nLocals+uint64(nAdded))
		added, nAdded, mk.local = append(added, decls...), nAdded+n, local
	}
	if nAdded == 0 {
		out = append(out, r.b[:r.pos]...)
	} else {
		if nLocals+uint64(nAdded) > 1<<32-1 {
			unsupported(r.off(), "too many locals to add %d", nAdded)
		}
		out = leb128.AppendUint(out, uint64(nDecl)+uint64(len(added)/2))
		out = append(out, r.b[declStart:r.pos]...)
		out = append(out, added...)
	}

	out = m.depthEnter(out, p.weight)
	if saved >= 0 {
		out = leb128.AppendUint(append(out, 0x23), uint64(m.depthGlobal)) // global.get
		out = leb128.AppendUint(append(out, 0x21), uint64(saved))         // local.set $saved
	}
	out = m.fuelCheck(out, p.costs[0])
	out = m.enterMarks(out, mk)
	out = append(append(out, 0x02), m.wrapBT[i]...) // block (type of the results)

	// restore[k] tells whether the k-th open label (in the original body) is
	// the target of a catch clause: the depth is restored after its end.
	var restore []bool
	loop := 1
	for {
		start := r.pos
		in := decodeInstr(r)
		switch in.kind {
		case kPlain:
			out = append(out, r.b[start:r.pos]...)
		case kBlock:
			restore = append(restore, false)
			out = append(out, r.b[start:r.pos]...)
		case kTryTable:
			for _, l := range in.catches {
				if int(l) < len(restore) {
					restore[len(restore)-1-int(l)] = true
				}
			}
			restore = append(restore, false)
			out = append(out, r.b[start:r.pos]...)
		case kLoop:
			restore = append(restore, false)
			out = append(out, r.b[start:r.pos]...)
			out = m.fuelCheck(out, p.costs[loop])
			if p.catchLoops[loop] {
				out = m.depthRestore(out, saved)
			}
			loop++
		case kEnd:
			if len(restore) == 0 {
				// end of the wrapper block, depth++, end of the function
				out = append(out, 0x0b)
				out = m.leaveMarks(out, mk)
				return append(m.depthLeave(out, saved, p.weight), 0x0b)
			}
			out = append(out, r.b[start:r.pos]...)
			if restore[len(restore)-1] {
				out = m.depthRestore(out, saved)
			}
			restore = restore[:len(restore)-1]
		case kStore:
			if track {
				out = m.markStore(out, r.b[start:r.pos], in, mk)
			} else {
				out = append(out, r.b[start:r.pos]...)
			}
		case kBulk:
			out = m.bulkCharge(out, in.memoryBulk(), mk.local[tempLen])
			if track && in.memoryBulk() {
				out = m.markBulk(out, r.b[start:r.pos], mk)
			} else {
				out = append(out, r.b[start:r.pos]...)
			}
		case kAtomicWrite:
			if track {
				out = m.markAll(out)
			}
			out = append(out, r.b[start:r.pos]...)
		case kCall:
			if track && m.writes(in.fn) {
				out = m.markAll(out)
			}
			if m.stdio[in.fn] != "" {
				out = m.stdioGuard(out, in.fn, mk)
			} else {
				out = leb128.AppendUint(append(out, 0x10), uint64(m.fn(r, in.fn)))
			}
		case kRefFunc:
			out = leb128.AppendUint(append(out, 0xd2), uint64(m.fn(r, in.fn)))
		case kReturnCall:
			if track && m.writes(in.fn) {
				out = m.markAll(out)
			}
			if m.stdio[in.fn] != "" {
				// a guarded call, then a return through the wrapper block
				out = m.stdioGuard(out, in.fn, mk)
				out = leb128.AppendUint(append(out, 0x0c), uint64(len(restore)))
				continue
			}
			out = m.leaveMarks(out, mk)
			out = m.depthLeave(out, saved, p.weight)
			out = leb128.AppendUint(append(out, 0x12), uint64(m.fn(r, in.fn)))
		case kReturnCallOther:
			out = m.leaveMarks(out, mk)
			out = m.depthLeave(out, saved, p.weight)
			out = append(out, r.b[start:r.pos]...)
		case kReturn:
			// br to the wrapper block, whose label index is the number of
			// labels open in the body
			out = leb128.AppendUint(append(out, 0x0c), uint64(len(restore)))
		case kTableGrow:
			// [ref delta] table.size t; i32.const t; call table_grow: [ref delta']
			out = leb128.AppendUint(append(out, 0xfc, 16), uint64(in.table))
			out = leb128.AppendInt(append(out, 0x41), int64(int32(in.table)))
			out = leb128.AppendUint(append(out, 0x10), uint64(m.tableGrow))
			out = append(out, r.b[start:r.pos]...)
		}
	}
}
