package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/flowhost/flowhost/internal/atomicfile"
	"github.com/flowhost/flowhost/meter"
)

// Interrupt selects how the engine stops a guest that runs too long.
type Interrupt int

const (
	// InterruptMeter instruments every module at load (package meter): a
	// counter charged at function entries and loop headers calls into the
	// host every fuelChunk units, where deadlines, cancellation and fuel
	// budgets are checked. A call costs no goroutine, and guest loops stay
	// nearly as fast as uninstrumented ones.
	InterruptMeter Interrupt = iota
	// InterruptContext compiles modules with wazero's
	// WithCloseOnContextDone: a watcher goroutine per call and a check at
	// every loop back-edge. Kept to compare against.
	InterruptContext
)

// fuelChunk is how much fuel a guest burns between two checks of the
// deadline and of cancellation: about a millisecond of guest work.
const fuelChunk = 1 << 20

// DefaultMaxDepth bounds the guest's call depth, and so the host memory a
// recursion bomb can take.
const DefaultMaxDepth = 20000

// meterState is the per-call metering state of an instance.
type meterState struct {
	fuel, depth api.MutableGlobal
	deadline    int64 // UnixNano; 0 for none
	timeout     time.Duration
	done        <-chan struct{}
	ctx         context.Context
	limited     bool   // a fuel budget is set
	budget      uint64 // the call's budget
	left        uint64 // budget not yet handed to the guest
	given       uint64 // fuel handed to the guest this call
}

// bind finds the metering globals of a new instance, and reports
// whether it did now (rather than at an earlier call).
func (s *meterState) bind(mod api.Module) bool {
	if s.fuel != nil {
		return false
	}
	s.fuel, _ = mod.ExportedGlobal(meter.GlobalFuel).(api.MutableGlobal)
	s.depth, _ = mod.ExportedGlobal(meter.GlobalDepth).(api.MutableGlobal)
	if s.fuel == nil || s.depth == nil {
		panic("host: metered module lacks its metering globals")
	}
	return true
}

// arm prepares the metering globals for a call that must end by
// deadline (zero for none), timeout after it started.
func (s *meterState) arm(ctx context.Context, deadline time.Time, timeout time.Duration, fuel uint64, maxDepth int32) {
	s.ctx, s.done, s.timeout = ctx, ctx.Done(), timeout
	s.deadline = 0
	if !deadline.IsZero() {
		s.deadline = deadline.UnixNano()
	}
	chunk := uint64(fuelChunk)
	s.limited, s.budget, s.left = fuel > 0, fuel, 0
	if s.limited {
		chunk = min(chunk, fuel)
		s.left = fuel - chunk
	}
	s.given = chunk
	s.fuel.Set(chunk)
	s.depth.Set(api.EncodeI32(maxDepth + 1)) // d lets d-1 frames be active
}

// used is the fuel the call burned: what it was handed less what is
// left of it (the counter goes below zero only at the check that stops
// or refuels it).
func (s *meterState) used() uint64 {
	return s.given - uint64(max(int64(s.fuel.Get()), 0))
}

// refuel runs when the guest's fuel runs out: it stops the call past its
// deadline, on cancellation or when the budget is spent, else hands the
// guest another chunk.
func (s *meterState) refuel() {
	if s.done != nil {
		select {
		case <-s.done:
			fail(KindCanceled, "%v", context.Cause(s.ctx))
		default:
		}
	}
	if s.deadline != 0 && time.Now().UnixNano() > s.deadline {
		fail(KindTimeout, "did not finish within %s", s.timeout)
	}
	// A region (or a bulk operation) may cost more than a chunk: it runs
	// only once the budget has covered all of it.
	for fuel := int64(s.fuel.Get()); fuel < 0; {
		chunk := uint64(fuelChunk)
		if s.limited {
			if s.left == 0 {
				fail(KindFuel, "the call used up its budget of %d units", s.budget)
			}
			chunk = min(chunk, s.left)
			s.left -= chunk
		}
		s.given += chunk
		fuel += int64(chunk)
		s.fuel.Set(uint64(fuel))
	}
}

// charge takes n units from the guest's fuel for work a host function
// does on its behalf (such as filling a buffer with random bytes), and
// refuels, checking the deadline, cancellation and the budget, when that
// spends it. A no-op outside a metered call.
func (s *meterState) charge(n uint64) {
	if s == nil || s.fuel == nil || n == 0 {
		return
	}
	s.fuel.Set(uint64(int64(s.fuel.Get()) - int64(min(n, 1<<62))))
	if int64(s.fuel.Get()) < 0 {
		s.refuel()
	}
}

// instantiateMeter defines the "flowhost:meter" host module.
func instantiateMeter(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(meter.ImportModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, _ []uint64) {
		k := kernelFrom(ctx)
		s := &k.meter
		if s.bind(mod) && k.maxDepth+1 < meter.InitialDepth {
			// A start function runs before newInstance can bind, from the
			// meter's initial depth: bring what is left of it down to the
			// engine's MaxDepth.
			s.depth.Set(api.EncodeI32(api.DecodeI32(s.depth.Get()) - (meter.InitialDepth - k.maxDepth - 1)))
		}
		s.refuel()
	}), nil, nil).Export(meter.FuncOutOfFuel).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
		fail(KindStackOverflow, "the guest's call depth went past %d frames (a frame of more than 1 KiB of locals counts as one a KiB)", kernelFrom(ctx).maxDepth)
	}), nil, nil).Export(meter.FuncTooDeep).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = uint64(kernelFrom(ctx).mem.growTable(uint32(s[0]), uint32(s[1]), uint32(s[2])))
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export(meter.FuncTableGrow).
		Instantiate(ctx)
	return err
}

// instrument returns the metered form of wasm and what the meter found
// of its state, from the on-disk cache when it holds them (the analysis
// of a large module costs tens of milliseconds: it is not done again at
// every start-up).
func (e *Engine) instrument(wasm []byte, sum string, opts meter.Options) ([]byte, meter.State, error) {
	var path string
	if e.cacheDir != "" {
		key := sum
		if opts.MarkWrites {
			key += "\x00marks"
		}
		path = filepath.Join(e.cacheDir, "metered", meterKey(key))
		b, err := os.ReadFile(path)
		var st meter.State
		if err == nil {
			if sb, serr := os.ReadFile(path + ".state"); serr == nil && json.Unmarshal(sb, &st) == nil {
				e.cacheHits.Add(1)
				return b, st, nil
			}
		}
		e.cacheMisses.Add(1)
	}
	out, st, err := meter.InstrumentWith(wasm, opts)
	if err != nil {
		return nil, st, fmt.Errorf("instrument: %w", err)
	}
	if path != "" {
		sb, _ := json.Marshal(st)
		// The state first: a module found without it is instrumented again.
		if err := atomicfile.Write(path+".state", sb); err != nil {
			e.logger.Warn("cannot cache metered module", "path", path, "err", err)
		} else if err := atomicfile.Write(path, out); err != nil {
			e.logger.Warn("cannot cache metered module", "path", path, "err", err)
		}
	}
	return out, st, nil
}

// meterKey names a metered module in the cache: the module's sha256 and
// the meter's version, so a new meter never reuses an old rewrite.
func meterKey(sum string) string {
	h := sha256.Sum256([]byte(meter.Version + "\x00" + sum))
	return hex.EncodeToString(h[:16]) + ".wasm"
}
