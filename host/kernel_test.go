package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/flowhost/flowhost/internal/testmod"
)

// TestKernelWasm: the embedded kernel.wasm is what wat2wasm makes of
// kernel.wat.
func TestKernelWasm(t *testing.T) {
	if !bytes.Equal(testmod.WAT(t, "kernel.wat"), kernelWasm) {
		t.Fatal("kernel.wasm is not the compiled kernel.wat: run `wat2wasm kernel.wat -o kernel.wasm` in host/")
	}
}

// refBlock and refKernel are the kernel as it was in Go before it moved
// to WebAssembly, kept as the reference the WebAssembly kernel must agree
// with (FuzzKernel). One change: an alloc zeroes the padding before its
// block too, where the Go kernel left there what an earlier block of the
// arena's buffer had had.
type refBlock struct {
	off, len uint64
	freed    bool
}

type refKernel struct {
	arena                              []byte
	blocks                             []refBlock
	limit, varBytes, maxOutput         uint64
	inputOff, inputLen, outOff, outLen uint64
	outSet                             bool
	errOff                             uint64
}

func (k *refKernel) reset(input []byte, limit, maxOutput uint64) {
	k.arena = k.arena[:0]
	k.blocks = k.blocks[:0]
	k.limit, k.maxOutput, k.varBytes = limit, maxOutput, 0
	k.outOff, k.outLen, k.outSet, k.errOff = 0, 0, false, 0
	k.inputLen = uint64(len(input))
	k.inputOff = k.alloc(uint64(len(input)))
	if k.inputOff != 0 {
		copy(k.arena[k.inputOff-arenaBase:], input)
	}
}

func (k *refKernel) alloc(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	start := (uint64(len(k.arena)) + 7) &^ 7
	end := start + n
	if end < start || (k.limit != 0 && end+k.varBytes > k.limit) {
		fail(KindMemory, "alloc of %d bytes: host memory for this call (blocks and vars) would exceed its limit of %d bytes", n, k.limit)
	}
	if end <= uint64(cap(k.arena)) {
		old := len(k.arena)
		k.arena = k.arena[:end]
		clear(k.arena[old:end])
	} else {
		na := make([]byte, end, max(2*uint64(cap(k.arena)), end, 256))
		copy(na, k.arena)
		k.arena = na
	}
	off := start + arenaBase
	k.blocks = append(k.blocks, refBlock{off: off, len: n})
	return off
}

func (k *refKernel) find(off uint64) int {
	for i, b := range k.blocks {
		if b.off == off && !b.freed {
			return i
		}
	}
	return -1
}

func (k *refKernel) free(off uint64) {
	i := k.find(off)
	if i < 0 {
		return
	}
	if i == len(k.blocks)-1 && off != k.inputOff {
		k.blocks = k.blocks[:i]
		k.arena = k.arena[:off-arenaBase]
		return
	}
	k.blocks[i].freed = true
}

func (k *refKernel) length(off uint64) uint64 {
	if i := k.find(off); i >= 0 {
		return k.blocks[i].len
	}
	return 0
}

func (k *refKernel) bytes(fn string, off, n uint64) []byte {
	if off < arenaBase || off-arenaBase > uint64(len(k.arena)) || n > uint64(len(k.arena))-(off-arenaBase) {
		fail(KindTrap, "%s: offset %d length %d is outside host memory (%d bytes allocated)", fn, off, n, len(k.arena))
	}
	i := off - arenaBase
	return k.arena[i : i+n : i+n]
}

