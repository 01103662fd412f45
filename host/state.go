package host

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/flowhost/flowhost/meter"
	"github.com/flowhost/flowhost/policy"
)

// Every call starts from the same guest state, whatever its instance
// served before: the instance's linear memory and mutable globals as they
// were just after its start-up, its randomness and its clock at their
// start. So a call's result is a function of the module, the task and
// the input (unless a grant lets the world in), which is what makes it
// cacheable. How the state is restored depends on the module:
//
//   - ResetSnapshot: the instance's memory and globals are saved once,
//     after start-up, and copied back after each call (the meter exports
//     the module's own mutable globals so that the host can set them);
//     with the variant of the module that marks what it writes (see
//     MarkWrites), only the marked parts of the memory are. A call that
//     grew the memory leaves an instance that cannot be put back
//     (WebAssembly memories do not shrink): it is discarded.
//   - ResetFresh: the instance is discarded after each call and the next
//     one starts a new instance. For modules whose state is also in tables,
//     dropped segments or v128 globals (which no host can set from
//     outside), and when the meter is off.
//
// A call with Limits.State = policy.StateKeep skips the reset: faster
// where a restore costs much (large memories), and then not a function of
// its input. Under policy.StateAuto the host keeps the state of modules
// whose memory after start-up is over resetCopyLimit (the Go guest's
// 3.3 MiB snapshot costs ~270 µs a call to copy back whole, ~17 µs with
// the marks) and resets the others (WAT, C, AssemblyScript: 64–128 KiB).
type Reset int

// Reset strategies.
const (
	ResetSnapshot Reset = iota
	ResetFresh
)

func (r Reset) String() string {
	if r == ResetFresh {
		return "fresh"
	}
	return "snapshot"
}

// Reset is how the module's calls start from the same state.
func (m *Module) Reset() Reset { return m.reset }

// resetFor chooses a module's strategy from what the meter found in it.
func resetFor(metered bool, st meter.State) Reset {
	if !metered || st.Segments || st.WideGlobals || st.Descriptors {
		return ResetFresh
	}
	return ResetSnapshot
}

// resetCopyLimit is the memory after start-up beyond which StateAuto
// keeps the guest's state: its snapshot would cost more to copy back (or
// a fresh instance to build again) than most calls.
const resetCopyLimit = 1 << 20

// keeps reports whether calls under lim keep the guest's state between
// calls (see Reset). Under StateAuto, the first call measures what a reset
// of the module costs, on the instance it then serves.
func (m *Module) keeps(ctx context.Context, lim Limits, deadline time.Time) (bool, error) {
	switch lim.State {
	case policy.StateKeep:
		return true, nil
	case policy.StateReset:
		return false, nil
	}
	m.mu.Lock()
	measured, keep := m.measured, m.autoKeep
	m.mu.Unlock()
	if measured {
		return keep, nil
	}
	inst, err := m.newInstance(ctx, lim, deadline, false)
	if err != nil {
		return false, err // measured again by the next call
	}
	// One rule for both strategies, and a deterministic one: the memory
	// start-up left (what a snapshot copies back, or what a fresh
	// instance builds again).
	keep = len(inst.mem.buf) > resetCopyLimit
	if !keep {
		if err := m.takeSnapshot(inst); err != nil {
			inst.close(ctx)
			return false, err
		}
	}
	m.mu.Lock()
	m.measured, m.autoKeep = true, keep
	m.mu.Unlock()
	m.release(inst)
	return keep, nil
}

// Pure reports whether every call of t under lim starts from the same
// guest state (as the module's start-up left it), so that, without grants
// that let the outside world in, its output is a function of its input.
func (t *Task) Pure(ctx context.Context, lim Limits) bool {
	keep, err := t.mod.keeps(ctx, lim, time.Time{})
	return err == nil && !keep
}

// snapshot is an instance's state just after its start-up.
type snapshot struct {
	mem     []byte
	globals []api.MutableGlobal
	values  []uint64
	clock   int64 // the fake clock's readings so far
	// dirty and shift are the meter's record of what a call wrote
	// (meter.GlobalDirty), nil in modules it does not track: only the
	// chunks marked are copied back.
	dirty, shift api.MutableGlobal
	chunk        uint // log2 of a chunk's size
}

