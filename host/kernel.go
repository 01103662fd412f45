package host

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/http"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/flowhost/flowhost/abi"
)

// The kernel is the host side of the Extism guest ABI: a per-instance
// arena of blocks that guests address by offset through load/store
// imports, plus the call's input, output, error, config and vars. It is
// reset at the start of every call, so nothing a call leaves behind in it
// reaches the next call.

// arenaBase is the offset of the first block: offset 0 means "no block".
const arenaBase = 8

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

type block struct {
	off, len uint64
	freed    bool
}

type kernel struct {
	arena  []byte // arena[i] is at offset arenaBase+i
	blocks []block
	limit  uint64 // cap on len(arena)

	inputOff, inputLen uint64
	outOff, outLen     uint64
	outSet             bool
	errOff             uint64
	maxOutput          uint64

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

type kernelKey struct{}

func kernelFrom(ctx context.Context) *kernel {
	return ctx.Value(kernelKey{}).(*kernel)
}

// reset prepares the kernel for a call: empties the arena and stores the input.
func (k *kernel) reset(input []byte, limit, maxOutput uint64) {
	if cap(k.arena) > 1<<20 {
		k.arena = nil // do not keep a large arena alive between calls
	}
	k.arena = k.arena[:0]
	k.blocks = k.blocks[:0]
	k.limit = limit
	k.maxOutput = maxOutput
	k.outOff, k.outLen, k.outSet, k.errOff = 0, 0, false, 0
	k.logLines = 0
	k.httpStatus, k.httpHeaders = 0, nil
	clear(k.vars)
	k.varBytes = 0
	k.inputLen = uint64(len(input))
	k.inputOff = k.allocCopy(input)
}

func (k *kernel) alloc(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	start := (uint64(len(k.arena)) + 7) &^ 7
	end := start + n
	if end < start || (k.limit != 0 && end+k.varBytes > k.limit) {
		fail(KindMemory, "alloc of %d bytes: host memory for this call (blocks and vars) would exceed its limit of %d bytes", n, k.limit)
	}
	if end <= uint64(cap(k.arena)) {
		k.arena = k.arena[:end]
		clear(k.arena[start:end])
	} else {
		newCap := 2 * uint64(cap(k.arena))
		if newCap < end {
			newCap = end
		}
		if newCap < 256 {
			newCap = 256
		}
		if k.limit != 0 && newCap > k.limit {
			newCap = k.limit
		}
		na := make([]byte, end, newCap)
		copy(na, k.arena)
		k.arena = na
	}
	off := start + arenaBase
	k.blocks = append(k.blocks, block{off: off, len: n})
	return off
}

// allocCopy stores b in a new block and returns its offset (0 for no bytes).
func (k *kernel) allocCopy(b []byte) uint64 {
	off := k.alloc(uint64(len(b)))
	if off != 0 {
		copy(k.arena[off-arenaBase:], b)
	}
	return off
}

// find returns the index of the live block starting at off, or -1.
func (k *kernel) find(off uint64) int {
	n := len(k.blocks)
	if n == 0 {
		return -1
	}
	if b := k.blocks[n-1]; b.off == off { // the common case: the newest block
		if b.freed {
			return -1
		}
		return n - 1
	}
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if k.blocks[mid].off < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < n && k.blocks[lo].off == off && !k.blocks[lo].freed {
		return lo
	}
	return -1
}

func (k *kernel) free(off uint64) {
	i := k.find(off)
	if i < 0 {
		return
	}
	if i == len(k.blocks)-1 && off != k.inputOff {
		// Give the space of the newest block back to the arena.
		k.blocks = k.blocks[:i]
		k.arena = k.arena[:off-arenaBase]
		return
	}
	k.blocks[i].freed = true
}

func (k *kernel) length(off uint64) uint64 {
	if i := k.find(off); i >= 0 {
		return k.blocks[i].len
	}
	return 0
}

// bytes returns the arena bytes [off, off+n), failing the call when they
// are not inside the arena.
func (k *kernel) bytes(fn string, off, n uint64) []byte {
	if off < arenaBase || off-arenaBase > uint64(len(k.arena)) || n > uint64(len(k.arena))-(off-arenaBase) {
		fail(KindTrap, "%s: offset %d length %d is outside host memory (%d bytes allocated)", fn, off, n, len(k.arena))
	}
	i := off - arenaBase
	return k.arena[i : i+n : i+n]
}

func (k *kernel) blockBytes(fn string, off uint64) []byte {
	if off == 0 {
		return nil
	}
	i := k.find(off)
	if i < 0 {
		fail(KindTrap, "%s: offset %d is not an allocated block", fn, off)
	}
	return k.bytes(fn, off, k.blocks[i].len)
}

// varSet sets the var named by the block at keyOff to the block at
// valOff, or deletes it when valOff is 0.
func (k *kernel) varSet(keyOff, valOff uint64) {
	name := string(k.blockBytes("var_set", keyOff))
	old, had := k.vars[name]
	size := func(v []byte) uint64 { return uint64(len(name)) + uint64(len(v)) + varOverhead }
	if had {
		k.varBytes -= size(old)
	}
	if valOff == 0 {
		delete(k.vars, name)
		return
	}
	v := k.blockBytes("var_set", valOff)
	if (!had && len(k.vars) >= maxVars) || len(v) > maxVarValue {
		fail(KindMemory, "var_set %q: vars are limited to %d entries of at most %d bytes", name, maxVars, maxVarValue)
	}
	if total := uint64(len(k.arena)) + k.varBytes + size(v); k.limit != 0 && total > k.limit {
		fail(KindMemory, "var_set: vars and blocks of this call would take %d bytes; its memory limit is %d bytes", total, k.limit)
	}
	if k.vars == nil {
		k.vars = map[string][]byte{}
	}
	k.vars[name] = append([]byte(nil), v...)
	k.varBytes += size(v)
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

// hostFuncs implements every function of abi.HostFuncs.
var hostFuncs = []hostFunc{
	{"input_length", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).inputLen
	}},
	{"input_offset", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).inputOff
	}},
	{"input_load_u8", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		if s[0] >= k.inputLen {
			fail(KindTrap, "input_load_u8: offset %d is past the input's %d bytes", s[0], k.inputLen)
		}
		s[0] = uint64(k.arena[k.inputOff-arenaBase+s[0]])
	}},
	{"input_load_u64", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		if s[0] > k.inputLen || k.inputLen-s[0] < 8 {
			fail(KindTrap, "input_load_u64: offset %d is past the input's %d bytes", s[0], k.inputLen)
		}
		i := k.inputOff - arenaBase + s[0]
		s[0] = binary.LittleEndian.Uint64(k.arena[i : i+8])
	}},
	{"alloc", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).alloc(s[0])
	}},
	{"free", func(ctx context.Context, _ api.Module, s []uint64) {
		kernelFrom(ctx).free(s[0])
	}},
	{"length", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).length(s[0])
	}},
	{"length_unsafe", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).length(s[0])
	}},
	{"load_u8", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = uint64(kernelFrom(ctx).bytes("load_u8", s[0], 1)[0])
	}},
	{"load_u64", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = binary.LittleEndian.Uint64(kernelFrom(ctx).bytes("load_u64", s[0], 8))
	}},
	{"store_u8", func(ctx context.Context, _ api.Module, s []uint64) {
		kernelFrom(ctx).bytes("store_u8", s[0], 1)[0] = byte(s[1])
	}},
	{"store_u64", func(ctx context.Context, _ api.Module, s []uint64) {
		binary.LittleEndian.PutUint64(kernelFrom(ctx).bytes("store_u64", s[0], 8), s[1])
	}},
	{"output_set", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		if k.maxOutput != 0 && s[1] > k.maxOutput {
			fail(KindOutputTooLarge, "%d bytes; the limit is %d", s[1], k.maxOutput)
		}
		k.bytes("output_set", s[0], s[1])
		k.outOff, k.outLen, k.outSet = s[0], s[1], true
	}},
	{"output_offset", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).outOff
	}},
	{"output_length", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).outLen
	}},
	{"error_set", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		k.blockBytes("error_set", s[0])
		k.errOff = s[0]
	}},
	{"error_get", func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = kernelFrom(ctx).errOff
	}},
	{"config_get", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		key := k.blockBytes("config_get", s[0])
		v, ok := k.config[string(key)]
		if !ok {
			s[0] = 0
			return
		}
		s[0] = k.allocCopy([]byte(v))
	}},
	{"var_get", func(ctx context.Context, _ api.Module, s []uint64) {
		k := kernelFrom(ctx)
		v, ok := k.vars[string(k.blockBytes("var_get", s[0]))]
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

// instantiateKernel defines the "extism:host/env" host module.
func instantiateKernel(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.ExtismEnv)
	for _, hf := range hostFuncs {
		t := abi.HostFuncs[hf.name]
		b.NewFunctionBuilder().
			WithGoModuleFunction(hf.fn, valueTypes(t.Params), valueTypes(t.Results)).
			Export(hf.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func valueTypes(b []byte) []api.ValueType {
	out := make([]api.ValueType, len(b))
	copy(out, b)
	return out
}