// op runs the ABI function name on args, as the Go kernel did.
func (k *refKernel) op(name string, args []uint64) (res uint64, hp *hostPanic) {
	defer func() {
		if r := recover(); r != nil {
			hp = r.(*hostPanic)
		}
	}()
	a := func(i int) uint64 { return args[i] }
	switch name {
	case "input_length":
		return k.inputLen, nil
	case "input_offset":
		return k.inputOff, nil
	case "input_load_u8":
		if a(0) >= k.inputLen {
			fail(KindTrap, "input_load_u8: offset %d is past the input's %d bytes", a(0), k.inputLen)
		}
		return uint64(k.arena[k.inputOff-arenaBase+a(0)]), nil
	case "input_load_u64":
		if a(0) > k.inputLen || k.inputLen-a(0) < 8 {
			fail(KindTrap, "input_load_u64: offset %d is past the input's %d bytes", a(0), k.inputLen)
		}
		i := k.inputOff - arenaBase + a(0)
		return binary.LittleEndian.Uint64(k.arena[i : i+8]), nil
	case "alloc":
		return k.alloc(a(0)), nil
	case "free":
		k.free(a(0))
	case "length", "length_unsafe":
		return k.length(a(0)), nil
	case "load_u8":
		return uint64(k.bytes("load_u8", a(0), 1)[0]), nil
	case "load_u64":
		return binary.LittleEndian.Uint64(k.bytes("load_u64", a(0), 8)), nil
	case "store_u8":
		k.bytes("store_u8", a(0), 1)[0] = byte(a(1))
	case "store_u64":
		binary.LittleEndian.PutUint64(k.bytes("store_u64", a(0), 8), a(1))
	case "output_set":
		if k.maxOutput != 0 && a(1) > k.maxOutput {
			fail(KindOutputTooLarge, "%d bytes; the limit is %d", a(1), k.maxOutput)
		}
		k.bytes("output_set", a(0), a(1))
		k.outOff, k.outLen, k.outSet = a(0), a(1), true
	case "output_offset":
		return k.outOff, nil
	case "output_length":
		return k.outLen, nil
	case "error_set":
		if a(0) != 0 && k.find(a(0)) < 0 {
			fail(KindTrap, "error_set: offset %d is not an allocated block", a(0))
		}
		k.errOff = a(0)
	case "error_get":
		return k.errOff, nil
	default:
		panic("unknown op " + name)
	}
	return 0, nil
}

// kernelOps are the functions of kernel.wat, with their parameters.
var kernelOps = []struct {
	name   string
	params int
}{
	{"input_length", 0}, {"input_offset", 0}, {"input_load_u8", 1}, {"input_load_u64", 1},
	{"alloc", 1}, {"free", 1}, {"length", 1}, {"length_unsafe", 1},
	{"load_u8", 1}, {"load_u64", 1}, {"store_u8", 2}, {"store_u64", 2},
	{"output_set", 2}, {"output_offset", 0}, {"output_length", 0},
	{"error_set", 1}, {"error_get", 0},
}

// testKernel is a WebAssembly kernel run directly, as a guest's imports
// would call it.
type testKernel struct {
	t     testing.TB
	k     *kernel
	funcs map[string]api.Function
}

