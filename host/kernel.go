package host

import (
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/flowhost/flowhost/abi"
)

// The kernel is the host side of the Extism guest ABI: a per-instance
// arena of blocks that guests address by offset through load/store
// imports, plus the call's input, output, error, config and vars. It is
// reset at the start of every call, so nothing a call leaves behind in it
// reaches the next call.
//
// It is in two halves. The functions that only touch the arena, the
// input and the output run in WebAssembly, in an instance of kernel.wasm
// (source: kernel.wat) that each guest instance has for itself, and whose
// linear memory holds the arena: a guest's calls of them are calls
// between two WebAssembly modules, with none of the exits to Go that
// cost ~70 ns a call.
// The others (config, vars, logs, HTTP) are Go functions of the host
// module kernelGoModule, which the WebAssembly kernel imports and exports
// again, so that the guest finds every function of the ABI in the one
// module its "extism:host/env" imports resolve to.

// arenaBase is the offset of the first block: offset 0 means "no block".
const arenaBase = 8

// kernelGoModule is the host module of the ABI's Go functions, imported
// by the WebAssembly kernel only (abi.CheckImports refuses it to guests).
const kernelGoModule = "flowhost:kernel"

// kernelWasm is the WebAssembly half of the kernel.
//
//go:embed kernel.wasm
var kernelWasm []byte

// maxKeptKernel is the largest kernel memory an instance keeps between
// calls: an instance whose call grew it past that is discarded, so that
// no large arena stays alive (WebAssembly memories do not shrink).
const maxKeptKernel = 1 << 20

// kernelPage is the kernel memory's initial size: one WebAssembly page.
const kernelPage = 1 << 16

// maxKernelPages bounds the kernel memory (kernel.wat declares it), so
// that its size in bytes fits in 32 bits.
const maxKernelPages = 65535

// maxLogLines bounds the guest log lines one call may emit; the rest are
// counted and reported once.
const maxLogLines = 64

// maxLogBytes bounds one guest log line.
const maxLogBytes = 4 << 10

// Vars: at most maxVars of at most maxVarValue bytes each, and all of
// them, keys and values with varOverhead bytes each for the map's own
// bookkeeping, count against the call's memory limit with the blocks.
const (
	maxVars     = 1024
	maxVarValue = 1 << 20
	varOverhead = 64
)

type kernel struct {
	wasm      wasmKernel
	limit     uint64 // cap on the arena and the vars together; 0 for none
	maxOutput uint64

	config   map[string]string
	vars     map[string][]byte
	varBytes uint64 // what vars take: keys, values and varOverhead each

	meter    meterState
	mem      *linearMemory // the instance's; its tables grow through the meter
	maxDepth int32
	grants   *Grants // of the instance; fixed for its life

	httpStatus  int32
	httpHeaders []byte
	httpClient  *http.Client

	logger   *slog.Logger
	logLines int
	callCtx  context.Context // the current call's context (guest log labels)
	module   string
	task     string
}

// wasmKernel is an instance's WebAssembly kernel: its module, its memory
// (the arena: block off is at mem.buf[off]), the functions the host
// calls and the globals it reads.
type wasmKernel struct {
	mod                  api.Module
	mem                  kernelMemory
	reset, alloc, length api.Function
	end, errOff          api.Global
	varBytes             api.MutableGlobal
	fail, failA, failB   api.Global
	failC                api.Global
	stack                []uint64
}

type kernelKey struct{}

func kernelFrom(ctx context.Context) *kernel {
	return ctx.Value(kernelKey{}).(*kernel)
}

// start instantiates the instance's WebAssembly kernel, for a start-up
// under lim.
func (k *kernel) start(ctx context.Context, e *Engine, lim Limits) error {
	w := &k.wasm
	w.mem.max = kernelMemoryMax(lim.Memory)
	kctx := experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, _ uint64) experimental.LinearMemory {
		return &w.mem
	}))
	mod, err := e.rt.InstantiateModule(kctx, e.kernel, wazero.NewModuleConfig().WithName("").WithStartFunctions().WithRandSource(zeroReader{}))
	if err != nil {
		return fmt.Errorf("instantiate the kernel: %w", err)
	}
	w.mod = mod
	w.reset, w.alloc, w.length = mod.ExportedFunction("reset"), mod.ExportedFunction("alloc"), mod.ExportedFunction("length")
	w.end, w.errOff = mod.ExportedGlobal("end"), mod.ExportedGlobal("err_off")
	w.varBytes = mod.ExportedGlobal("var_bytes").(api.MutableGlobal)
	w.fail, w.failA, w.failB, w.failC = mod.ExportedGlobal("fail"), mod.ExportedGlobal("fail_a"), mod.ExportedGlobal("fail_b"), mod.ExportedGlobal("fail_c")
	w.stack = make([]uint64, 3)
	// The start-up's blocks count against the limit as a call's do.
	if hp := k.reset(nil, lim.Memory, 0); hp != nil {
		return &startError{kind: hp.kind, msg: hp.msg}
	}
	return nil
}

