package host

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/meter"
)

// Module is a loaded, compiled task module. It is safe for concurrent use.
type Module struct {
	// Name is the module's name from its manifest.
	Name string
	// Manifest is what the module declares.
	Manifest *abi.Manifest
	// ManifestSource is "section" or "export": where the manifest came from.
	ManifestSource string
	// SHA256 is the hex digest of the module's bytes.
	SHA256 string
	// Size is the module's size in bytes.
	Size int
	// Info is the module's static shape (imports, exports).
	Info *abi.Module

	eng      *Engine
	compiled wazero.CompiledModule
	hasInit  bool
	// initialMemory is the linear memory the module declares, in bytes,
	// and initialTables the elements of its tables: what every instance
	// takes before any of its code runs.
	initialMemory, initialTables uint64
	exports                      []string // export of each task, by task index
	// state is what the meter found the module keeps between calls, and
	// reset how the host restores it (see Reset).
	state meter.State
	reset Reset
	// mu guards measured and autoKeep: whether what a reset costs has
	// been measured (see keeps), and its verdict for calls under
	// policy.StateAuto.
	mu                 sync.Mutex
	measured, autoKeep bool
	// marked is the variant of the module that marks what its calls
	// write, which calls that start from the state after start-up use
	// once useMarked is set (see observe).
	marked    markedVariant
	useMarked atomic.Bool
	tasks     map[string]*Task
	pool      pool
}

// Task returns the task called name.
func (m *Module) Task(name string) (*Task, bool) {
	t, ok := m.tasks[name]
	return t, ok
}

// Stats reports the module's instance pool counters.
func (m *Module) Stats() PoolStats {
	m.pool.mu.Lock()
	idle := len(m.pool.idle)
	var mem uint64
	for _, inst := range m.pool.idle {
		mem += inst.mem.used()
	}
	m.pool.mu.Unlock()
	return PoolStats{Created: m.pool.created.Load(), Reused: m.pool.reused.Load(), Discarded: m.pool.discarded.Load(), Idle: idle, IdleMemory: mem,
		MarksWrites: m.useMarked.Load()}
}

// PoolStats counts a module's instances.
type PoolStats struct {
	Created   int64 // instances started
	Reused    int64 // calls served by a warm instance
	Discarded int64 // instances thrown away after a trap, timeout or limit
	Idle      int   // warm instances waiting now
	// IdleMemory is the linear memory and tables of the idle instances,
	// in bytes.
	IdleMemory uint64
	// MarksWrites: calls that start from the state after start-up run
	// the variant of the module that marks what they write (see
	// MarkWrites).
	MarksWrites bool
}

// Task is one task of a module.
type Task struct {
	mod   *Module
	Spec  *abi.Task
	index int
	// typedIn and typedOut: some input, some output has a declared type.
	typedIn, typedOut bool
}

func newTask(m *Module, spec *abi.Task, index int) *Task {
	t := &Task{mod: m, Spec: spec, index: index, typedOut: len(spec.OutputTypes) > 0}
	for i := range spec.Inputs {
		t.typedIn = t.typedIn || spec.Inputs[i].Typed()
	}
	return t
}

// Module returns the module the task belongs to.
func (t *Task) Module() *Module { return t.mod }

// Call runs the task on input (a JSON object of its named inputs, see
// Input) within lim, and returns its output. A failure is a *TaskError.
// Call is safe for concurrent use; each call runs on its own instance.
//
// The call's timeout covers it all: a new instance's start-up (its start
// function, _initialize) and then the task. A start-up also runs within
// a fuel budget of lim.Fuel, and the task within another, so that the
// fuel a task may use does not depend on whether its instance was warm.
func (t *Task) Call(ctx context.Context, input []byte, lim Limits) ([]byte, error) {
	return t.call(ctx, input, lim, nil)
}