// kernelEngine is an engine to run test kernels in.
func kernelEngine(t testing.TB) *Engine {
	e, err := New(context.Background(), Config{CacheDir: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func newTestKernel(t testing.TB, e *Engine, lim Limits) *testKernel {
	if e == nil {
		e = kernelEngine(t)
	}
	k := &kernel{}
	if err := k.start(context.Background(), e, lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.close(context.Background()) })
	tk := &testKernel{t: t, k: k, funcs: map[string]api.Function{}}
	for _, op := range kernelOps {
		tk.funcs[op.name] = k.wasm.mod.ExportedFunction(op.name)
	}
	return tk
}

// op calls the kernel's function name on args: its result (0 for none),
// or the failure the host makes of its trap.
func (tk *testKernel) op(name string, args []uint64) (uint64, *hostPanic) {
	fn := tk.funcs[name]
	vals := make([]uint64, len(args))
	copy(vals, args)
	if name == "store_u8" {
		vals[1] = uint64(uint32(vals[1])) // an i32
	}
	res, err := fn.Call(context.Background(), vals...)
	if err != nil {
		hp := tk.k.kernelFailure()
		if hp == nil {
			tk.t.Fatalf("%s%v: %v, and the kernel recorded no failure", name, args, err)
		}
		return 0, hp
	}
	if len(res) == 0 {
		return 0, nil
	}
	return res[0], nil
}

// arena is the kernel's arena: its memory from arenaBase to the arena's end.
func (tk *testKernel) arena() []byte {
	return tk.k.wasm.mem.buf[arenaBase:tk.k.wasm.end.Get()]
}

// kernelRun drives the WebAssembly kernel and the reference alike, and
// fails the test where they differ.
type kernelRun struct {
	t   testing.TB
	tk  *testKernel
	ref *refKernel
	lim Limits
	log []string // what ran, for the failure message
}

func newKernelRun(t testing.TB, e *Engine, lim Limits) *kernelRun {
	return &kernelRun{t: t, tk: newTestKernel(t, e, lim), ref: &refKernel{}, lim: lim}
}

func (r *kernelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("after\n  %s\n%s", strings.Join(r.log, "\n  "), fmt.Sprintf(format, args...))
}

// reset starts a call with input in both.
func (r *kernelRun) reset(input []byte) *hostPanic {
	r.t.Helper()
	r.log = append(r.log, fmt.Sprintf("reset(%d bytes)", len(input)))
	hp := r.tk.k.reset(input, r.lim.Memory, r.lim.MaxOutput)
	var want *hostPanic
	func() {
		defer func() {
			if p := recover(); p != nil {
				want = p.(*hostPanic)
			}
		}()
		r.ref.reset(input, r.lim.Memory, r.lim.MaxOutput)
	}()
	r.same("reset", 0, hp, 0, want)
	if hp == nil {
		r.check()
	}
	return hp
}

// setVars makes the vars take n bytes, as var_set does.
func (r *kernelRun) setVars(n uint64) {
	r.log = append(r.log, fmt.Sprintf("vars take %d bytes", n))
	r.tk.k.varBytes = n
	r.tk.k.wasm.varBytes.Set(n)
	r.ref.varBytes = n
}

// op runs name on args in both; false when it failed (the call is over).
func (r *kernelRun) op(name string, args ...uint64) bool {
	r.t.Helper()
	r.log = append(r.log, fmt.Sprintf("%s%v", name, args))
	got, gotErr := r.tk.op(name, args)
	want, wantErr := r.ref.op(name, args)
	r.same(name, got, gotErr, want, wantErr)
	if gotErr != nil {
		return false
	}
	r.check()
	return true
}

func (r *kernelRun) same(name string, got uint64, gotErr *hostPanic, want uint64, wantErr *hostPanic) {
	r.t.Helper()
	switch {
	case (gotErr == nil) != (wantErr == nil):
		r.fatalf("%s: failure %v, want %v", name, gotErr, wantErr)
	case gotErr != nil && (gotErr.kind != wantErr.kind || gotErr.msg != wantErr.msg):
		r.fatalf("%s: failure %v %q, want %v %q", name, gotErr.kind, gotErr.msg, wantErr.kind, wantErr.msg)
	case got != want:
		r.fatalf("%s = %d, want %d", name, got, want)
	}
}

// check compares what the guest and the host can see: the arena, every
// block's length, the output and the error.
func (r *kernelRun) check() {
	r.t.Helper()
	if a := r.tk.arena(); !bytes.Equal(a, r.ref.arena) {
		r.fatalf("arena of %d bytes %x\nwant %d bytes %x", len(a), a, len(r.ref.arena), r.ref.arena)
	}
	for _, b := range r.ref.blocks {
		if got, want := r.tk.k.length(b.off), r.ref.length(b.off); got != want {
			r.fatalf("length(%d) = %d, want %d", b.off, got, want)
		}
	}
	out, set := r.tk.k.output()
	errBlock := r.tk.k.errorBlock()
	if set != r.ref.outSet || (set && !bytes.Equal(out, r.ref.arena[r.ref.outOff-arenaBase:][:r.ref.outLen])) {
		r.fatalf("output %v %q, want %v", set, out, r.ref.outSet)
	}
	var wantErr []byte
	if i := r.ref.find(r.ref.errOff); r.ref.errOff != 0 && i >= 0 {
		wantErr = r.ref.arena[r.ref.errOff-arenaBase:][:r.ref.blocks[i].len]
	}
	if !bytes.Equal(errBlock, wantErr) {
		r.fatalf("error block %q, want %q", errBlock, wantErr)
	}
	if size, most := r.tk.k.wasm.mem.size(), kernelMemoryMax(r.lim.Memory); size > most && size > kernelPage {
		r.fatalf("kernel memory of %d bytes; the call's limit of %d bytes allows %d", size, r.lim.Memory, most)
	}
}

// TestKernelFunctions runs every function of the kernel, within and out
// of bounds, against the reference.
func TestKernelFunctions(t *testing.T) {
	r := newKernelRun(t, nil, Limits{Memory: 1 << 20, MaxOutput: 100})
	r.reset([]byte("0123456789abc")) // 13 bytes at 8: the arena is 13 bytes
	for _, c := range []struct {
		op   string
		args []uint64
		ok   bool
	}{
		{"input_length", nil, true},
		{"input_offset", nil, true},
		{"input_load_u8", []uint64{0}, true},
		{"input_load_u8", []uint64{12}, true},
		{"input_load_u64", []uint64{5}, true},
		{"alloc", []uint64{0}, true},   // 0: no block
		{"alloc", []uint64{3}, true},   // 24 (the input ends at 21)
		{"alloc", []uint64{100}, true}, // 32
		{"length", []uint64{24}, true}, // 3
		{"length", []uint64{25}, true}, // 0: not a block
		{"length", []uint64{0}, true},  // 0
		{"length_unsafe", []uint64{32}, true},
		{"store_u8", []uint64{24, 0x1ff}, true}, // stores 0xff
		{"store_u64", []uint64{124, 0x0102030405060708}, true},
		{"store_u8", []uint64{21, 7}, true}, // padding is arena
		{"load_u8", []uint64{24}, true},
		{"load_u64", []uint64{21}, true},
		{"load_u64", []uint64{124}, true},
		{"free", []uint64{24}, true}, // not the newest: marked
		{"length", []uint64{24}, true},
		{"free", []uint64{24}, true}, // twice: a no-op
		{"free", []uint64{999}, true},
		{"free", []uint64{8}, true}, // the input: marked, never given back
		{"input_load_u64", []uint64{0}, true},
		{"free", []uint64{32}, true}, // the newest: given back
		{"alloc", []uint64{5}, true}, // 32 again, zeroed
		{"load_u8", []uint64{32}, true},
		{"output_set", []uint64{32, 5}, true},
		{"output_offset", nil, true},
		{"output_length", nil, true},
		{"error_set", []uint64{32}, true},
		{"error_get", nil, true},
		{"error_set", []uint64{0}, true},
		{"error_get", nil, true},
	} {
		if r.op(c.op, c.args...) != c.ok {
			t.Fatalf("%s%v: ok = %v", c.op, c.args, !c.ok)
		}
	}
	// Each failure ends its call; the next call starts clean.
	for _, c := range []struct {
		op   string
		args []uint64
		msg  string
	}{
		{"input_load_u8", []uint64{13}, "input_load_u8: offset 13 is past the input's 13 bytes"},
		{"input_load_u8", []uint64{1 << 63}, "input_load_u8: offset 9223372036854775808 is past the input's 13 bytes"},
		{"input_load_u64", []uint64{6}, "input_load_u64: offset 6 is past the input's 13 bytes"},
		{"input_load_u64", []uint64{^uint64(0) - 3}, "input_load_u64: offset 18446744073709551612 is past the input's 13 bytes"},
		{"load_u8", []uint64{7}, "load_u8: offset 7 length 1 is outside host memory (13 bytes allocated)"},
		{"load_u8", []uint64{21}, "load_u8: offset 21 length 1 is outside host memory (13 bytes allocated)"},
		{"load_u64", []uint64{14}, "load_u64: offset 14 length 8 is outside host memory (13 bytes allocated)"},
		{"load_u64", []uint64{1<<32 + 8}, "load_u64: offset 4294967304 length 8 is outside host memory (13 bytes allocated)"},
		{"store_u8", []uint64{^uint64(0), 1}, "store_u8: offset 18446744073709551615 length 1 is outside host memory (13 bytes allocated)"},
		{"store_u64", []uint64{0, 1}, "store_u64: offset 0 length 8 is outside host memory (13 bytes allocated)"},
		{"output_set", []uint64{8, 14}, "output_set: offset 8 length 14 is outside host memory (13 bytes allocated)"},
		{"output_set", []uint64{8, ^uint64(0)}, "output too large"},
		{"output_set", []uint64{8, 101}, "101 bytes; the limit is 100"},
		{"error_set", []uint64{9}, "error_set: offset 9 is not an allocated block"},
		{"alloc", []uint64{1 << 20}, "alloc of 1048576 bytes: host memory for this call (blocks and vars) would exceed its limit of 1048576 bytes"},
		{"alloc", []uint64{^uint64(0)}, "alloc of 18446744073709551615 bytes: host memory for this call (blocks and vars) would exceed its limit of 1048576 bytes"},
	} {
		r.reset([]byte("0123456789abc"))
		if r.op(c.op, c.args...) {
			t.Fatalf("%s%v succeeded", c.op, c.args)
		}
		if hp := r.tk.k.kernelFailure(); !strings.Contains(hp.kind.String()+": "+hp.msg, c.msg) {
			t.Fatalf("%s%v: %v: %s, want %q", c.op, c.args, hp.kind, hp.msg, c.msg)
		}
	}
	// An input past the limit fails the call before it starts.
	r.lim.Memory = 8
	if hp := r.reset([]byte("0123456789")); hp == nil || hp.kind != KindMemory {
		t.Fatalf("reset with an input past the limit: %v", hp)
	}
}

// TestKernelLimit: the blocks and the vars share the call's limit, and
// the kernel memory grows to hold what the limit allows, and no more.
func TestKernelLimit(t *testing.T) {
	const limit = 4 << 20
	r := newKernelRun(t, nil, Limits{Memory: limit})
	r.reset(nil)
	r.setVars(1 << 20)
	if !r.op("alloc", 3<<20) || r.op("alloc", 1) {
		t.Fatal("the vars and blocks went past the limit, or not up to it")
	}
	// Many small blocks: the table of blocks grows with them.
	r.reset([]byte("x"))
	alloc := r.tk.funcs["alloc"]
	for i := 0; i < limit/8-1; i++ {
		if _, err := alloc.Call(context.Background(), 1); err != nil {
			t.Fatalf("alloc %d: %v", i, r.tk.k.kernelFailure())
		}
	}
	if _, hp := r.tk.op("alloc", []uint64{1}); hp == nil || hp.kind != KindMemory {
		t.Fatalf("an alloc past the limit: %v", hp)
	}
	if size, most := r.tk.k.wasm.mem.size(), kernelMemoryMax(limit); size > most {
		t.Fatalf("kernel memory of %d bytes, past %d", size, most)
	}
	// The blocks are all there, each 1 byte long.
	for _, off := range []uint64{16, 24, limit - 8} {
		if n := r.tk.k.length(off); n != 1 {
			t.Fatalf("length(%d) = %d, want 1", off, n)
		}
	}
	// A call with no limit can take what the kernel memory can hold.
	tk := newTestKernel(t, nil, Limits{})
	if hp := tk.k.reset(nil, 0, 0); hp != nil {
		t.Fatal(hp)
	}
	if _, hp := tk.op("alloc", []uint64{1 << 40}); hp == nil || hp.kind != KindMemory || !strings.Contains(hp.msg, "alloc of 1099511627776 bytes") {
		t.Fatalf("alloc of 1 TiB with no limit: %v", hp)
	}
}

// TestKernelReset: nothing of a call reaches the next: its blocks, its
// output, its error, its failure, its bytes.
func TestKernelReset(t *testing.T) {
	r := newKernelRun(t, nil, Limits{Memory: 1 << 20, MaxOutput: 1 << 20})
	r.reset([]byte("secret secret secret"))
	r.op("alloc", 1000)
	for off := uint64(28); off < 28+1000; off += 8 {
		r.op("store_u64", off, 0x5345435245545321)
	}
	r.op("output_set", 28, 1000)
	r.op("error_set", 28)
	r.op("free", 8)
	r.op("load_u8", 1<<40) // a failure, recorded
	r.reset([]byte("x"))
	if hp := r.tk.k.kernelFailure(); hp != nil {
		t.Fatalf("the failure of the last call is still there: %v", hp)
	}
	if out, set := r.tk.k.output(); set || out != nil || r.tk.k.errorBlock() != nil {
		t.Fatalf("the last call's output or error is still there: %v %q %q", set, out, r.tk.k.errorBlock())
	}
	// A new block, and the padding before it, are zero, though the
	// kernel memory still holds the last call's bytes.
	r.op("alloc", 1000)
	for off := uint64(9); off < 16+1000; off++ {
		if !r.op("load_u8", off) {
			t.Fatal("load_u8 failed")
		}
	}
	if bytes.Contains(r.tk.arena(), []byte("SECRET")) || bytes.Contains(r.tk.arena(), []byte("secret")) {
		t.Fatal("a call sees the bytes of the last")
	}
}

// TestKernelPages: a kernel memory's first page, given back to the pool
// by a closed instance with its bytes, shows none of them to the next.
func TestKernelPages(t *testing.T) {
	for range 3 {
		tk := newTestKernel(t, nil, Limits{Memory: 1 << 20})
		if hp := tk.k.reset(nil, 1<<20, 0); hp != nil {
			t.Fatal(hp)
		}
		off, hp := tk.op("alloc", []uint64{60000})
		if hp != nil {
			t.Fatal(hp)
		}
		for i := off; i < off+60000; i++ {
			if v, _ := tk.op("load_u8", []uint64{i}); v != 0 {
				t.Fatalf("byte %d of a new block is %d", i, v)
			}
		}
		for i := off; i+8 <= off+60000; i += 8 {
			tk.op("store_u64", []uint64{i, ^uint64(0)})
		}
		tk.k.close(context.Background())
	}
}

// FuzzKernel: whatever a guest passes to the kernel's functions, in any
// order, the WebAssembly kernel does what the Go kernel did: the same
// results, the same failures, the same arena.
func FuzzKernel(f *testing.F) {
	f.Add([]byte("{}"), uint32(1<<16), []byte{4, 0, 3, 10, 1, 12, 2, 0, 8})
	f.Add([]byte("0123456789abcdef0"), uint32(4096), []byte{4, 2, 0, 0, 0, 1, 0, 0, 0, 0, 5, 1, 0, 6, 1, 1, 10, 1, 0, 2, 255, 12, 1, 0, 0, 17})
	f.Add([]byte(""), uint32(100), []byte{4, 0, 90, 4, 0, 5, 5, 1, 1, 18, 2, 8, 15, 1, 1, 16})
	e := kernelEngine(f)
	f.Fuzz(func(t *testing.T, input []byte, limit uint32, prog []byte) {
		lim := Limits{Memory: uint64(limit%(4<<20)) + 1, MaxOutput: uint64(limit % 5000)}
		r := newKernelRun(t, e, lim)
		if r.reset(input) != nil {
			return
		}
		p := fuzzProg{b: prog}
		for steps := 0; !p.done() && steps < 200; steps++ {
			code := int(p.byte())
			switch {
			case code == len(kernelOps): // a new call
				if r.reset(p.bytes()) != nil {
					return
				}
				continue
			case code == len(kernelOps)+1: // vars that take some bytes
				r.setVars(uint64(p.byte()) << (p.byte() % 24))
				continue
			case code > len(kernelOps):
				code %= len(kernelOps)
			}
			op := kernelOps[code]
			args := make([]uint64, op.params)
			for i := range args {
				args[i] = p.arg(r)
			}
			if !r.op(op.name, args...) {
				if r.reset(p.bytes()) != nil { // the call failed: the next one
					return
				}
			}
		}
	})
}

// fuzzProg reads a fuzzed program: ops and their arguments.
type fuzzProg struct {
	b []byte
	i int
}

func (p *fuzzProg) done() bool { return p.i >= len(p.b) }

func (p *fuzzProg) byte() byte {
	if p.done() {
		return 0
	}
	p.i++
	return p.b[p.i-1]
}

func (p *fuzzProg) u64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(p.byte())
	}
	return v
}

