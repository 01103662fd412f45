package abi

import (
	"errors"
	"fmt"

	"github.com/flowhost/flowhost/internal/leb128"
)

// Import kinds, as encoded in the WebAssembly binary format.
const (
	KindFunc   byte = 0
	KindTable  byte = 1
	KindMemory byte = 2
	KindGlobal byte = 3
	KindTag    byte = 4
)

// KindName returns the text name of an import or export kind.
func KindName(k byte) string {
	switch k {
	case KindFunc:
		return "func"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	case KindTag:
		return "tag"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// FuncType is a function signature: value types as their binary codes
// (0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64, 0x7b v128, 0x70 funcref, 0x6f externref).
type FuncType struct {
	Params  []byte
	Results []byte
}

// String renders the signature in WAT-like text, e.g. "(i64, i32) -> i64".
func (t FuncType) String() string {
	return "(" + valTypes(t.Params) + ") -> " + resultTypes(t.Results)
}

func resultTypes(r []byte) string {
	if len(r) == 1 {
		return valTypeName(r[0])
	}
	return "(" + valTypes(r) + ")"
}

func valTypes(ts []byte) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += valTypeName(t)
	}
	return s
}

func valTypeName(t byte) string {
	switch t {
	case 0x7f:
		return "i32"
	case 0x7e:
		return "i64"
	case 0x7d:
		return "f32"
	case 0x7c:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	}
	return fmt.Sprintf("0x%02x", t)
}

// Import is one entry of a module's import section.
type Import struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	Kind   byte   `json:"-"`
	// Type is set for function imports.
	Type *FuncType `json:"-"`
}

// Export is one entry of a module's export section.
type Export struct {
	Name  string
	Kind  byte
	Index uint32
}

// CustomSection is a custom section's name and payload.
type CustomSection struct {
	Name string
	Data []byte
}

// Limits are the declared size of a memory (in 64 KiB pages) or of a
// table (in elements).
type Limits struct {
	Min    uint32
	Max    uint32 // valid when HasMax
	HasMax bool
}

// PageSize is the size of a WebAssembly memory page, in bytes.
const PageSize = 64 << 10

// DataSegment is an active data segment: bytes copied into a memory at
// instantiation.
type DataSegment struct {
	Memory uint32
	// Offset is where the bytes go, when ConstOffset: the offset
	// expression is a plain i32.const. Other expressions (global.get,
	// extended constants) are left to the runtime.
	Offset      uint64
	ConstOffset bool
	Len         uint32
}

// End is the offset just past the segment's bytes (valid when ConstOffset).
func (d DataSegment) End() uint64 { return d.Offset + uint64(d.Len) }

// Module is the static shape of a WebAssembly module, read without
// compiling or running it.
type Module struct {
	Types   []FuncType
	Imports []Import
	Exports []Export
	Custom  []CustomSection
	// Memories and Tables are the memories and tables the module defines
	// (imported ones are in Imports).
	Memories []Limits
	Tables   []Limits
	// Data are the module's active data segments, in order.
	Data []DataSegment
	// HasStart reports a start function, which instantiation runs.
	HasStart bool
	funcs    []uint32 // type index of each defined function
	nImpFunc int
}

// ExportedFunc returns the signature of the exported function name.
func (m *Module) ExportedFunc(name string) (FuncType, bool) {
	for _, e := range m.Exports {
		if e.Name != name || e.Kind != KindFunc {
			continue
		}
		idx := int(e.Index)
		var ti uint32
		if idx < m.nImpFunc {
			n := 0
			for _, im := range m.Imports {
				if im.Kind == KindFunc {
					if n == idx {
						return *im.Type, true
					}
					n++
				}
			}
			return FuncType{}, false
		}
		idx -= m.nImpFunc
		if idx >= len(m.funcs) {
			return FuncType{}, false
		}
		ti = m.funcs[idx]
		if int(ti) >= len(m.Types) {
			return FuncType{}, false
		}
		return m.Types[ti], true
	}
	return FuncType{}, false
}

// HasExport reports whether the module exports anything called name.
func (m *Module) HasExport(name string) bool {
	for _, e := range m.Exports {
		if e.Name == name {
			return true
		}
	}
	return false
}

// Section returns the payload of the first custom section called name.
func (m *Module) Section(name string) ([]byte, bool) {
	for _, c := range m.Custom {
		if c.Name == name {
			return c.Data, true
		}
	}
	return nil, false
}

