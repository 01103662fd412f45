package meter

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/flowhost/flowhost/internal/leb128"
)

const lots = int64(1) << 50 // fuel that never runs out in these tests

// basicCall is one call of basic.wat; want nil means "same as uninstrumented".
type basicCall struct {
	fn   string
	args []uint64
	want []uint64
}

// basicCalls run in order on one instance (fill_table changes the table).
var basicCalls = []basicCall{
	{"started", nil, []uint64{42}},
	{"fib", []uint64{20}, []uint64{6765}},
	{"sum_squares", []uint64{300}, []uint64{299 * 300 * 599 / 6}},
	{"divmod", []uint64{100}, []uint64{14, 2}},
	{"divmod", []uint64{0}, []uint64{0, 0}},
	{"multi_block", []uint64{4}, []uint64{28}},
	{"exit_return", []uint64{0}, []uint64{14}},
	{"exit_br", []uint64{0}, []uint64{21}},
	{"exit_br", []uint64{5}, []uint64{25}},
	{"exit_br_if", []uint64{0}, []uint64{31}},
	{"exit_br_if", []uint64{3}, []uint64{33}},
	{"exit_br_table", []uint64{0}, []uint64{1040}},
	{"exit_br_table", []uint64{1}, []uint64{1141}},
	{"exit_br_table", []uint64{2}, []uint64{42}},
	{"exit_br_table", []uint64{7}, []uint64{47}},
	{"exit_fall", []uint64{1}, []uint64{51}},
	{"exit_unreachable_tail", []uint64{2}, []uint64{62}},
	{"exit_void", []uint64{1}, []uint64{}},
	{"exit_void", []uint64{0}, []uint64{}},
	{"indirect", []uint64{0, 7, 5}, []uint64{12}},
	{"indirect", []uint64{1, 7, 5}, []uint64{2}},
	{"indirect", []uint64{2, 7, 5}, []uint64{35}},
	{"fill_table", nil, []uint64{}},
	{"indirect", []uint64{3, 7, 5}, []uint64{35}},
	{"indirect", []uint64{4, 7, 5}, []uint64{12}},
	{"indirect", []uint64{5, 7, 5}, []uint64{2}},
	{"fib_via_table", []uint64{10}, []uint64{55}},
	{"call_host", []uint64{2, 3}, []uint64{5}},
	{"down", []uint64{1000}, []uint64{1000}},
	{"block_loop", []uint64{10}, nil},
}

func basicWasm(t testing.TB) []byte { return wat(t, "basic.wat") }