// bytes is an input of up to 63 bytes.
func (p *fuzzProg) bytes() []byte {
	n := int(p.byte() % 64)
	b := make([]byte, 0, n)
	for range n {
		b = append(b, p.byte())
	}
	return b
}

// arg is an argument: a small number, an offset near a block's, a wild
// number, or one at an edge.
func (p *fuzzProg) arg(r *kernelRun) uint64 {
	sel := p.byte()
	end := uint64(len(r.ref.arena)) + arenaBase
	switch sel % 4 {
	case 0:
		return uint64(p.byte())
	case 1:
		if len(r.ref.blocks) == 0 {
			return end
		}
		b := r.ref.blocks[int(p.byte())%len(r.ref.blocks)]
		return b.off + uint64(int64(sel>>2)%16-8)
	case 2:
		return p.u64()
	}
	edges := []uint64{0, 1, 7, 8, end, end - 1, end - 8, end + 1, 1 << 32, 1<<32 + 8, 1 << 63, ^uint64(0), ^uint64(0) - 7, r.lim.Memory, r.lim.MaxOutput, r.ref.inputLen}
	return edges[int(sel>>2)%len(edges)]
}

// TestKernelFailureCodes: every code kernel.wat fails with has its
// message.
func TestKernelFailureCodes(t *testing.T) {
	tk := newTestKernel(t, nil, Limits{})
	for code := uint64(1); code < 16+uint64(len(bytesFuncs)); code++ {
		if code > 6 && code < 16 {
			continue
		}
		tk.k.wasm.mod.ExportedGlobal("fail").(api.MutableGlobal).Set(code)
		hp := tk.k.kernelFailure()
		if hp == nil || strings.Contains(hp.msg, "failed with code") {
			t.Errorf("code %d: %v", code, hp)
		}
	}
	tk.k.wasm.mod.ExportedGlobal("fail").(api.MutableGlobal).Set(0)
	if hp := tk.k.failure(errors.New("boom")); hp.kind != KindTrap || !strings.Contains(hp.msg, "boom") {
		t.Errorf("an unrecorded failure: %v", hp)
	}
}