// close releases the WebAssembly kernel.
func (k *kernel) close(ctx context.Context) {
	if k.wasm.mod != nil {
		_ = k.wasm.mod.Close(ctx)
	}
}

// reset prepares the kernel for a call: empties the arena and stores the
// input; a failure (an input past the limit) is returned.
func (k *kernel) reset(input []byte, limit, maxOutput uint64) *hostPanic {
	k.limit = limit
	k.maxOutput = maxOutput
	k.logLines = 0
	k.httpStatus, k.httpHeaders = 0, nil
	clear(k.vars)
	k.varBytes = 0
	w := &k.wasm
	w.mem.max = kernelMemoryMax(limit)
	s := w.stack
	s[0], s[1], s[2] = uint64(len(input)), limit, maxOutput
	if err := w.reset.CallWithStack(context.Background(), s); err != nil {
		return k.failure(err)
	}
	copy(w.mem.buf[s[0]:], input)
	return nil
}

// failure is what stopped a call of the WebAssembly kernel that returned
// err: the failure it recorded before it trapped (see kernel.wat), or
// err as a trap.
func (k *kernel) failure(err error) *hostPanic {
	if hp := k.kernelFailure(); hp != nil {
		return hp
	}
	return &hostPanic{kind: KindTrap, msg: fmt.Sprintf("the host's kernel failed: %v", firstLine(err))}
}

// bytesFuncs name the functions of kernel.wat's failure codes 16 and up.
var bytesFuncs = [...]string{"load_u8", "load_u64", "store_u8", "store_u64", "output_set"}