// TestSameResults runs every call of basic.wat on the original and the
// instrumented module and compares results; after each call the depth
// global must be back to its value before the call (whichever way the
// functions returned) and some fuel must have been used.
func TestSameResults(t *testing.T) {
	orig := basicWasm(t)
	inst := instrument(t, orig)
	h := &host{}
	r := newRuntime(t, h, api.CoreFeaturesV2)
	om := instantiate(t, r, orig)
	h.refill, h.maxRefills = lots, 1 // the start function begins with no fuel
	im := instantiate(t, r, inst)
	if h.outOfFuel != 1 {
		t.Fatalf("start function: out_of_fuel called %d times, want 1 (initial fuel is %d)", h.outOfFuel, InitialFuel)
	}
	fuel, depth := meterGlobals(t, im)
	const startDepth = 5000
	depth.Set(startDepth)
	for _, c := range basicCalls {
		want, err := call(om, c.fn, c.args...)
		if err != nil {
			t.Fatalf("original %s%v: %v", c.fn, c.args, err)
		}
		if c.want != nil && !slices.Equal(want, c.want) {
			t.Fatalf("original %s%v = %v, test expects %v", c.fn, c.args, want, c.want)
		}
		fuel.Set(uint64(lots))
		got, err := call(im, c.fn, c.args...)
		if err != nil {
			t.Fatalf("instrumented %s%v: %v", c.fn, c.args, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("instrumented %s%v = %v, want %v", c.fn, c.args, got, want)
		}
		if d := int32(depth.Get()); d != startDepth {
			t.Errorf("%s%v: depth global %d after the call, want %d", c.fn, c.args, d, startDepth)
		}
		if used := lots - int64(fuel.Get()); used <= 0 {
			t.Errorf("%s%v: used %d fuel", c.fn, c.args, used)
		}
		if ol, il := om.ExportedGlobal("last").Get(), im.ExportedGlobal("last").Get(); ol != il {
			t.Errorf("%s%v: global last = %d, original %d", c.fn, c.args, il, ol)
		}
	}
}

// fuelTrace runs basicCalls on a fresh instrumented instance that starts
// each call with start fuel and refills by refill, and returns the fuel
// each call consumed.
func fuelTrace(t *testing.T, inst []byte, start, refill int64) []int64 {
	h := &host{refill: refill, maxRefills: -1}
	r := newRuntime(t, h, api.CoreFeaturesV2)
	m := instantiate(t, r, inst)
	fuel, depth := meterGlobals(t, m)
	var trace []int64
	for _, c := range basicCalls {
		fuel.Set(uint64(start))
		depth.Set(5000)
		before := h.refilled
		if _, err := call(m, c.fn, c.args...); err != nil {
			t.Fatalf("%s%v: %v", c.fn, c.args, err)
		}
		trace = append(trace, start+h.refilled-before-int64(fuel.Get()))
	}
	return trace
}

// TestFuelDeterministic checks that each call consumes the same fuel on
// every run, and whether the fuel comes from the initial budget or from
// many small refills.
func TestFuelDeterministic(t *testing.T) {
	inst := instrument(t, basicWasm(t))
	a := fuelTrace(t, inst, lots, 1)
	b := fuelTrace(t, inst, lots, 1)
	c := fuelTrace(t, inst, 0, 7) // out_of_fuel at nearly every check
	if !slices.Equal(a, b) || !slices.Equal(a, c) {
		t.Fatalf("fuel consumed differs between runs:\n%v\n%v\n%v", a, b, c)
	}
	for i, used := range a {
		if used <= 0 {
			t.Errorf("%s: consumed %d fuel", basicCalls[i].fn, used)
		}
	}
}

// TestFuelUpperBound checks that a loop whose body starts with a block is
// charged its whole body per iteration: block_loop executes 18 instructions per
// iteration.
func TestFuelUpperBound(t *testing.T) {
	inst := instrument(t, basicWasm(t))
	h := &host{}
	r := newRuntime(t, h, api.CoreFeaturesV2)
	h.refill, h.maxRefills = lots, 1
	m := instantiate(t, r, inst)
	fuel, _ := meterGlobals(t, m)
	used := func(n uint64) int64 {
		fuel.Set(uint64(lots))
		if _, err := call(m, "block_loop", n); err != nil {
			t.Fatal(err)
		}
		return lots - int64(fuel.Get())
	}
	perIteration := (used(2000) - used(1000)) / 1000
	if perIteration < 18 {
		t.Fatalf("block_loop is charged %d fuel per iteration, less than the 18 instructions it executes", perIteration)
	}
	// fib(n) makes fib(n+1)*2-1 calls; each is charged at least once.
	fuel.Set(uint64(lots))
	if _, err := call(m, "fib", 15); err != nil {
		t.Fatal(err)
	}
	if got := lots - int64(fuel.Get()); got < 2*987-1 {
		t.Fatalf("fib(15) consumed %d fuel for %d calls", got, 2*987-1)
	}
}

// TestInfiniteLoop checks that an endless loop calls out_of_fuel, that
// refills let it go on, and that a trapping host ends it.
func TestInfiniteLoop(t *testing.T) {
	inst := instrument(t, basicWasm(t))
	h := &host{refill: 1000, maxRefills: -1}
	r := newRuntime(t, h, api.CoreFeaturesV2)
	m := instantiate(t, r, inst)
	fuel, _ := meterGlobals(t, m)

	h.outOfFuel, h.maxRefills = 0, 5
	fuel.Set(1000)
	_, err := call(m, "spin")
	if err == nil || !strings.Contains(err.Error(), errOutOfFuel.Error()) {
		t.Fatalf("spin: err = %v, want the host's out-of-fuel panic", err)
	}
	if h.outOfFuel != 6 {
		t.Fatalf("out_of_fuel called %d times, want 6 (5 refills, then the trap)", h.outOfFuel)
	}

	// A wall-clock timeout: refill in slices, trap once the deadline passed.
	h.outOfFuel, h.maxRefills, h.refill = 0, -1, 100_000
	start := time.Now()
	h.deadline = start.Add(50 * time.Millisecond)
	fuel.Set(100_000)
	_, err = call(m, "spin")
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), errOutOfFuel.Error()) {
		t.Fatalf("spin with a deadline: err = %v", err)
	}
	if elapsed < 50*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("spin with a 50ms deadline stopped after %v", elapsed)
	}
	t.Logf("50ms timeout: stopped after %v, %d refills of %d", elapsed, h.outOfFuel-1, h.refill)
}

