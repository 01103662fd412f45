// Package meter rewrites a WebAssembly binary module so that it meters
// itself: deterministic fuel, which also makes wall-clock timeouts cheap
// (the host checks the clock when it refills), and a bound on the call depth.
//
// Instrument adds two function imports from ImportModule (three for a
// module that grows tables) and two exported mutable globals, and
// rewrites every function body:
//
//   - Depth. At entry the i32 global GlobalDepth is decremented by the
//     function's weight (1, or 1 more for each KiB of its parameters and
//     locals: a frame's size, not only the count of frames, is bounded); if it is
//     then 0 or less, the imported FuncTooDeep is called (the host traps).
//     The original body is wrapped in a block of the function's result
//     type, `return` becomes a branch to that block, and after the block the
//     global is incremented again, so every way out of the function
//     (falling off the end, return, br/br_if/br_table to the function label)
//     restores it. return_call, return_call_indirect and return_call_ref
//     restore it just before they leave. Frames unwound by an exception
//     do not restore it, so a function with a try_table saves the depth in
//     an added local at entry and resets the global from it where a catch
//     clause lands (after the end of the target block, or at the head of the
//     target loop) and when it leaves. Traps do not restore it either: the
//     host discards trapped instances or resets the globals before each
//     call.
//
//   - Fuel. At function entry and at the head of every loop the i64 global
//     GlobalFuel is decreased by a cost computed at instrumentation time; if
//     the result is negative, the imported FuncOutOfFuel is called. The host
//     either refills the global and returns, or panics so the call traps.
//     The check is exactly `global.get; i64.const c; i64.sub; global.set;
//     global.get; i64.const 0; i64.lt_s; if; call; end` (WebAssembly has no
//     global.tee; wazero's compiler forwards the stored value to the
//     global.get, so it costs no extra load).
//     The cost charged at a function entry is the number of instructions of
//     the function that are outside every loop; at a loop head, the number
//     of instructions of the loop body (its end included) that are outside
//     its nested loops. Each instruction is then executed at most once per
//     charge of its region, so the fuel consumed is a deterministic upper
//     bound of the number of original instructions executed (both arms of
//     an if are charged, for example). A bulk memory instruction
//     (memory.fill, memory.copy, memory.init) is also charged a unit per
//     16 bytes, and a bulk table instruction (table.fill, table.copy,
//     table.init) a unit per element, just before it runs, and checked
//     the same way: a guest cannot get a long operation for one unit.
//
//   - Tables. Before every table.grow the imported FuncTableGrow is called
//     with the requested delta, the table's current size and its index,
//     and its result replaces the delta: the host answers the delta to
//     let the growth happen, or 0xffffffff to make table.grow return -1
//     (no table can reach 2^32 elements). WebAssembly puts no bound on
//     tables, and a runtime holds 8 bytes per element, so this is where
//     the host bounds the memory tables take.
//
//   - Dirty chunks, with Options.MarkWrites. In a module whose writes it
//     can account for, every
//     store, bulk memory operation, atomic write and call of a WASI
//     import also marks the chunks of memory it may have written, in two
//     more exported globals, so that a host putting the memory back after
//     a call copies only those (see GlobalDirty).
//
// Adding the imports shifts every defined function's index by 2 (or 3); calls,
// ref.func, exports, the start function, element segments, global and table
// initializers and the "name" section are renumbered. The globals are
// appended to the global section, so no global index changes. Everything
// else, other custom sections included, is copied unchanged.
package meter

import (
	"bytes"
	"fmt"

	"github.com/flowhost/flowhost/internal/leb128"
)

const (
	// ImportModule is the module name of the functions the instrumented
	// module imports.
	ImportModule = "flowhost:meter"
	// FuncOutOfFuel is imported () -> () and called when GlobalFuel goes
	// below 0. The host refills the global and returns, or panics to trap.
	FuncOutOfFuel = "out_of_fuel"
	// FuncTooDeep is imported () -> () and called when GlobalDepth reaches 0
	// (or less) at a function entry. The host is expected to panic.
	FuncTooDeep = "too_deep"
	// FuncTableGrow is imported (delta, size, table i32) -> i32, by modules
	// that use table.grow only, and called before each table.grow: it
	// returns the delta to grow by, or 0xffffffff to refuse the growth.
	FuncTableGrow = "table_grow"
	// GlobalFuel is the exported mutable i64 global holding the remaining fuel.
	GlobalFuel = "flowhost_fuel"
	// GlobalDepth is the exported mutable i32 global holding the remaining
	// call depth. A value of d lets d-1 instrumented frames of weight 1 be
	// active at once: the entry of the d-th calls FuncTooDeep.
	GlobalDepth = "flowhost_depth"
)