// kernelFailure is the failure the WebAssembly kernel recorded before it
// trapped, or nil when it recorded none.
func (k *kernel) kernelFailure() *hostPanic {
	w := &k.wasm
	if w.fail == nil {
		return nil
	}
	code := uint32(w.fail.Get())
	a, b, c := w.failA.Get(), w.failB.Get(), w.failC.Get()
	hp := func(kind Kind, format string, args ...any) *hostPanic {
		return &hostPanic{kind: kind, msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case code == 0:
		return nil
	case code == 1:
		return hp(KindMemory, "alloc of %d bytes: host memory for this call (blocks and vars) would exceed its limit of %d bytes", a, b)
	case code == 2:
		return hp(KindTrap, "error_set: offset %d is not an allocated block", a)
	case code == 3:
		return hp(KindTrap, "input_load_u8: offset %d is past the input's %d bytes", a, b)
	case code == 4:
		return hp(KindTrap, "input_load_u64: offset %d is past the input's %d bytes", a, b)
	case code == 5:
		return hp(KindOutputTooLarge, "%d bytes; the limit is %d", a, b)
	case code == 6:
		return hp(KindMemory, "alloc of %d bytes: the blocks of this call would take %d bytes of host memory, more than it holds for a call", a, b)
	case code >= 16 && int(code-16) < len(bytesFuncs):
		return hp(KindTrap, "%s: offset %d length %d is outside host memory (%d bytes allocated)", bytesFuncs[code-16], a, b, c)
	}
	return hp(KindTrap, "the host's kernel failed with code %d", code)
}

// call runs the WebAssembly kernel's fn on s, from a Go function of the
// ABI, and stops the guest's call when it fails.
func (k *kernel) call(fn api.Function, s []uint64) {
	if err := fn.CallWithStack(context.Background(), s); err != nil {
		panic(k.failure(err))
	}
}

func (k *kernel) alloc(n uint64) uint64 {
	s := k.wasm.stack
	s[0] = n
	k.call(k.wasm.alloc, s)
	return s[0]
}

// allocCopy stores b in a new block and returns its offset (0 for no
// bytes), charging the guest for the copy (bulkCost).
func (k *kernel) allocCopy(b []byte) uint64 {
	k.meter.charge(bulkCost(uint64(len(b))))
	off := k.alloc(uint64(len(b)))
	if off != 0 {
		copy(k.wasm.mem.buf[off:], b)
	}
	return off
}

// length is the length of the live block at off, 0 when there is none
// (a block has one byte at least).
func (k *kernel) length(off uint64) uint64 {
	s := k.wasm.stack
	s[0] = off
	k.call(k.wasm.length, s)
	return s[0]
}

// arenaLen is the arena's length: its blocks and the padding between them.
func (k *kernel) arenaLen() uint64 { return k.wasm.end.Get() - arenaBase }

// block returns the bytes of the live block at off, nil when there is none.
func (k *kernel) block(off uint64) []byte {
	if off == 0 {
		return nil
	}
	n := k.length(off)
	if n == 0 {
		return nil
	}
	return k.wasm.mem.buf[off : off+n : off+n]
}

func (k *kernel) blockBytes(fn string, off uint64) []byte {
	if off == 0 {
		return nil
	}
	b := k.block(off)
	if b == nil {
		fail(KindTrap, "%s: offset %d is not an allocated block", fn, off)
	}
	return b
}

// output is the call's output, if it set one (kernel.wat keeps its
// offset and length at address 0, where no block is).
func (k *kernel) output() (out []byte, set bool) {
	buf := k.wasm.mem.buf
	off, n := uint64(binary.LittleEndian.Uint32(buf)), uint64(binary.LittleEndian.Uint32(buf[4:]))
	if off == 0 {
		return nil, false
	}
	return buf[off : off+n : off+n], true
}

// errorBlock is the block error_set named, nil when there is none.
func (k *kernel) errorBlock() []byte { return k.block(k.wasm.errOff.Get()) }

// kernelMemoryMax is the most the kernel memory may grow to in a call
// limited to limit bytes (0: none): the arena and its table of blocks
// (8 bytes a block, and a block takes 8 bytes of the arena at least).
func kernelMemoryMax(limit uint64) uint64 {
	const most = maxKernelPages * kernelPage
	if limit == 0 || limit > most/2 {
		return most
	}
	return (2*limit + 32 + kernelPage - 1) &^ (kernelPage - 1)
}

// kernelMemory backs a WebAssembly kernel's linear memory: it refuses to
// grow past max, and takes its first page from a pool. The kernel reads
// no byte it has not written or zeroed in the same call (kernel.wat), so
// a page may come back from another instance as it was left.
type kernelMemory struct {
	buf  []byte
	page *[kernelPage]byte // buf's first backing, from kernelPages
	max  uint64
}

var _ experimental.LinearMemory = (*kernelMemory)(nil)

var kernelPages = sync.Pool{New: func() any { return new([kernelPage]byte) }}

// Reallocate sizes the memory to size bytes, or returns nil past max.
func (m *kernelMemory) Reallocate(size uint64) []byte {
	if m.buf == nil && size == kernelPage {
		m.page = kernelPages.Get().(*[kernelPage]byte)
		m.buf = m.page[:]
		return m.buf
	}
	if m.buf != nil && size > m.max {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	nb := make([]byte, size)
	copy(nb, m.buf)
	m.buf, m.page = nb, nil // the page stays with the garbage: a slice of it may still be read
	return m.buf
}

// Free gives the first page back to the pool.
func (m *kernelMemory) Free() {
	if m.page != nil {
		kernelPages.Put(m.page)
	}
	m.buf, m.page = nil, nil
}

// size is the memory's size in bytes.
func (m *kernelMemory) size() uint64 { return uint64(len(m.buf)) }

// zeroReader gives the kernel, which reads no randomness, a source that
// costs nothing to make.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// varSet sets the var named by the block at keyOff to the block at
// valOff, or deletes it when valOff is 0.
func (k *kernel) varSet(keyOff, valOff uint64) {
	key := k.varKey("var_set", keyOff)
	old, had := k.vars[string(key)]
	size := func(v []byte) uint64 { return uint64(len(key)) + uint64(len(v)) + varOverhead }
	if had {
		k.varBytes -= size(old)
	}
	if valOff == 0 {
		delete(k.vars, string(key))
		k.wasm.varBytes.Set(k.varBytes)
		return
	}
	v := k.blockBytes("var_set", valOff)
	if (!had && len(k.vars) >= maxVars) || len(v) > maxVarValue {
		fail(KindMemory, "var_set %.100q: vars are limited to %d entries of at most %d bytes", key, maxVars, maxVarValue)
	}
	if total := k.arenaLen() + k.varBytes + size(v); k.limit != 0 && total > k.limit {
		fail(KindMemory, "var_set: vars and blocks of this call would take %d bytes; its memory limit is %d bytes", total, k.limit)
	}
	if k.vars == nil {
		k.vars = map[string][]byte{}
	}
	k.meter.charge(bulkCost(uint64(len(v))))
	k.vars[string(key)] = append([]byte(nil), v...)
	k.varBytes += size(v)
	k.wasm.varBytes.Set(k.varBytes)
}

// varKey is the block at off, the name of a var or a config key, which
// fn hashes, and may copy, whatever its length: the guest pays for that
// as for a copy (a 16 MB name in a loop of var_set ran 29 s past a 100 ms
// timeout).
func (k *kernel) varKey(fn string, off uint64) []byte {
	key := k.blockBytes(fn, off)
	k.meter.charge(bulkCost(uint64(len(key))))
	return key
}

// Extism log levels, as returned by get_log_level.
const (
	extismTrace = 0
	extismDebug = 1
	extismInfo  = 2
	extismWarn  = 3
	extismError = 4
	extismOff   = 0x7fffffff
)

type hostFunc struct {
	name string
	fn   api.GoModuleFunc
}

// hostFuncs implements the functions of abi.HostFuncs that kernel.wat
// imports from kernelGoModule; kernel.wat implements the others.
var hostFuncs = []hostFunc{
	{"config_get", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		key := k.varKey("config_get", s[0])
		v, ok := k.config[string(key)]
		if !ok {
			s[0] = 0
			return
		}
		s[0] = k.allocCopy([]byte(v))
	}},
	{"var_get", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		v, ok := k.vars[string(k.varKey("var_get", s[0]))]
		if !ok {
			s[0] = 0
			return
		}
		s[0] = k.allocCopy(v)
	}},
	{"var_set", func(ctx context.Context, _ api.Module, s []uint64) {
		kernelFrom(ctx).varSet(s[0], s[1])
	}},
	{"log_trace", func(ctx context.Context, _ api.Module, s []uint64) { kernelFrom(ctx).log(slog.LevelDebug-4, s[0]) }},
	{"log_debug", func(ctx context.Context, _ api.Module, s []uint64) { kernelFrom(ctx).log(slog.LevelDebug, s[0]) }},
	{"log_info", func(ctx context.Context, _ api.Module, s []uint64) { kernelFrom(ctx).log(slog.LevelInfo, s[0]) }},
	{"log_warn", func(ctx context.Context, _ api.Module, s []uint64) { kernelFrom(ctx).log(slog.LevelWarn, s[0]) }},
	{"log_error", func(ctx context.Context, _ api.Module, s []uint64) { kernelFrom(ctx).log(slog.LevelError, s[0]) }},
	{"get_log_level", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		switch {
		case k.logger == nil:
			s[0] = extismOff
		case k.logger.Enabled(ctx, slog.LevelDebug-4):
			s[0] = extismTrace
		case k.logger.Enabled(ctx, slog.LevelDebug):
			s[0] = extismDebug
		case k.logger.Enabled(ctx, slog.LevelInfo):
			s[0] = extismInfo
		case k.logger.Enabled(ctx, slog.LevelWarn):
			s[0] = extismWarn
		default:
			s[0] = extismError
		}
	}},
	{"http_request", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).httpRequest(s[0], s[1])
	}},
	{"http_status_code", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = uint64(uint32(kernelFrom(ctx).httpStatus))
	}},
	{"http_headers", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		s[0] = k.allocCopy(k.httpHeaders)
	}},
}