// TestKernelGrowthAmortized: however a call's blocks fill the kernel
// memory, it grows a few times, not a page at a time. Past half the most
// a call may have (kernelMemoryMax), doubling failed and the kernel grew
// by the one page an alloc needed, copying the whole memory (the Go
// buffer, and its table of blocks) at each: with a limit of 24 MiB,
// allocs of a byte took 266 growths, 10 GB of copies, and 5.8 s of a
// budget of 16M units of fuel.
func TestKernelGrowthAmortized(t *testing.T) {
	for _, c := range []struct {
		limit, n uint64 // the call's memory limit, the size of each alloc
	}{{24 << 20, 1}, {10 << 20, 1}, {10 << 20, 4000}, {3 << 20, 100000}} {
		t.Run(fmt.Sprintf("%d bytes by %d", c.limit, c.n), func(t *testing.T) {
			tk := newTestKernel(t, nil, Limits{Memory: c.limit})
			if hp := tk.k.reset(nil, c.limit, 0); hp != nil {
				t.Fatal(hp)
			}
			grows, size := 0, tk.k.wasm.mem.size()
			for {
				_, hp := tk.op("alloc", []uint64{c.n})
				if hp != nil {
					if hp.kind != KindMemory {
						t.Fatal(hp)
					}
					break
				}
				if s := tk.k.wasm.mem.size(); s != size {
					grows, size = grows+1, s
				}
			}
			if size > kernelMemoryMax(c.limit) {
				t.Fatalf("kernel memory of %d bytes; the limit allows %d", size, kernelMemoryMax(c.limit))
			}
			t.Logf("%d growths, to %d bytes", grows, size)
			if grows > 40 {
				t.Fatalf("the kernel memory grew %d times, to %d bytes", grows, size)
			}
		})
	}
}