// CallStats is what one call took.
type CallStats struct {
	// Duration is the call's wall-clock time, its instance's start-up
	// included when it needed a new one.
	Duration time.Duration
	// Fuel is the fuel the task burned (about one unit an instruction):
	// the same for the same input, whatever the machine.
	Fuel uint64
	// Memory is the guest's linear memory and tables when the call ended,
	// in bytes: its peak, since a guest's memory never shrinks.
	Memory uint64
	// Output is the output's size in bytes.
	Output int
}

// CallWithStats is Call, reporting what the call took, failed or not.
func (t *Task) CallWithStats(ctx context.Context, input []byte, lim Limits) ([]byte, CallStats, error) {
	var st CallStats
	start := time.Now()
	out, err := t.call(ctx, input, lim, &st)
	st.Duration, st.Output = time.Since(start), len(out)
	return out, st, err
}

func (t *Task) call(ctx context.Context, input []byte, lim Limits, st *CallStats) ([]byte, error) {
	m := t.mod
	if err := m.callable(t); err != nil {
		return nil, err
	}
	if err := t.CheckInput(input); err != nil {
		return nil, err
	}
	var deadline time.Time
	if lim.Timeout > 0 {
		deadline = time.Now().Add(lim.Timeout)
	}
	// Before acquire: a first measure leaves its instance to this call.
	keepState, err := m.keeps(ctx, lim, deadline)
	if err != nil {
		return nil, m.startFailed(t.Spec.Name, err)
	}
	inst, err := m.acquire(ctx, lim, deadline, !keepState)
	if err != nil {
		return nil, m.startFailed(t.Spec.Name, err)
	}
	out, keep, err := inst.call(ctx, t, input, lim, deadline)
	if te, ok := err.(*TaskError); ok {
		te.Hint = inst.asked.hint(lim.Grants)
	}
	if st != nil {
		st.Memory = inst.mem.used()
		if inst.k.meter.fuel != nil {
			st.Fuel = inst.k.meter.used()
		}
	}
	inst.clean = false
	if inst.asked.changed {
		// The call opened or closed a descriptor: the runtime's table
		// of them cannot be put back (see askedPaths).
		keep = false
	}
	if inst.k.wasm.mem.size() > maxKeptKernel {
		keep = false // no large arena stays alive between calls
	}
	if keep && !keepState {
		if err == nil && !inst.marked && m.marked.pending.Load() && inst.snap != nil {
			m.observe(inst.k.meter.used(), len(inst.snap.mem))
		}
		keep = inst.restore() // the next call starts where this one did
	}
	if keep {
		m.release(inst)
	} else {
		m.pool.discarded.Add(1)
		inst.close(context.Background())
	}
	if err != nil {
		return nil, err
	}
	if err := t.CheckOutput(out); err != nil {
		return nil, err
	}
	return out, nil
}

type pool struct {
	mu        sync.Mutex
	idle      []*instance
	swept     bool // the idle instances that do not mark their writes are gone (see acquire)
	max       int
	created   atomic.Int64
	reused    atomic.Int64
	discarded atomic.Int64
}

func (m *Module) acquire(ctx context.Context, lim Limits, deadline time.Time, reset bool) (*instance, error) {
	marked := reset && m.useMarked.Load()
	for {
		key := grantsKey(lim.Grants)
		m.pool.mu.Lock()
		var stale []*instance
		if marked && !m.pool.swept {
			// Instances of the variant that does not mark its writes are
			// no use to calls that reset any more.
			m.pool.idle = slices.DeleteFunc(m.pool.idle, func(inst *instance) bool {
				if !inst.marked {
					stale = append(stale, inst)
				}
				return !inst.marked
			})
			m.pool.swept = true
		}
		i := len(m.pool.idle) - 1
		// An instance serves only calls with the grants it was made with,
		// and a call that must start from the state after start-up only
		// an instance in that state.
		for i >= 0 && (m.pool.idle[i].grants != key || (reset && !m.pool.idle[i].clean)) {
			i--
		}
		var inst *instance
		if i >= 0 {
			inst = m.pool.idle[i]
			m.pool.idle = append(m.pool.idle[:i], m.pool.idle[i+1:]...)
		}
		m.pool.mu.Unlock()
		for _, s := range stale {
			m.pool.discarded.Add(1)
			s.close(ctx)
		}
		if inst == nil {
			return m.newInstance(ctx, lim, deadline, reset)
		}
		if lim.Memory != 0 && inst.mem.used() > lim.Memory {
			// Grown past this call's cap by an earlier call: start afresh.
			m.pool.discarded.Add(1)
			inst.close(ctx)
			continue
		}
		m.pool.reused.Add(1)
		return inst, nil
	}
}

