package meter

import "github.com/flowhost/flowhost/internal/leb128"

// rewriteCustom returns a custom section's new payload: the "name" section
// has its function indices renumbered (and its label names, whose indices
// the added blocks would shift, dropped); every other custom section is
// copied unchanged. A "name" section that cannot be decoded is dropped:
// it is debugging information, and a stale one would mislead.
func (m *rewriter) rewriteCustom(r *reader) []byte {
	if r.name() != "name" {
		return r.b
	}
	out, ok := m.rewriteNames(r)
	if !ok {
		return nil
	}
	return out
}

// Subsections of the "name" section keyed by function index.
const (
	namesFunctions = 1 // name map
	namesLocals    = 2 // indirect name map
	namesLabels    = 3 // indirect name map, label indices change: dropped
)

func (m *rewriter) rewriteNames(r *reader) (out []byte, ok bool) {
	defer func() {
		if e := recover(); e != nil {
			if _, isDecode := e.(*decodeError); !isDecode {
				panic(e)
			}
			out, ok = nil, false
		}
	}()
	out = append(out, r.b[:r.pos]...) // the section name
	for !r.eof() {
		id := r.byte()
		size := r.u32()
		sub := newReader(r.bytes(uint64(size)), r.off()-int(size))
		var p []byte
		switch id {
		case namesFunctions:
			p = m.renumberMap(sub, false)
		case namesLocals:
			p = m.renumberMap(sub, true)
		case namesLabels:
			continue
		default:
			p = sub.b
		}
		out = append(out, id)
		out = leb128.AppendUint(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out, true
}

// renumberMap renumbers the function indices of a name map, or of an
// indirect name map whose inner maps are copied unchanged.
func (m *rewriter) renumberMap(r *reader, indirect bool) []byte {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)-r.pos) { // each entry takes 2 bytes or more
		r.malformed("name map of %d entries in %d bytes", n, len(r.b)-r.pos)
	}
	out := leb128.AppendUint(nil, uint64(n))
	for i := uint32(0); i < n; i++ {
		out = leb128.AppendUint(out, uint64(m.fn(r, r.u32())))
		start := r.pos
		if indirect {
			k := r.u32()
			for j := uint32(0); j < k; j++ {
				r.u32()
				r.name()
			}
		} else {
			r.name()
		}
		out = append(out, r.b[start:r.pos]...)
	}
	if !r.eof() {
		r.malformed("trailing bytes in name subsection")
	}
	return out
}