// takeSnapshot saves the instance's memory and the module's mutable
// globals.
func (m *Module) takeSnapshot(inst *instance) error {
	if m.reset != ResetSnapshot || inst.snap != nil {
		return nil
	}
	s := &snapshot{mem: append([]byte(nil), inst.mem.buf...)}
	if inst.clock != nil {
		s.clock = inst.clock.n
	}
	for _, g := range m.state.Globals {
		name := fmt.Sprintf("%s%d", meter.GlobalPrefix, g)
		mg, ok := inst.mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("the metered module does not export its global %d as %s", g, name)
		}
		s.globals = append(s.globals, mg)
		s.values = append(s.values, mg.Get())
	}
	if inst.marked && len(s.mem) > 0 {
		d, ok1 := inst.mod.ExportedGlobal(meter.GlobalDirty).(api.MutableGlobal)
		sh, ok2 := inst.mod.ExportedGlobal(meter.GlobalDirtyShift).(api.MutableGlobal)
		if !ok1 || !ok2 {
			return fmt.Errorf("the metered module does not export %s and %s", meter.GlobalDirty, meter.GlobalDirtyShift)
		}
		// The smallest chunks of which 64 cover the memory.
		s.dirty, s.shift, s.chunk = d, sh, uint(max(bits.Len64(uint64(len(s.mem)-1))-6, 0))
		s.shift.Set(uint64(s.chunk))
		s.dirty.Set(0) // what start-up wrote is the snapshot
	}
	inst.snap = s
	return nil
}

// restore puts the instance back in its state after start-up; false
// when it cannot be (the strategy is ResetFresh, or the call grew the
// memory), and the instance must be discarded.
func (inst *instance) restore() bool {
	s := inst.snap
	if s == nil || len(inst.mem.buf) != len(s.mem) {
		return false
	}
	if s.dirty == nil {
		copy(inst.mem.buf, s.mem)
	} else {
		restoreChunks(inst.mem.buf, s.mem, s.dirty.Get(), s.chunk)
		s.dirty.Set(0)
		if verifyRestores.Load() && !bytes.Equal(inst.mem.buf, s.mem) {
			restoreMismatches.Add(1)
			copy(inst.mem.buf, s.mem)
		}
	}
	for i, g := range s.globals {
		g.Set(s.values[i])
	}
	if inst.clock != nil {
		inst.clock.n = s.clock
	}
	inst.clean = true
	return true
}

// MarkWrites chooses when a module's calls that start from the state
// after start-up run the variant of it that marks the memory it writes
// (meter.Options.MarkWrites), so that a reset copies back only that.
// The marks cost the guest's stores (up to ~40 % of a loop of loads and
// stores), and save copying the whole snapshot back (~1.6 µs for 64 KiB,
// ~4 µs for 128 KiB): a gain for calls that do little, a loss for calls
// that do much.
type MarkWrites int

// MarkWrites settings.
const (
	// MarkAuto measures the first markSample calls that reset their
	// state, and uses the marking variant when they burned, on average,
	// less than one unit of fuel per bytesPerFuel bytes of the snapshot:
	// a call of the C example's square (23,550 units, 128 KiB) marks, a
	// call that parses 10,000 numbers does not. The choice is made once per
	// module, from the fuel the calls burned (a count the same on every
	// machine), and changes only what a call costs, never its result.
	MarkAuto MarkWrites = iota
	// MarkAlways uses the marking variant from the start (where the
	// meter can mark the module).
	MarkAlways
	// MarkNever never uses it.
	MarkNever
)

// markSample calls are measured before MarkAuto decides; bytesPerFuel is
// its exchange rate: in a loop that does nothing but load and store, the
// marks cost 0.063 ns per unit of fuel, and copying a snapshot back costs
// 0.03 ns a byte (BenchmarkStoreLoop in meter/, BenchmarkReset in
// bench/), so the marks are worth it where a call burns less than a unit
// for every 2 bytes of snapshot (most code has fewer stores than that loop).
// A module larger than maxMarkedSource is not kept for MarkAuto to
// build its variant from.
const (
	markSample      = 16
	bytesPerFuel    = 2
	maxMarkedSource = 4 << 20
)

// markedVariant is the module's variant that marks its writes, built
// when it is first wanted.
type markedVariant struct {
	// pending: the variant may yet be built under MarkAuto, from wasm,
	// once markSample calls have burned fuel; cleared when decided.
	pending atomic.Bool
	wasm    []byte // guarded by Module.mu, as are fuel and calls
	fuel    uint64
	calls   int
	// compiled is set before Module.useMarked, and never after.
	compiled wazero.CompiledModule
}