// ErrNotWasm is returned for input that does not start with the
// WebAssembly magic number and version 1.
var ErrNotWasm = errors.New("not a WebAssembly module (bad magic number or version)")

var wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// ParseModule walks the sections of a binary module and decodes the parts
// flowhost needs (types, imports, functions, tables, memories, exports,
// data segments, custom sections). It never compiles or runs guest code.
func ParseModule(b []byte) (*Module, error) {
	if len(b) < 8 || string(b[:8]) != string(wasmHeader) {
		return nil, ErrNotWasm
	}
	m := &Module{}
	r := &reader{b: b, pos: 8}
	for !r.eof() {
		start := r.pos
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, fmt.Errorf("section header at offset %d: %w", start, r.err)
		}
		if uint64(r.pos)+uint64(size) > uint64(len(b)) {
			return nil, fmt.Errorf("section %d at offset %d: size %d runs past the end of the module (%d bytes)", id, start, size, len(b))
		}
		body := &reader{b: b[:r.pos+int(size)], pos: r.pos}
		r.pos += int(size)
		var err error
		switch id {
		case 0:
			name := body.name()
			if body.err == nil {
				m.Custom = append(m.Custom, CustomSection{Name: name, Data: body.b[body.pos:]})
			}
			err = body.err
		case 1:
			err = m.parseTypes(body)
		case 2:
			err = m.parseImports(body)
		case 3:
			n := body.u32()
			for i := uint32(0); i < n && body.err == nil; i++ {
				m.funcs = append(m.funcs, body.u32())
			}
			err = body.err
		case 4:
			err = m.parseTables(body)
		case 5:
			n := body.u32()
			for i := uint32(0); i < n && body.err == nil; i++ {
				m.Memories = append(m.Memories, body.limits())
			}
			err = body.err
		case 8:
			body.u32()
			m.HasStart, err = body.err == nil, body.err
		case 11:
			err = m.parseData(body)
		case 7:
			n := body.u32()
			for i := uint32(0); i < n && body.err == nil; i++ {
				e := Export{Name: body.name(), Kind: body.byte(), Index: body.u32()}
				m.Exports = append(m.Exports, e)
			}
			err = body.err
		}
		if err != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
	}
	return m, nil
}

func (m *Module) parseTypes(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		form := r.byte()
		if form != 0x60 {
			if r.err == nil {
				// GC proposal types (rec groups etc.) are not supported by the host.
				return fmt.Errorf("type %d: unsupported type form 0x%02x", i, form)
			}
			break
		}
		var t FuncType
		t.Params = r.valtypes()
		t.Results = r.valtypes()
		m.Types = append(m.Types, t)
	}
	return r.err
}

func (m *Module) parseImports(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		im := Import{Module: r.name(), Name: r.name(), Kind: r.byte()}
		switch im.Kind {
		case KindFunc:
			ti := r.u32()
			if r.err == nil {
				if int(ti) >= len(m.Types) {
					return fmt.Errorf("import %s.%s: type index %d out of range", im.Module, im.Name, ti)
				}
				t := m.Types[ti]
				im.Type = &t
			}
			m.nImpFunc++
		case KindTable:
			r.byte() // reftype
			r.limits()
		case KindMemory:
			r.limits()
		case KindGlobal:
			r.byte() // valtype
			r.byte() // mutability
		case KindTag:
			r.byte()
			r.u32()
		default:
			if r.err == nil {
				return fmt.Errorf("import %s.%s: unknown kind %d", im.Module, im.Name, im.Kind)
			}
		}
		m.Imports = append(m.Imports, im)
	}
	return r.err
}

func (m *Module) parseTables(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		init := false
		if r.peek() == 0x40 { // a table with an initializer: 0x40 0x00 tabletype expr
			r.byte()
			if c := r.byte(); c != 0x00 && r.err == nil {
				return fmt.Errorf("table %d: invalid encoding 0x40 0x%02x", i, c)
			}
			init = true
		}
		if t := r.byte(); t == 0x63 || t == 0x64 { // (ref null? heaptype)
			r.s64()
		}
		m.Tables = append(m.Tables, r.limits())
		if init {
			r.constExpr()
		}
	}
	return r.err
}