// Initial values of the added globals, which the start function (if any)
// runs with, before the host can set them. With no fuel, the first function
// entry of the start function calls FuncOutOfFuel, so the host decides how
// much instantiation may cost.
const (
	InitialFuel  int64 = 0
	InitialDepth int32 = 10000
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// order gives the position a non-custom section must have in a module.
var order = map[byte]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

type section struct {
	id         byte
	start, end int // payload, as offsets in the input
}

type funcType struct {
	nParams  uint32
	params   []byte // encoded parameter types, without the count
	nResults uint32
	results  []byte // encoded result types, without the count
}

// rewriter holds what Instrument learns of a module and the indices it adds.
type rewriter struct {
	in       []byte
	sections []section

	types     []funcType
	funcTypes []uint32 // type of each defined function
	nImpFunc  uint32
	nImpGlob  uint32
	nGlobals  uint32 // defined globals
	exports   map[string]bool

	newTypes [][]byte // encoded function types appended to the type section
	voidType uint32   // index of () -> ()
	wrapBT   [][]byte // block type of each defined function's wrapper block

	fuelGlobal, depthGlobal uint32
	outOfFuel, tooDeep      uint32
	tableGrows              bool     // some body has a table.grow
	segments                bool     // some body changes a table or drops a segment
	mutable                 []uint32 // defined mutable globals, by index
	tableGrow, tableGrowTy  uint32   // the import of FuncTableGrow and its type
	added                   uint32   // function imports added: 2, or 3 with tableGrows

	plans []funcPlan // per defined function, from the first pass

	// Dirty chunks (see dirty.go): the module's memories, whether one is
	// imported, the defined one's limits flags; the imported functions
	// that may write memory (by index), and whether one escapes a direct
	// call; the added globals.
	memories    int
	memImported bool
	memFlags    byte
	writers     []bool
	escapes     bool
	throws      bool // some function throws: a frame may be left by unwinding
	marks       bool // Options.MarkWrites
	wideGlobals bool // a mutable global is a v128
	// stdio are the imports of WASI's fd_close and fd_renumber, by
	// function index, whose direct calls are guarded (see stdioGuard);
	// stdioEscapes: one may be called other than directly.
	stdio                    map[uint32]string
	stdioEscapes             bool
	voidTypes                map[string]uint32 // index of () -> results, by encoded results (see typeFor)
	dirtyGlobal, shiftGlobal uint32
}

// funcPlan is what the first pass over a body learns.
type funcPlan struct {
	costs        []int64      // fuel charged at entry, then at each loop head, in order
	catches      bool         // the body has a try_table
	catchLoops   map[int]bool // loops (by position in costs) a catch clause branches to
	tableGrows   bool         // the body has a table.grow
	segments     bool         // the body changes a table or drops a segment
	needs        int          // the temporaries its dirty marks need (needAddr...)
	weight       int32        // what a frame of it costs against the depth (frameWeight)
	bulk         bool         // it has a bulk memory or table operation
	stdio        bool         // it calls fd_close or fd_renumber directly (guarded)
	stdioEscapes bool         // it takes a ref.func of one
	throws       bool         // it throws an exception
	escapes      bool         // it takes a ref.func of an import that may write memory
}

// Instrument returns a rewritten copy of a binary module that meters itself
// as the package documentation describes. It refuses, with an error wrapping
// ErrMalformed or ErrUnsupported that names the cause, modules it cannot
// rewrite safely: malformed ones, components, modules that already import
// from ImportModule or export GlobalFuel or GlobalDepth, and modules using
// legacy exception handling or GC instructions and types. The input is not
// modified.
func Instrument(wasm []byte) (out []byte, err error) {
	out, _, err = InstrumentState(wasm)
	return out, err
}

// Options are what InstrumentWith adds beyond fuel and depth.
type Options struct {
	// MarkWrites adds the dirty chunks' marks (see GlobalDirty) to a
	// module they can account for; State.Dirty tells whether it did.
	// They cost the guest's stores: about 40 % of a loop that does
	// nothing but load and store, nothing to code without stores.
	MarkWrites bool
}

// InstrumentState is Instrument that also reports what Analyze would,
// from the same pass over the module.
func InstrumentState(wasm []byte) (out []byte, st State, err error) {
	return InstrumentWith(wasm, Options{})
}

// InstrumentWith is InstrumentState with options.
func InstrumentWith(wasm []byte, opts Options) (out []byte, st State, err error) {
	defer func() {
		if r := recover(); r != nil {
			de, ok := r.(*decodeError)
			if !ok {
				panic(r)
			}
			out, st, err = nil, State{}, fmt.Errorf("meter: instrument: %w", de)
		}
	}()
	m := &rewriter{in: wasm, exports: map[string]bool{}, marks: opts.MarkWrites}
	m.parseSections()
	m.analyze()
	m.plan()
	out = m.emit()
	return out, m.state(), nil
}

func (m *rewriter) state() State {
	return State{GrowsTables: m.tableGrows, Segments: m.segments, Globals: m.mutable, WideGlobals: m.wideGlobals, Dirty: m.tracking(),
		Descriptors: m.stdioEscapes}
}

// GrowsTables reports whether a function of the module uses table.grow,
// which Instrument routes through FuncTableGrow. It fails like Instrument
// on a module Instrument would refuse.
func GrowsTables(wasm []byte) (grows bool, err error) {
	st, err := Analyze(wasm)
	return st.GrowsTables, err
}

// State is what a module keeps between calls of one instance, besides
// its linear memory.
type State struct {
	// GrowsTables: a function uses table.grow.
	GrowsTables bool `json:"grows_tables,omitempty"`
	// Segments: a function changes a table (table.set, table.grow,
	// table.fill, table.copy, table.init) or drops a data or element
	// segment. Such state cannot be restored from outside the instance.
	Segments bool `json:"segments,omitempty"`
	// Globals are the module's defined mutable globals, by index: the
	// instrumented module exports each as GlobalPrefix + its index, so
	// that the host can save and restore them.
	Globals []uint32 `json:"globals,omitempty"`
	// Descriptors: WASI's fd_close or fd_renumber may be called other
	// than directly (through a table, an export, ref.func), where the
	// rewrite cannot keep a guest from closing its standard descriptors,
	// which no host can reopen from outside.
	Descriptors bool `json:"descriptors,omitempty"`
	// WideGlobals: a mutable global is a v128, which a host cannot save
	// and restore through wazero's API (it reads and writes 64 bits).
	WideGlobals bool `json:"wide_globals,omitempty"`
	// Dirty: the instrumented module marks the chunks of memory it
	// writes in GlobalDirty (see GlobalDirty). Analyze reports whether
	// it would, with Options.MarkWrites.
	Dirty bool `json:"dirty,omitempty"`
}

// GlobalPrefix names the exports of the module's own mutable globals in
// an instrumented module: "flowhost_g" + the global's index.
const GlobalPrefix = "flowhost_g"

// Analyze reports what state a module keeps between calls. It fails like
// Instrument on a module Instrument would refuse.
func Analyze(wasm []byte) (st State, err error) {
	defer func() {
		if r := recover(); r != nil {
			de, ok := r.(*decodeError)
			if !ok {
				panic(r)
			}
			st, err = State{}, fmt.Errorf("meter: %w", de)
		}
	}()
	m := &rewriter{in: wasm, exports: map[string]bool{}, marks: true}
	m.parseSections()
	m.analyze()
	return m.state(), nil
}

var magic = []byte{0x00, 0x61, 0x73, 0x6d}

func (m *rewriter) parseSections() {
	r := newReader(m.in, 0)
	if len(m.in) < 8 || !bytes.Equal(m.in[:4], magic) {
		r.malformed("not a WebAssembly binary (bad magic number)")
	}
	switch v := m.in[4:8]; {
	case bytes.Equal(v, []byte{1, 0, 0, 0}):
	case v[2] == 1 && v[3] == 0:
		unsupported(4, "a component (layer 1) is not a core module")
	default:
		r.pos = 4
		r.malformed("unsupported binary version % x", v)
	}
	r.pos = 8
	last := 0
	for !r.eof() {
		id := r.byte()
		size := r.u32()
		start := r.pos
		r.bytes(uint64(size))
		if id != secCustom {
			o, ok := order[id]
			if !ok {
				r.pos = start
				r.malformed("unknown section id %d", id)
			}
			if o <= last {
				r.pos = start
				r.malformed("section %d out of order or repeated", id)
			}
			last = o
		}
		m.sections = append(m.sections, section{id: id, start: start, end: r.pos})
	}
}

func (m *rewriter) payload(s section) *reader {
	return newReader(m.in[s.start:s.end], s.start)
}

func sectionName(id byte) string {
	return [...]string{"custom", "type", "import", "function", "table", "memory", "global",
		"export", "start", "element", "code", "data", "data count", "tag"}[id]
}

// analyze reads the sections whose content decides the rewriting.
func (m *rewriter) analyze() {
	for _, s := range m.sections {
		r := m.payload(s)
		within(sectionName(s.id)+" section", func() {
			switch s.id {
			case secType:
				m.readTypes(r)
			case secImport:
				m.readImports(r)
			case secFunction:
				n := r.u32()
				for i := uint32(0); i < n; i++ {
					t := r.u32()
					if t >= uint32(len(m.types)) {
						r.malformed("function %d has type index %d out of range", i, t)
					}
					m.funcTypes = append(m.funcTypes, t)
				}
			case secGlobal:
				m.nGlobals = r.u32()
				for i := uint32(0); i < m.nGlobals; i++ {
					v128 := r.peek() == tV128
					r.valType()
					if r.byte() == 0x01 {
						m.mutable = append(m.mutable, m.nImpGlob+i)
						m.wideGlobals = m.wideGlobals || v128
					}
					m.constExpr(r, nil)
				}
			case secExport:
				n := r.u32()
				for i := uint32(0); i < n; i++ {
					name := r.name()
					kind := r.byte()
					idx := r.u32()
					if kind == 0 {
						m.noteRef(idx)
					}
					m.exports[name] = true
				}
			case secMemory:
				n := r.u32()
				m.memories += int(n)
				for i := uint32(0); i < n; i++ {
					m.memFlags = r.limits()
				}
			case secTable, secElement:
				// Read for the functions they reference.
				m.rewriteSection(s.id, r)
			case secCode:
				m.scanCode(r)
			}
		})
	}
	for _, g := range []string{GlobalFuel, GlobalDepth, GlobalDirty, GlobalDirtyShift} {
		if m.exports[g] {
			unsupported(-1, "the module already exports %q (instrumented twice?)", g)
		}
	}
	if len(m.plans) != len(m.funcTypes) {
		malformed(-1, "the function section declares %d functions but the code section has %d bodies", len(m.funcTypes), len(m.plans))
	}
}

func (m *rewriter) readTypes(r *reader) {
	n := r.u32()
	for i := uint32(0); i < n; i++ {
		at := r.off()
		if form := r.byte(); form != 0x60 {
			unsupported(at, "type %d: form %#x is not a function type (GC type definitions are not supported)", i, form)
		}
		var t funcType
		t.nParams = r.u32()
		pstart := r.pos
		for j := uint32(0); j < t.nParams; j++ {
			r.valType()
		}
		t.params = r.b[pstart:r.pos]
		t.nResults = r.u32()
		start := r.pos
		for j := uint32(0); j < t.nResults; j++ {
			r.valType()
		}
		t.results = r.b[start:r.pos]
		m.types = append(m.types, t)
	}
}

func (m *rewriter) readImports(r *reader) {
	n := r.u32()
	for i := uint32(0); i < n; i++ {
		mod := r.name()
		name := r.name()
		if mod == ImportModule {
			unsupported(r.off(), "the module already imports %s.%s (instrumented twice?)", mod, name)
		}
		switch kind := r.byte(); kind {
		case 0: // func
			if t := r.u32(); t >= uint32(len(m.types)) {
				r.malformed("import %s.%s has type index %d out of range", mod, name, t)
			}
			m.nImpFunc++
			m.writers = append(m.writers, mod != "extism:host/env")
			if mod == "wasi_snapshot_preview1" && (name == "fd_close" || name == "fd_renumber") {
				if m.stdio == nil {
					m.stdio = map[uint32]string{}
				}
				m.stdio[m.nImpFunc-1] = name
			}
		case 1: // table
			r.valType()
			r.limits()
		case 2: // memory
			r.limits()
			m.memories++
			m.memImported = true
		case 3: // global
			r.valType()
			r.byte()
			m.nImpGlob++
		case 4: // tag
			r.byte()
			r.u32()
		default:
			r.malformed("import %s.%s has unknown kind %#x", mod, name, kind)
		}
	}
}

// scope is what scanBody checks a body against: its function's
// parameters, the module's globals (imported and defined) and which
// imported functions may write memory.
type scope struct {
	params     uint64
	paramBytes uint64
	globals    uint32
	writers    []bool
	stdio      map[uint32]string
}

// skipLocals reads a function body's local declarations and returns
// how many locals they declare, and the bytes of stack they take (see
// frameWeight).
func skipLocals(r *reader) (locals, bytes uint64) {
	n := r.u32()
	for i := uint32(0); i < n; i++ {
		k := uint64(r.u32())
		locals += k
		bytes += k * slotBytes(r.peek())
		r.valType()
	}
	return locals, bytes
}

// slotBytes is what a value of the type starting with byte t takes on
// the runtime's stack.
func slotBytes(t byte) uint64 {
	if t == tV128 {
		return 16
	}
	return 8
}

// frameUnit is how many bytes of parameters and locals count as one
// frame against the depth: a function with fewer (up to 128 scalars)
// costs 1, one with 1,000 v128 locals 16, so that MaxDepth frames bound
// the stack the runtime allocates, not only the count of calls (wazero
// lets a call's stack grow to 400 MB).
const frameUnit = 1024

// frameWeight is what a frame of a function whose parameters and locals
// take bytes costs against the depth, at least 1.
func frameWeight(bytes uint64) int32 {
	return int32(min(1+bytes/frameUnit, 1<<30))
}

// scanCode is the first pass over the code: it computes the fuel cost of
// every region (function entry, loop bodies) and finds the catch clauses.
func (m *rewriter) scanCode(r *reader) {
	n := r.u32()
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		base := r.off()
		body := r.bytes(uint64(size))
		within(fmt.Sprintf("function %d", m.nImpFunc+i), func() {
			if int(i) >= len(m.funcTypes) {
				malformed(base, "the code section has more bodies than the function section declares (%d)", len(m.funcTypes))
			}
			ft := m.types[m.funcTypes[i]]
			var paramBytes uint64
			for _, b := range ft.params { // a typed reference's heap type counts too: a bound, not a size
				paramBytes += slotBytes(b)
			}
			p := scanBody(newReader(body, base), scope{params: uint64(ft.nParams), paramBytes: paramBytes, globals: m.nImpGlob + m.nGlobals, writers: m.writers, stdio: m.stdio})
			m.tableGrows = m.tableGrows || p.tableGrows
			m.escapes = m.escapes || p.escapes
			m.stdioEscapes = m.stdioEscapes || p.stdioEscapes
			m.throws = m.throws || p.throws
			m.segments = m.segments || p.segments
			m.plans = append(m.plans, p)
		})
	}
}