// prepareMarks readies, for a loaded module that resets by snapshot, the
// variant that marks its writes: built now under MarkAlways, its source
// kept for observe under MarkAuto.
func (m *Module) prepareMarks(ctx context.Context, wasm []byte) {
	if m.reset != ResetSnapshot {
		return
	}
	switch m.eng.cfg.MarkWrites {
	case MarkAlways:
		m.buildMarked(ctx, wasm)
	case MarkAuto:
		if len(wasm) <= maxMarkedSource {
			m.marked.wasm = bytes.Clone(wasm) // the caller may reuse its buffer
			m.marked.pending.Store(true)
		}
	}
}

// observe counts a call that reset its state and burned fuel, on a
// snapshot of size bytes, and decides under MarkAuto once markSample
// calls are in.
func (m *Module) observe(fuel uint64, size int) {
	m.mu.Lock()
	v := &m.marked
	if !v.pending.Load() {
		m.mu.Unlock()
		return
	}
	v.fuel += fuel
	v.calls++
	want := v.fuel*bytesPerFuel < uint64(v.calls)*uint64(size)
	if v.calls < markSample {
		m.mu.Unlock()
		return
	}
	wasm := v.wasm
	v.wasm = nil
	v.pending.Store(false)
	m.mu.Unlock()
	if !want {
		return
	}
	// In the background: a large module takes seconds to rewrite and
	// compile, which no call should wait for. Close waits for it.
	e := m.eng
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.builds.Add(1)
	go func() {
		defer e.builds.Done()
		m.buildMarked(context.Background(), wasm)
	}()
}

// buildMarked instruments and compiles the marking variant, and has the
// calls that reset their state use it; a module the meter cannot mark
// (see meter.GlobalDirty) goes on copying its whole snapshot back.
func (m *Module) buildMarked(ctx context.Context, wasm []byte) {
	e := m.eng
	code, st, err := e.instrument(wasm, m.SHA256, meter.Options{MarkWrites: true})
	if err != nil || !st.Dirty {
		return
	}
	compiled, err := e.rt.CompileModule(ctx, code)
	if err != nil {
		e.logger.Warn("cannot compile the module's variant that marks its writes", "module", m.Name, "err", err)
		return
	}
	m.marked.compiled = compiled
	m.useMarked.Store(true)
}

// verifyRestores makes restore check that copying back the marked chunks
// gave the snapshot back, counting each time it did not in
// restoreMismatches: for tests.
var (
	verifyRestores    atomic.Bool
	restoreMismatches atomic.Int64
)

// restoreChunks copies back from snap into mem the chunks of 1<<chunk
// bytes that dirty marks, each with the meter.DirtySpill bytes after it,
// one copy per run of consecutive chunks.
func restoreChunks(mem, snap []byte, dirty uint64, chunk uint) {
	if dirty == ^uint64(0) {
		copy(mem, snap)
		return
	}
	for dirty != 0 {
		first := uint(bits.TrailingZeros64(dirty))
		run := uint(bits.TrailingZeros64(^(dirty >> first))) // consecutive chunks from first
		lo := first << chunk
		if lo >= uint(len(mem)) {
			return
		}
		hi := min((first+run)<<chunk+meter.DirtySpill, uint(len(mem)))
		copy(mem[lo:hi], snap[lo:hi])
		if first+run >= 64 {
			return
		}
		dirty &^= (1<<run - 1) << first
	}
}

// fakeClock is an instance's clock when the real clock is not granted:
// like wazero's default, it starts at 2022-01-01 (wall) and 0
// (monotonic) and advances 1 ms at each reading. It is part of the
// instance's state: a call that starts from the state after start-up
// reads the same times as every other, and a call that keeps its state
// sees the clock go on (a clock that went back under a running Go guest
// would break its runtime).
type fakeClock struct{ n int64 }

const fakeEpoch = 1640995200 * 1e9 // 2022-01-01T00:00:00Z, in ns

func (c *fakeClock) walltime() (int64, int32) {
	c.n += 1e6
	t := fakeEpoch + c.n
	return t / 1e9, int32(t % 1e9)
}

func (c *fakeClock) nanotime() int64 {
	c.n += 1e6
	return c.n
}

// config gives an instance's configuration the fake clock.
func (c *fakeClock) config(cfg wazero.ModuleConfig) wazero.ModuleConfig {
	return cfg.WithWalltime(c.walltime, 1).WithNanotime(c.nanotime, 1)
}