func (m *Module) release(inst *instance) {
	m.pool.mu.Lock()
	if len(m.pool.idle) < m.pool.max {
		m.pool.idle = append(m.pool.idle, inst)
		m.pool.mu.Unlock()
		return
	}
	m.pool.mu.Unlock()
	inst.close(context.Background())
}

// instance is one live instantiation of a module; it serves one call at a time.
type instance struct {
	// asked are the paths this call's guest asked for where no directory
	// is granted.
	asked  askedPaths
	mod    api.Module
	funcs  []api.Function // by task index
	k      *kernel
	mem    *linearMemory
	ctx    context.Context // carries k to the host functions
	stack  []uint64
	stderr limitedBuffer
	grants string     // key of the grants the instance was made with
	roots  []*os.Root // of its granted directories
	rand   *fixedRand // its randomness, unless real randomness is granted
	clock  *fakeClock // its clock, unless the real clock is granted
	snap   *snapshot  // its state after start-up (ResetSnapshot)
	// clean: the instance is in its state after start-up (new, or
	// restored), as a call that must start from it requires.
	clean bool
	// marked: the instance runs the variant that marks its writes.
	marked bool
}

// newInstance starts an instance for a call with limits lim, which must
// be done by deadline (zero for none: Config.InitTimeout then bounds the
// start-up).
func (m *Module) newInstance(ctx context.Context, lim Limits, deadline time.Time, snapshot bool) (*instance, error) {
	e := m.eng
	if need := m.initialMemory + m.initialTables*tableElemBytes; lim.Memory != 0 && need > lim.Memory {
		// Refused before the runtime allocates any of it.
		msg := fmt.Sprintf("the module declares an initial memory of %d bytes (%s)", m.initialMemory, plural(m.initialMemory/abi.PageSize, "page"))
		if m.initialTables != 0 {
			msg += fmt.Sprintf(" and tables of %s (%d bytes)", plural(m.initialTables, "element"), m.initialTables*tableElemBytes)
		}
		return nil, &startError{kind: KindMemory, msg: fmt.Sprintf("%s; the memory limit is %d bytes", msg, lim.Memory)}
	}
	inst := &instance{
		k:     &kernel{logger: e.logger, module: m.Name, maxDepth: e.cfg.MaxDepth, callCtx: context.Background()},
		mem:   &linearMemory{limit: lim.Memory},
		stack: make([]uint64, 1),
	}
	inst.k.mem = inst.mem
	for _, t := range m.Info.Tables {
		max := uint64(0)
		if t.HasMax {
			max = uint64(t.Max)
		}
		inst.mem.tables = append(inst.mem.tables, uint64(t.Min))
		inst.mem.tableMax = append(inst.mem.tableMax, max)
		inst.mem.tableElems += uint64(t.Min)
	}
	inst.stderr.max = 4 << 10
	inst.ctx = context.WithValue(context.Background(), kernelKey{}, inst.k)
	ictx := experimental.WithMemoryAllocator(inst.ctx, experimental.MemoryAllocatorFunc(func(cap, max uint64) experimental.LinearMemory {
		inst.mem.max, inst.mem.initialCap = max, cap
		return inst.mem
	}))
	timeout := lim.Timeout
	if deadline.IsZero() {
		timeout = e.cfg.InitTimeout
		deadline = time.Now().Add(timeout)
	}
	metered := e.cfg.Interrupt == InterruptMeter
	if metered {
		// A start function runs before the globals can be set: the meter
		// binds them on its first refuel (see instantiateMeter), and the
		// fuel global starts at 0, so all the budget is still to hand out.
		s := &inst.k.meter
		s.ctx, s.done = ctx, ctx.Done()
		s.deadline, s.timeout = deadline.UnixNano(), timeout
		s.limited, s.budget, s.left = lim.Fuel > 0, lim.Fuel, lim.Fuel
	} else {
		var cancel context.CancelFunc
		ictx, cancel = context.WithDeadline(ictx, deadline)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
	}
	inst.grants = grantsKey(lim.Grants)
	inst.k.grants = lim.Grants
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().WithStderr(&inst.stderr)
	if lim.Grants == nil || !lim.Grants.Random {
		inst.rand = &fixedRand{meter: &inst.k.meter}
		cfg = cfg.WithRandSource(inst.rand)
	} else {
		cfg = cfg.WithRandSource(&chargedRand{r: crand.Reader, meter: &inst.k.meter})
	}
	if lim.Grants == nil || !lim.Grants.Clock {
		inst.clock = &fakeClock{}
		cfg = inst.clock.config(cfg)
	}
	cfg, roots, err := grantsConfig(lim.Grants, cfg, &inst.asked)
	if err != nil {
		return nil, err
	}
	inst.roots = roots
	compiled := m.compiled
	if snapshot && m.useMarked.Load() {
		compiled, inst.marked = m.marked.compiled, true
	}
	if err := inst.k.start(ctx, e, lim); err != nil {
		inst.close(ctx)
		return nil, err
	}
	ictx = experimental.WithImportResolver(ictx, func(name string) api.Module {
		if name == abi.ExtismEnv {
			return inst.k.wasm.mod // this instance's own
		}
		return nil
	})
	mod, err := e.rt.InstantiateModule(ictx, compiled, cfg)
	if err != nil {
		inst.close(ctx)
		phase := "instantiation"
		if m.Info.HasStart {
			phase += " (the start function)"
		}
		return nil, inst.startFailure(ctx, phase, err, lim, timeout)
	}
	inst.mod = mod
	if metered {
		inst.k.meter.bind(mod)
		inst.k.meter.depth.Set(api.EncodeI32(e.cfg.MaxDepth + 1))
	}
	if m.hasInit {
		if _, err := mod.ExportedFunction("_initialize").Call(ictx); err != nil {
			inst.close(ctx)
			return nil, inst.startFailure(ctx, "instantiation (_initialize)", err, lim, timeout)
		}
	}
	inst.funcs = make([]api.Function, len(m.exports))
	byName := make(map[string]api.Function, len(m.exports)) // tasks may share an export: one call engine each
	for i, name := range m.exports {
		if byName[name] == nil {
			byName[name] = mod.ExportedFunction(name)
		}
		inst.funcs[i] = byName[name]
	}
	if snapshot {
		if err := m.takeSnapshot(inst); err != nil {
			inst.close(ctx)
			return nil, err
		}
	}
	inst.clean = true
	inst.asked.sealed = true
	m.pool.created.Add(1)
	return inst, nil
}