// It also refuses a body that names a local, a global or a label past
// those of its function and module: invalid in the original module, such
// an index would be valid in the instrumented one, and would name what
// the instrumentation adds (the fuel global, its wrapper block, its
// locals), letting a guest refuel itself.
func scanBody(r *reader, sc scope) (p funcPlan) {
	declared, bytes := skipLocals(r)
	locals := sc.params + declared
	p.weight = frameWeight(bytes + sc.paramBytes)
	globals := sc.globals
	p.costs = []int64{0}
	type frame struct{ region, loop int }
	var open []frame // the labels open around the current instruction
	cur := 0         // region of the current instruction: 0 for the function, else its loop
	for {
		at := r.off()
		in := decodeInstr(r)
		p.costs[cur]++
		p.segments = p.segments || in.segments
		p.needs |= needsOf(in)
		p.bulk = p.bulk || in.kind == kBulk
		p.throws = p.throws || in.op == 0x08 || in.op == 0x0a // throw, throw_ref
		if in.kind == kRefFunc && in.fn < uint32(len(sc.writers)) && sc.writers[in.fn] {
			p.escapes = true
		}
		if (in.kind == kCall || in.kind == kReturnCall || in.kind == kRefFunc) && sc.stdio[in.fn] != "" {
			if in.kind == kRefFunc {
				p.stdioEscapes = true
			} else {
				p.stdio = true // its guard's temporaries: see rewriteBody
			}
		}
		switch {
		case in.ref == refLocal && uint64(in.index) >= locals:
			malformed(at, "local index %d out of range (%d locals)", in.index, locals)
		case in.ref == refGlobal && in.index >= globals:
			malformed(at, "global index %d out of range (%d globals)", in.index, globals)
		case in.ref == refLabel && int(in.index) > len(open):
			malformed(at, "branch to label %d out of range (%d labels)", in.index, len(open)+1)
		}
		for _, l := range in.catches {
			if int(l) > len(open) {
				malformed(at, "catch to label %d out of range (%d labels)", l, len(open)+1)
			}
		}
		switch in.kind {
		case kBlock:
			open = append(open, frame{region: cur})
		case kTryTable:
			p.catches = true
			for _, l := range in.catches {
				if int(l) < len(open) {
					if f := open[len(open)-1-int(l)]; f.loop != 0 {
						if p.catchLoops == nil {
							p.catchLoops = map[int]bool{}
						}
						p.catchLoops[f.loop] = true
					}
				}
			}
			open = append(open, frame{region: cur})
		case kTableGrow:
			p.tableGrows = true
		case kLoop:
			open = append(open, frame{region: cur, loop: len(p.costs)})
			cur = len(p.costs)
			p.costs = append(p.costs, 0)
		case kEnd:
			if len(open) == 0 {
				if !r.eof() {
					r.malformed("%d trailing bytes after the end of the function body", len(r.b)-r.pos)
				}
				return p
			}
			cur = open[len(open)-1].region
			open = open[:len(open)-1]
		}
	}
}