func (m *Module) parseData(r *reader) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		var d DataSegment
		flags := r.u32()
		switch flags {
		case 0, 2:
			if flags == 2 {
				d.Memory = r.u32()
			}
			d.Offset, d.ConstOffset = r.constExpr()
			d.Len = r.u32()
			r.bytes(d.Len)
			if r.err == nil {
				m.Data = append(m.Data, d)
			}
		case 1: // passive
			r.bytes(r.u32())
		default:
			if r.err == nil {
				return fmt.Errorf("data segment %d: invalid flags %d", i, flags)
			}
		}
	}
	return r.err
}

var (
	errTruncated   = errors.New("truncated")
	errLEBTooLong  = errors.New("malformed LEB128 integer")
	errLEBOverflow = errors.New("LEB128 integer overflows u32") // only u32 can
)

type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n, err := leb128.Uint32(r.b[r.pos:])
	r.leb(n, err)
	return v
}

func (r *reader) bytes(n uint32) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(r.pos)+uint64(n) > uint64(len(r.b)) {
		r.err = errTruncated
		return nil
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

func (r *reader) valtypes() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)-r.pos) {
		r.err = errTruncated
		return nil
	}
	return append([]byte(nil), r.bytes(n)...)
}

func (r *reader) peek() byte {
	if r.err != nil || r.pos >= len(r.b) {
		return 0
	}
	return r.b[r.pos]
}

// s64 reads a signed LEB128 integer of up to 64 bits.
func (r *reader) s64() int64 {
	if r.err != nil {
		return 0
	}
	v, n, err := leb128.Int64(r.b[r.pos:])
	r.leb(n, err)
	return v
}

// leb moves past the n bytes of a LEB128 integer read and records its
// error, if any.
func (r *reader) leb(n int, err error) {
	r.pos += n
	switch err {
	case nil:
	case leb128.ErrTruncated:
		r.err = errTruncated
	case leb128.ErrOverflow:
		r.err = errLEBOverflow
	default:
		r.err = errLEBTooLong
	}
}

func (r *reader) limits() Limits {
	var l Limits
	flags := r.byte()
	l.Min = r.u32()
	if flags&1 != 0 {
		l.Max, l.HasMax = r.u32(), true
	}
	return l
}

// constExpr reads a constant expression up to its end. It returns the
// value when the expression is a plain i32.const, as an unsigned offset.
func (r *reader) constExpr() (v uint64, isConst bool) {
	for n := 0; r.err == nil; n++ {
		switch op := r.byte(); op {
		case 0x0b: // end
			if isConst && n == 1 {
				return v, true
			}
			return 0, false
		case 0x41: // i32.const
			v, isConst = uint64(uint32(int32(r.s64()))), n == 0
		case 0x42: // i64.const
			r.s64()
		case 0x43: // f32.const
			r.bytes(4)
		case 0x44: // f64.const
			r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null heaptype
			r.s64()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constants: add, sub, mul
		case 0xfd: // v128.const
			if sub := r.u32(); sub != 12 && r.err == nil {
				r.err = fmt.Errorf("instruction 0xfd %d in a constant expression", sub)
			}
			r.bytes(16)
		default:
			if r.err == nil {
				r.err = fmt.Errorf("instruction 0x%02x in a constant expression", op)
			}
		}
	}
	return 0, false
}

// AppendCustomSection returns a copy of the module with a custom section
// called name holding data appended at its end. An existing section of the
// same name is removed first, so re-embedding a manifest replaces it.
func AppendCustomSection(wasm []byte, name string, data []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:8]) != string(wasmHeader) {
		return nil, ErrNotWasm
	}
	out := append([]byte(nil), wasm[:8]...)
	r := &reader{b: wasm, pos: 8}
	for !r.eof() {
		start := r.pos
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.pos)+uint64(size) > uint64(len(wasm)) {
			return nil, fmt.Errorf("section at offset %d: malformed", start)
		}
		end := r.pos + int(size)
		if id == 0 {
			body := &reader{b: wasm[:end], pos: r.pos}
			if body.name() == name && body.err == nil {
				r.pos = end
				continue
			}
		}
		out = append(out, wasm[start:end]...)
		r.pos = end
	}
	var payload []byte
	payload = leb128.AppendUint(payload, uint64(len(name)))
	payload = append(payload, name...)
	payload = append(payload, data...)
	out = append(out, 0)
	out = leb128.AppendUint(out, uint64(len(payload)))
	return append(out, payload...), nil
}