// bulkCost is the fuel the host charges for zeroing or copying n bytes
// on a guest's behalf: a unit per 16 bytes, as the meter charges the
// guest's own bulk memory operations (and random_get its bytes).
func bulkCost(n uint64) uint64 { return n / 16 }

// kernelCharge is the WebAssembly kernel's "charge" import: it takes
// bulkCost(s[0]) from the calling guest's fuel for an alloc of s[0]
// bytes. An alloc the host makes itself (the input's, a copy's block,
// which allocCopy charges) reaches it without a guest's call: nothing
// to charge.
func kernelCharge(ctx context.Context, _ api.Module, s []uint64) {
	if k, _ := ctx.Value(kernelKey{}).(*kernel); k != nil {
		k.meter.charge(bulkCost(s[0]))
	}
}

// instantiateKernel defines the kernelGoModule host module and compiles
// the WebAssembly kernel.
func instantiateKernel(ctx context.Context, rt wazero.Runtime) (wazero.CompiledModule, error) {
	b := rt.NewHostModuleBuilder(kernelGoModule)
	for _, hf := range hostFuncs {
		t := abi.HostFuncs[hf.name]
		b.NewFunctionBuilder().
			WithGoModuleFunction(hf.fn, valueTypes(t.Params), valueTypes(t.Results)).
			Export(hf.name)
	}
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(kernelCharge), []api.ValueType{api.ValueTypeI64}, nil).Export("charge")
	if _, err := b.Instantiate(ctx); err != nil {
		return nil, err
	}
	return rt.CompileModule(ctx, kernelWasm)
}

func valueTypes(b []byte) []api.ValueType {
	out := make([]api.ValueType, len(b))
	copy(out, b)
	return out
}