// plan chooses the indices and types the instrumentation adds.
func (m *rewriter) plan() {
	m.voidType = m.typeFor(nil, 0)
	m.outOfFuel = m.nImpFunc
	m.tooDeep = m.nImpFunc + 1
	m.added = 2
	if m.tableGrows {
		m.tableGrow = m.nImpFunc + 2
		m.tableGrowTy = m.growType()
		m.added = 3
	}
	m.fuelGlobal = m.nImpGlob + m.nGlobals
	m.depthGlobal = m.fuelGlobal + 1
	m.dirtyGlobal, m.shiftGlobal = m.depthGlobal+1, m.depthGlobal+2
	m.wrapBT = make([][]byte, len(m.funcTypes))
	for i, ti := range m.funcTypes {
		t := m.types[ti]
		switch {
		case t.nResults == 0:
			m.wrapBT[i] = []byte{0x40}
		case t.nResults == 1 && len(t.results) == 1:
			m.wrapBT[i] = t.results
		default:
			m.wrapBT[i] = leb128.AppendInt(nil, int64(m.typeFor(t.results, t.nResults)))
		}
	}
}

// typeFor returns the index of the type () -> results, adding it if needed.
// The types () -> results are indexed on first use: a module of many
// functions with many results must not cost a scan of its types each.
func (m *rewriter) typeFor(results []byte, n uint32) uint32 {
	if m.voidTypes == nil {
		m.voidTypes = map[string]uint32{}
		for i := len(m.types) - 1; i >= 0; i-- { // the first of equal types wins
			if t := m.types[i]; t.nParams == 0 {
				m.voidTypes[string(t.results)] = uint32(i)
			}
		}
	}
	if i, ok := m.voidTypes[string(results)]; ok {
		return i
	}
	enc := leb128.AppendUint([]byte{0x60, 0x00}, uint64(n))
	enc = append(enc, results...)
	m.newTypes = append(m.newTypes, enc)
	m.types = append(m.types, funcType{nResults: n, results: results})
	i := uint32(len(m.types) - 1)
	m.voidTypes[string(results)] = i
	return i
}