// TestDepth checks the call-depth bound: a 1,000,000-deep recursion traps
// at the configured depth, a 1,000-deep one returns, and the depth global
// is then back to where it started.
func TestDepth(t *testing.T) {
	inst := instrument(t, basicWasm(t))
	h := &host{}
	r := newRuntime(t, h, api.CoreFeaturesV2)
	h.refill, h.maxRefills = lots, 1
	m := instantiate(t, r, inst)
	fuel, depth := meterGlobals(t, m)
	last := m.ExportedGlobal("last")

	const d = 5000
	for _, tc := range []struct {
		n    uint64
		trap bool
	}{
		{1000, false},
		{d - 2, false}, // d-1 frames: the most a depth of d allows
		{d - 1, true},  // d frames
		{1_000_000, true},
		{10, false}, // after a trap (a host would reset the globals, as here)
	} {
		fuel.Set(uint64(lots))
		depth.Set(d)
		h.tooDeep = 0
		res, err := call(m, "down", tc.n)
		if !tc.trap {
			if err != nil || res[0] != tc.n {
				t.Fatalf("down(%d) = %v, %v", tc.n, res, err)
			}
			if got := int32(depth.Get()); got != d {
				t.Fatalf("down(%d): depth global %d after return, want %d", tc.n, got, d)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), errTooDeep.Error()) || h.tooDeep != 1 {
			t.Fatalf("down(%d): err = %v after %d too_deep calls, want one trap", tc.n, err, h.tooDeep)
		}
		// The host called down(n) (frame 1); frame k runs with n-k+1 and
		// frame d never starts: the last recorded n is that of frame d-1.
		if got, want := api.DecodeI32(last.Get()), int32(tc.n)-d+2; got != want {
			t.Fatalf("down(%d) trapped with last n = %d, want %d", tc.n, got, want)
		}
	}
}

// TestNames checks the "name" section is renumbered: every exported
// function keeps its name.
func TestNames(t *testing.T) {
	orig := basicWasm(t)
	inst := instrument(t, orig)
	r := newRuntime(t, &host{}, api.CoreFeaturesV2)
	ctx := context.Background()
	oc, err := r.CompileModule(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := r.CompileModule(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for name, od := range oc.ExportedFunctions() {
		id := ic.ExportedFunctions()[name]
		if id == nil {
			t.Fatalf("instrumented module lacks export %q", name)
		}
		if od.Name() != id.Name() {
			t.Errorf("export %q: function name %q, want %q", name, id.Name(), od.Name())
		}
		if od.Name() != "" {
			named++
		}
	}
	if named < 3 {
		t.Fatalf("only %d exported functions have names: is the name section there?", named)
	}
	var imports []string
	for _, d := range ic.ImportedFunctions() {
		mod, name, _ := d.Import()
		imports = append(imports, mod+"."+name)
	}
	want := []string{"env.host_add", ImportModule + "." + FuncOutOfFuel, ImportModule + "." + FuncTooDeep}
	if !slices.Equal(imports, want) {
		t.Fatalf("imports %v, want %v", imports, want)
	}
}

// customSections lists a module's custom sections other than "name".
func customSections(t *testing.T, wasm []byte) [][]byte {
	m := &rewriter{in: wasm}
	m.parseSections()
	var out [][]byte
	for _, s := range m.sections {
		if s.id != secCustom {
			continue
		}
		if newReader(wasm[s.start:s.end], 0).name() != "name" {
			out = append(out, wasm[s.start:s.end])
		}
	}
	return out
}

func customSection(name string, data []byte) []byte {
	p := append(appendName(nil, name), data...)
	return appendSection(nil, secCustom, p)
}

// TestCustomSectionsKept checks custom sections (a manifest before the
// first section, another custom section at the end) are copied unchanged.
func TestCustomSectionsKept(t *testing.T) {
	orig := basicWasm(t)
	manifest := customSection("flowhost.manifest", []byte(`{"name":"basic","version":"1"}`))
	other := customSection("producers", []byte{1, 2, 3})
	var mod []byte
	mod = append(mod, orig[:8]...)
	mod = append(mod, manifest...)
	mod = append(mod, orig[8:]...)
	mod = append(mod, other...)
	inst := instrument(t, mod)
	got := customSections(t, inst)
	want := customSections(t, mod)
	if len(want) != 2 || len(got) != len(want) {
		t.Fatalf("custom sections: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("custom section %d changed: %q, want %q", i, got[i], want[i])
		}
	}
	if !bytes.HasPrefix(inst[8:], manifest) {
		t.Errorf("the manifest is no longer the first section")
	}
	// And the module still runs.
	h := &host{refill: lots, maxRefills: -1}
	m := instantiate(t, newRuntime(t, h, api.CoreFeaturesV2), inst)
	if res, err := call(m, "fib", 10); err != nil || res[0] != 55 {
		t.Fatalf("fib(10) = %v, %v", res, err)
	}
}

// TestMinimalModules instruments modules lacking the sections the
// instrumentation adds to (type, import, global, export) or having none.
func TestMinimalModules(t *testing.T) {
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"empty", []byte("\x00asm\x01\x00\x00\x00")},
		{"no imports or globals", wat(t, "minimal.wat")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := instrument(t, tc.wasm)
			h := &host{refill: lots, maxRefills: -1}
			m := instantiate(t, newRuntime(t, h, api.CoreFeaturesV2), inst)
			meterGlobals(t, m)
			if f := m.ExportedFunction("answer"); f != nil {
				if res, err := f.Call(context.Background()); err != nil || res[0] != 42 {
					t.Fatalf("answer() = %v, %v", res, err)
				}
			}
		})
	}
}