func (inst *instance) close(ctx context.Context) {
	if inst.mod != nil {
		_ = inst.mod.Close(ctx)
	}
	inst.k.close(ctx)
	closeRoots(inst.roots)
}

// call runs task t once. keep reports whether the instance may serve
// another call: it may not after any trap, timeout or limit.
func (inst *instance) call(ctx context.Context, t *Task, input []byte, lim Limits, deadline time.Time) (out []byte, keep bool, err error) {
	k := inst.k
	k.task = t.Spec.Name
	if hp := k.reset(input, lim.Memory, lim.MaxOutput); hp != nil {
		return nil, false, &TaskError{Kind: hp.kind, Module: t.mod.Name, Task: t.Spec.Name, Msg: hp.msg}
	}
	k.callCtx = ctx
	inst.mem.limit = lim.Memory
	inst.mem.exceeded = 0
	inst.mem.tableOver = ""
	inst.stderr.Reset()
	inst.asked.reset()
	if inst.rand != nil {
		inst.rand.restart()
	}

	callCtx := inst.ctx
	if inst.k.meter.fuel != nil {
		k.meter.arm(ctx, deadline, lim.Timeout, lim.Fuel, k.maxDepth)
	} else if !deadline.IsZero() || ctx.Done() != nil {
		callCtx = context.WithValue(ctx, kernelKey{}, k)
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			callCtx, cancel = context.WithDeadline(callCtx, deadline)
			defer cancel()
		}
	}
	stack := inst.stack
	stack[0] = 0
	if cerr := inst.funcs[t.index].CallWithStack(callCtx, stack); cerr != nil {
		return nil, false, inst.classify(ctx, t, lim, cerr)
	}
	if rc := int32(uint32(stack[0])); rc != 0 {
		msg := fmt.Sprintf("returned %d", rc)
		if b := k.errorBlock(); b != nil {
			msg = string(b)
		}
		return nil, true, &TaskError{Kind: KindGuestError, Module: t.mod.Name, Task: t.Spec.Name, Msg: msg}
	}
	o, set := k.output()
	if !set {
		return nil, true, nil
	}
	return bytes.Clone(o), true, nil
}