// growType returns the index of the type (i32, i32, i32) -> i32, adding
// it if needed.
func (m *rewriter) growType() uint32 {
	for i, t := range m.types {
		if t.nParams == 3 && t.nResults == 1 && bytes.Equal(t.results, []byte{0x7f}) && bytes.Equal(t.params, []byte{0x7f, 0x7f, 0x7f}) {
			return uint32(i)
		}
	}
	m.newTypes = append(m.newTypes, []byte{0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f})
	m.types = append(m.types, funcType{nParams: 3, params: []byte{0x7f, 0x7f, 0x7f}, nResults: 1, results: []byte{0x7f}})
	return uint32(len(m.types) - 1)
}

// fn renumbers a function index.
func (m *rewriter) fn(r *reader, f uint32) uint32 {
	if total := m.nImpFunc + uint32(len(m.funcTypes)); f >= total {
		r.malformed("function index %d out of range (%d functions)", f, total)
	}
	if f >= m.nImpFunc {
		return f + m.added
	}
	return f
}

// bulkCharge appends, before a bulk memory or table instruction whose
// length is on top of the stack, the charge of that length (a unit per
// 16 bytes of memory, per element of a table) and its check; len is a
// temporary local.
func (m *rewriter) bulkCharge(out []byte, memory bool, len uint64) []byte {
	out = leb128.AppendUint(append(out, 0x22), len)                  // local.tee $len
	out = leb128.AppendUint(append(out, 0x23), uint64(m.fuelGlobal)) // global.get $fuel
	out = leb128.AppendUint(append(out, 0x20), len)                  // local.get $len
	out = append(out, 0xad)                                          // i64.extend_i32_u
	if memory {
		out = append(out, 0x42, 0x04, 0x88) // i64.const 4; i64.shr_u
	}
	out = append(out, 0x7d)                                          // i64.sub
	out = leb128.AppendUint(append(out, 0x24), uint64(m.fuelGlobal)) // global.set $fuel
	out = leb128.AppendUint(append(out, 0x23), uint64(m.fuelGlobal)) // global.get $fuel
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40)                  // i64.const 0; i64.lt_s; if
	out = leb128.AppendUint(append(out, 0x10), uint64(m.outOfFuel))  // call out_of_fuel
	return append(out, 0x0b)                                         // end
}

