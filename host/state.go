package host

import (
	"context"
	"fmt"
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
//     the module's own mutable globals so that the host can set them). A
//     call that grew the memory leaves an instance that cannot be put back
//     (WebAssembly memories do not shrink): it is discarded.
//   - ResetFresh: the instance is discarded after each call and the next
//     one starts a new instance. For modules whose state is also in tables
//     or dropped segments (which no host can set from outside), and when
//     the meter is off.
//
// A call with Limits.State = policy.StateKeep skips the reset: faster
// where a restore costs much (large memories), and then not a function of
// its input. Under policy.StateAuto the host keeps the state of modules
// whose reset costs more than resetCostLimit (measured once per module:
// the Go guest's 3.3 MiB snapshot costs ~150 µs a call to copy back) and
// resets the others (WAT, C, AssemblyScript: 64–128 KiB, 2–3 µs).
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
	if !metered || st.Segments {
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
	copy(inst.mem.buf, s.mem)
	for i, g := range s.globals {
		g.Set(s.values[i])
	}
	if inst.clock != nil {
		inst.clock.n = s.clock
	}
	inst.clean = true
	return true
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