func (inst *instance) classify(ctx context.Context, t *Task, lim Limits, err error) *TaskError {
	kind, msg := inst.failure(ctx, err, lim, lim.Timeout)
	return &TaskError{Kind: kind, Module: t.mod.Name, Task: t.Spec.Name, Msg: msg, Err: err}
}

// startFailure classes the failure of a new instance's start-up, in
// phase, under limits lim and a deadline timeout away.
func (inst *instance) startFailure(ctx context.Context, phase string, err error, lim Limits, timeout time.Duration) *startError {
	kind, msg := inst.failure(ctx, err, lim, timeout)
	return &startError{kind: kind, msg: "during " + phase + ": " + msg, err: err}
}

// failure classes err, the failure of guest code run under limits lim
// and a deadline timeout away, and describes it.
func (inst *instance) failure(ctx context.Context, err error, lim Limits, timeout time.Duration) (kind Kind, msg string) {
	var hp *hostPanic
	var exit *sys.ExitError
	switch {
	case errors.As(err, &hp):
		kind, msg = hp.kind, hp.msg
	case inst.k.kernelFailure() != nil:
		hp = inst.k.kernelFailure()
		kind, msg = hp.kind, hp.msg
	case inst.mem.tableOver != "":
		kind, msg = KindMemory, inst.mem.tableOver
	case inst.mem.exceeded != 0:
		kind = KindMemory
		msg = fmt.Sprintf("the guest tried to grow its memory to %d bytes; the limit is %d bytes", inst.mem.exceeded, lim.Memory)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind, msg = KindCanceled, ctx.Err().Error()
		} else {
			kind, msg = KindTimeout, fmt.Sprintf("did not finish within %s", timeout)
		}
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		kind, msg = KindCanceled, "the call was canceled"
	case errors.As(err, &exit):
		kind, msg = KindTrap, fmt.Sprintf("the guest exited with code %d", exit.ExitCode())
	case strings.Contains(err.Error(), "stack overflow"):
		kind, msg = KindStackOverflow, "the guest's call stack grew past the limit"
	default:
		kind = KindTrap
		msg = strings.TrimPrefix(firstLine(err).Error(), "wasm error: ")
	}
	if s := strings.TrimSpace(inst.stderr.String()); s != "" && (kind == KindTrap || kind == KindMemory) {
		msg += "; guest stderr: " + s
	}
	return kind, msg
}

// firstLine drops wazero's wasm stack trace from an error.
func firstLine(err error) error {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return errors.New(s[:i])
	}
	return err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