// TestRefused checks the modules Instrument refuses, and the cause it names.
func TestRefused(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00"
	// a module with one () -> () function whose body is the given bytes
	fn := func(body ...byte) []byte {
		b := []byte(hdr)
		b = appendSection(b, secType, []byte{1, 0x60, 0, 0})
		b = appendSection(b, secFunction, []byte{1, 0})
		code := append([]byte{0}, body...) // no locals
		b = appendSection(b, secCode, append(leb128.AppendUint([]byte{1}, uint64(len(code))), code...))
		return b
	}
	once, err := Instrument(basicWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	noCode := appendSection(appendSection([]byte(hdr), secType, []byte{1, 0x60, 0, 0}), secFunction, []byte{1, 0})
	exportsFuel := []byte(hdr)
	exportsFuel = appendSection(exportsFuel, secGlobal, []byte{1, 0x7e, 0, 0x42, 0, 0x0b})
	exportsFuel = appendSection(exportsFuel, secExport, append(appendName([]byte{1}, GlobalFuel), 3, 0))
	for _, tc := range []struct {
		name string
		wasm []byte
		kind error
		msg  string
	}{
		{"empty input", nil, ErrMalformed, "bad magic"},
		{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), ErrMalformed, "bad magic"},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), ErrUnsupported, "component"},
		{"instrumented twice", once, ErrUnsupported, "already imports flowhost:meter.out_of_fuel"},
		{"exports the fuel global", exportsFuel, ErrUnsupported, `already exports "flowhost_fuel"`},
		{"legacy try", fn(0x06, 0x40, 0x0b, 0x0b), ErrUnsupported, "legacy exception handling"},
		{"GC instruction", fn(0xfb, 0x00, 0x0b), ErrUnsupported, "GC instruction"},
		{"GC type", append([]byte(hdr), appendSection(nil, secType, []byte{1, 0x5f, 0})...), ErrUnsupported, "not a function type"},
		{"unknown opcode", fn(0xc5, 0x0b), ErrUnsupported, "unknown opcode 0xc5"},
		{"unknown 0xfc", fn(0xfc, 0x13, 0x0b), ErrUnsupported, "unknown instruction 0xfc 19"},
		{"truncated body", fn(0x41), ErrMalformed, "unexpected end"},
		{"bytes after end", fn(0x0b, 0x01), ErrMalformed, "after the end of the function body"},
		{"call out of range", fn(0x10, 0x05, 0x0b), ErrMalformed, "function index 5 out of range"},
		// Indices past the module's own would name what the
		// instrumentation adds: global 0 would be the fuel, label 1 the
		// function's own label past the wrapper block.
		{"global.set of the fuel", fn(0x42, 0x7f, 0x24, 0x00, 0x0b), ErrMalformed, "global index 0 out of range (0 globals)"},
		{"global.get past the globals", fn(0x23, 0x01, 0x1a, 0x0b), ErrMalformed, "global index 1 out of range"},
		{"local past the locals", fn(0x41, 0x00, 0x21, 0x00, 0x0b), ErrMalformed, "local index 0 out of range (0 locals)"},
		{"br past the function", fn(0x0c, 0x01, 0x0b), ErrMalformed, "branch to label 1 out of range (1 labels)"},
		{"br_table past the function", fn(0x41, 0x00, 0x0e, 0x01, 0x00, 0x01, 0x0b), ErrMalformed, "branch to label 1 out of range"},
		{"br_if past a block", fn(0x02, 0x40, 0x41, 0x00, 0x0d, 0x02, 0x0b, 0x0b), ErrMalformed, "branch to label 2 out of range (2 labels)"},
		{"section out of order", append(fn(0x0b), appendSection(nil, secType, []byte{0})...), ErrMalformed, "out of order"},
		{"section too long", []byte(hdr + "\x01\x10\x00"), ErrMalformed, "runs past the end"},
		{"truncated module", fn(0x0b)[:len(fn(0x0b))-5], ErrMalformed, "unexpected end"},
		{"bodies missing", noCode, ErrMalformed, "declares 1 functions but the code section has 0 bodies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Instrument(tc.wasm)
			if err == nil {
				t.Fatalf("Instrument accepted it (%d bytes out)", len(out))
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.kind, tc.msg)
			}
			t.Log(err)
		})
	}
}