// fuelCheck appends the fuel check charging cost.
func (m *rewriter) fuelCheck(out []byte, cost int64) []byte {
	out = leb128.AppendUint(append(out, 0x23), uint64(m.fuelGlobal)) // global.get
	out = leb128.AppendInt(append(out, 0x42), cost)                  // i64.const cost
	out = append(out, 0x7d)                                          // i64.sub
	out = leb128.AppendUint(append(out, 0x24), uint64(m.fuelGlobal)) // global.set
	out = leb128.AppendUint(append(out, 0x23), uint64(m.fuelGlobal)) // global.get
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40)                  // i64.const 0; i64.lt_s; if
	out = leb128.AppendUint(append(out, 0x10), uint64(m.outOfFuel))  // call out_of_fuel
	return append(out, 0x0b)                                         // end
}

// depthEnter appends the depth decrement by the function's weight, and
// the check.
func (m *rewriter) depthEnter(out []byte, weight int32) []byte {
	out = leb128.AppendUint(append(out, 0x23), uint64(m.depthGlobal)) // global.get
	out = leb128.AppendInt(append(out, 0x41), int64(weight))          // i32.const weight
	out = append(out, 0x6b)                                           // i32.sub
	out = leb128.AppendUint(append(out, 0x24), uint64(m.depthGlobal)) // global.set
	out = leb128.AppendUint(append(out, 0x23), uint64(m.depthGlobal)) // global.get
	out = append(out, 0x41, 0x00, 0x4c, 0x04, 0x40)                   // i32.const 0; i32.le_s; if
	out = leb128.AppendUint(append(out, 0x10), uint64(m.tooDeep))     // call too_deep
	return append(out, 0x0b)                                          // end
}

// depthLeave appends the depth increment. In a function that catches
// exceptions (saved >= 0), the depth is recomputed from the value saved at
// entry instead, since frames unwound by an exception did not restore it.
func (m *rewriter) depthLeave(out []byte, saved int64, weight int32) []byte {
	if saved >= 0 {
		out = leb128.AppendUint(append(out, 0x20), uint64(saved)) // local.get $saved
	} else {
		out = leb128.AppendUint(append(out, 0x23), uint64(m.depthGlobal)) // global.get
	}
	out = leb128.AppendInt(append(out, 0x41), int64(weight))           // i32.const weight
	out = append(out, 0x6a)                                            // i32.add
	return leb128.AppendUint(append(out, 0x24), uint64(m.depthGlobal)) // global.set
}

// depthRestore appends the reset of the depth to the value saved at entry,
// where a catch clause lands.
func (m *rewriter) depthRestore(out []byte, saved int64) []byte {
	out = leb128.AppendUint(append(out, 0x20), uint64(saved))          // local.get $saved
	return leb128.AppendUint(append(out, 0x24), uint64(m.depthGlobal)) // global.set
}