// TestTableGrow: every table.grow first asks the host, with the delta,
// the table's size and its index, and grows by what the host answers; a
// refusal makes table.grow return -1 and leaves the table as it was.
func TestTableGrow(t *testing.T) {
	orig := wat(t, "tables.wat")
	inst := instrument(t, orig)
	compare(t, api.CoreFeaturesV2, orig, inst, []basicCall{
		{"grow_b", []uint64{3}, []uint64{2}},
		{"grow_a", []uint64{1}, []uint64{107}},
	})
	h := &host{refill: lots, maxRefills: -1, tableMax: 10}
	m := instantiate(t, newRuntime(t, h, api.CoreFeaturesV2), inst)
	fuel, depth := meterGlobals(t, m)
	fuel.Set(uint64(lots))
	depth.Set(100)
	for _, c := range []struct {
		fn         string
		arg        uint64
		want, size int32 // the result, and the size of $b after it
	}{
		{"grow_b", 3, 2, 5},
		{"grow_b", 6, -1, 5}, // 11 > 10: refused
		{"grow_b", 5, 5, 10},
		{"grow_a", 20, -100 + 7, 10}, // -1 × 100 + 7
		{"grow_b", 0, 10, 10},
	} {
		res, err := call(m, c.fn, c.arg)
		if err != nil {
			t.Fatalf("%s(%d): %v", c.fn, c.arg, err)
		}
		size, _ := call(m, "size_b")
		if got := int32(uint32(res[0])); got != c.want || int32(size[0]) != c.size {
			t.Errorf("%s(%d) = %d, size %d; want %d, size %d", c.fn, c.arg, got, size[0], c.want, c.size)
		}
	}
	want := []string{"3 2 1", "6 5 1", "5 5 1", "20 1 0", "0 10 1"}
	if !slices.Equal(h.grows, want) {
		t.Fatalf("table_grow calls %q; want %q", h.grows, want)
	}
	for name, want := range map[string]bool{"tables.wat": true, "basic.wat": false, "features.wat": true} {
		if got, err := GrowsTables(wat(t, name, "--enable-threads")); err != nil || got != want {
			t.Errorf("GrowsTables(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	var imports []string
	c, err := newRuntime(t, &host{}, api.CoreFeaturesV2).CompileModule(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range c.ImportedFunctions() {
		mod, name, _ := d.Import()
		imports = append(imports, mod+"."+name)
	}
	if wantImports := []string{ImportModule + "." + FuncOutOfFuel, ImportModule + "." + FuncTooDeep, ImportModule + "." + FuncTableGrow}; !slices.Equal(imports, wantImports) {
		t.Fatalf("imports %v; want %v", imports, wantImports)
	}
}
