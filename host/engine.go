// Package host runs task modules: it loads and checks them, compiles them
// with wazero (through an on-disk compilation cache), keeps pools of warm
// instances, implements the Extism guest ABI, and enforces per-call limits.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/meter"
	"github.com/flowhost/flowhost/policy"
)

// Limits bound one task call (policy.Call): a zero field means "no
// limit". policy.Scope.Resolve decides them, the same way for every driver.
type Limits = policy.Call

// DefaultLimits are the limits of a call that asks for none.
var DefaultLimits = policy.DefaultCall

// probeLimits lock down the instance that runs a flowhost_manifest export.
var probeLimits = Limits{Timeout: 5 * time.Second, Memory: 64 << 20, MaxOutput: 1 << 20}

// Config configures an Engine.
type Config struct {
	// CacheDir holds compiled code between processes. Empty means
	// DefaultCacheDir(); "off" disables the on-disk cache.
	CacheDir string
	// Logger receives host and guest logs; nil discards them.
	Logger *slog.Logger
	// MaxIdle is how many warm instances each module keeps; 0 means
	// 2 × GOMAXPROCS.
	MaxIdle int
	// InitTimeout bounds a new instance's start-up (its start function and
	// _initialize; a Go guest's runtime initialisation takes ~7 ms) when
	// the call that needs the instance has no timeout; otherwise the
	// call's timeout and fuel bound it. 0 means 10 s.
	InitTimeout time.Duration
	// Interrupt selects how runaway guests are stopped; the default,
	// InterruptMeter, instruments modules at load.
	Interrupt Interrupt
	// MaxDepth bounds the guest call depth under InterruptMeter; 0 means
	// DefaultMaxDepth.
	MaxDepth int32
	// MarkWrites chooses when calls that start from the state after
	// start-up run a variant of the module that marks the memory it
	// writes, so that only that is copied back (see Reset): MarkAuto,
	// the default, MarkAlways or MarkNever.
	MarkWrites MarkWrites
}

// DefaultCacheDir is the compilation cache under the user's cache directory.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "flowhost", "compiled")
}

// Engine loads modules and runs their tasks. It is safe for concurrent use.
type Engine struct {
	rt       wazero.Runtime
	kernel   wazero.CompiledModule // the WebAssembly half of the kernel (kernel.wat)
	cache    wazero.CompilationCache
	cacheDir string // "" when there is no on-disk cache
	cfg      Config
	logger   *slog.Logger

	mu      sync.Mutex
	modules map[string]*Module // by sha256
	// loading holds, by sha256, a channel closed when a Load of those
	// bytes in progress ends: the same bytes are never compiled twice at
	// once (wazero's engine keeps one compiled module per content).
	loading map[string]chan struct{}
	// closed is set by Close, under mu; builds counts the marking
	// variants being built in the background, which Close waits for.
	closed bool
	builds sync.WaitGroup

	cacheHits, cacheMisses atomic.Int64
}

// EngineStats sums the engine's modules and instances, for metrics.
type EngineStats struct {
	Modules int
	// Instances counts instances started, reused by a call, and discarded.
	InstancesCreated, InstancesReused, InstancesDiscarded int64
	// InstancesIdle are warm instances waiting in the pools now.
	InstancesIdle int
	// GuestMemory is the linear memory and tables of the idle instances,
	// in bytes.
	GuestMemory uint64
	// CacheHits and CacheMisses count modules found in, or added to, the
	// on-disk cache of prepared (metered) code.
	CacheHits, CacheMisses int64
}

// Stats reports the engine's counters.
func (e *Engine) Stats() EngineStats {
	e.mu.Lock()
	mods := make([]*Module, 0, len(e.modules))
	for _, m := range e.modules {
		mods = append(mods, m)
	}
	e.mu.Unlock()
	st := EngineStats{Modules: len(mods), CacheHits: e.cacheHits.Load(), CacheMisses: e.cacheMisses.Load()}
	for _, m := range mods {
		ps := m.Stats()
		st.InstancesCreated += ps.Created
		st.InstancesReused += ps.Reused
		st.InstancesDiscarded += ps.Discarded
		st.InstancesIdle += ps.Idle
		st.GuestMemory += ps.IdleMemory
	}
	return st
}

// New starts an engine.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rc := wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(cfg.Interrupt == InterruptContext)
	var cache wazero.CompilationCache
	var cacheDir string
	if cfg.CacheDir != "off" {
		dir := cfg.CacheDir
		if dir == "" {
			dir = DefaultCacheDir()
		}
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			logger.Warn("compilation cache disabled", "dir", dir, "err", err)
		} else {
			cache, cacheDir = c, dir
			rc = rc.WithCompilationCache(c)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate WASI: %w", err)
	}
	kernel, err := instantiateKernel(ctx, rt)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate %s: %w", abi.ExtismEnv, err)
	}
	if cfg.Interrupt == InterruptMeter {
		if err := instantiateMeter(ctx, rt); err != nil {
			rt.Close(ctx)
			return nil, fmt.Errorf("host: instantiate the meter: %w", err)
		}
	}
	return &Engine{rt: rt, kernel: kernel, cache: cache, cacheDir: cacheDir, cfg: cfg, logger: logger, modules: map[string]*Module{}}, nil
}

// Close releases every module, instance and compiled code of the engine.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.builds.Wait()
	err := e.rt.Close(ctx)
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	return err
}

// LoadFile loads a module from a file, read with ReadModuleFile. See Load.
func (e *Engine) LoadFile(ctx context.Context, path string) (*Module, error) {
	b, err := ReadModuleFile(path)
	if err != nil {
		return nil, err
	}
	m, err := e.Load(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Load checks, compiles and describes a module: its imports must all be
// from the Extism guest ABI or WASI, its manifest must be valid and name
// only exports of type () -> i32. Loading the same bytes twice returns the
// same Module. A module larger than MaxModuleSize is refused.
func (e *Engine) Load(ctx context.Context, wasm []byte) (*Module, error) {
	if len(wasm) > MaxModuleSize {
		return nil, fmt.Errorf("%w: %d bytes; the limit is %d bytes", ErrModuleTooLarge, len(wasm), MaxModuleSize)
	}
	sum := sha256.Sum256(wasm)
	id := hex.EncodeToString(sum[:])
	for {
		e.mu.Lock()
		if m, ok := e.modules[id]; ok {
			e.mu.Unlock()
			return m, nil
		}
		wait, busy := e.loading[id]
		if !busy {
			if e.loading == nil {
				e.loading = map[string]chan struct{}{}
			}
			done := make(chan struct{})
			e.loading[id] = done
			e.mu.Unlock()
			defer func() {
				e.mu.Lock()
				delete(e.loading, id)
				e.mu.Unlock()
				close(done)
			}()
			break
		}
		e.mu.Unlock()
		select {
		case <-wait: // loaded, or failed: look again
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	info, err := abi.ParseModule(wasm)
	if err != nil {
		return nil, err
	}
	if err := abi.CheckImports(info); err != nil {
		return nil, err
	}
	if err := checkDeclared(info); err != nil {
		return nil, err
	}
	code := wasm
	var st meter.State
	if e.cfg.Interrupt == InterruptMeter {
		if code, st, err = e.instrument(wasm, id, meter.Options{}); err != nil {
			return nil, err
		}
	} else if st, err = meter.Analyze(wasm); err != nil || st.GrowsTables {
		// Without the meter's rewrite nothing would bound table.grow.
		if err == nil {
			err = fmt.Errorf("%w: the module uses table.grow, which the host bounds only under InterruptMeter", ErrModuleRefused)
		}
		return nil, err
	}
	compiled, err := e.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	m := &Module{eng: e, SHA256: id, Size: len(wasm), Info: info, compiled: compiled,
		state: st, reset: resetFor(e.cfg.Interrupt == InterruptMeter, st)}
	m.pool.max = e.cfg.MaxIdle
	if ft, ok := info.ExportedFunc("_initialize"); ok {
		if len(ft.Params) != 0 || len(ft.Results) != 0 {
			return nil, fmt.Errorf("%w: export _initialize has type %s; it must be () -> ()", ErrModuleRefused, ft)
		}
		m.hasInit = true
	} else if info.HasExport("_initialize") {
		return nil, fmt.Errorf("%w: export _initialize is not a function", ErrModuleRefused)
	}
	for _, mem := range info.Memories {
		m.initialMemory += uint64(mem.Min) * abi.PageSize
	}
	for _, t := range info.Tables {
		m.initialTables += uint64(t.Min)
	}

	if sec, ok := info.Section(abi.SectionName); ok {
		m.Manifest, err = abi.ParseManifest(sec)
		if err != nil {
			return nil, fmt.Errorf("section %s: %w", abi.SectionName, err)
		}
		m.ManifestSource = "section"
	} else if ft, ok := info.ExportedFunc(abi.ManifestExport); ok {
		if len(ft.Params) != 0 || len(ft.Results) != 1 || ft.Results[0] != 0x7f {
			return nil, fmt.Errorf("%w: export %s has type %s; it must be () -> i32", abi.ErrBadManifest, abi.ManifestExport, ft)
		}
		m.Manifest, err = m.probe(ctx)
		if err != nil {
			return nil, err
		}
		m.ManifestSource = "export"
	} else {
		return nil, fmt.Errorf("%w: the module has neither a %q custom section nor a %q export", abi.ErrNoManifest, abi.SectionName, abi.ManifestExport)
	}
	if err := abi.CheckTasks(info, m.Manifest); err != nil {
		return nil, err
	}
	m.Name = m.Manifest.Name
	m.tasks = make(map[string]*Task, len(m.Manifest.Tasks))
	for i := range m.Manifest.Tasks {
		spec := &m.Manifest.Tasks[i]
		m.exports = append(m.exports, spec.Export)
		m.tasks[spec.Name] = newTask(m, spec, i)
	}
	m.prepareMarks(ctx, wasm)

	e.mu.Lock()
	defer e.mu.Unlock()
	if prev, ok := e.modules[id]; ok { // lost a race with another Load
		return prev, nil
	}
	e.modules[id] = m
	return m, nil
}

// probe runs the flowhost_manifest export in a throw-away instance with no
// grants, a small memory and a short deadline.
func (m *Module) probe(ctx context.Context) (*abi.Manifest, error) {
	m.Name = "(manifest probe)"
	m.exports = []string{abi.ManifestExport}
	t := &Task{mod: m, Spec: &abi.Task{Name: abi.ManifestExport, Export: abi.ManifestExport}, index: 0}
	deadline := time.Now().Add(probeLimits.Timeout)
	inst, err := m.newInstance(ctx, probeLimits, deadline, false)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest probe: %w", abi.ErrBadManifest, m.startFailed(abi.ManifestExport, err))
	}
	out, _, err := inst.call(ctx, t, nil, probeLimits, deadline)
	inst.close(ctx)
	m.exports = nil
	if err != nil {
		return nil, fmt.Errorf("%w: export %s failed: %v", abi.ErrBadManifest, abi.ManifestExport, err)
	}
	man, err := abi.ParseManifest(out)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", abi.ManifestExport, err)
	}
	return man, nil
}

// checkDeclared refuses, at load, what a module declares that the host
// will not instantiate: more than MaxTables tables, a table of more than
// MaxTableElements elements, and an active data segment beyond the
// module's initial memory (the runtime would fail every instantiation).
func checkDeclared(info *abi.Module) error {
	if len(info.Tables) > MaxTables {
		return fmt.Errorf("%w: the module defines %d tables; the host allows %d", ErrModuleRefused, len(info.Tables), MaxTables)
	}
	for i, t := range info.Tables {
		if t.Min > MaxTableElements {
			return fmt.Errorf("%w: table %d declares %d elements at least; a table may have at most %d", ErrModuleRefused, i, t.Min, MaxTableElements)
		}
	}
	for i, d := range info.Data {
		if !d.ConstOffset || int(d.Memory) >= len(info.Memories) {
			continue // left to the runtime, which checks it at instantiation
		}
		pages := info.Memories[d.Memory].Min
		if size := uint64(pages) * abi.PageSize; d.End() > size {
			return fmt.Errorf("%w: data segment %d (%d bytes at offset %d) lies beyond the module's initial memory of %d bytes (%s)",
				ErrModuleRefused, i, d.Len, d.Offset, size, plural(uint64(pages), "page"))
		}
	}
	return nil
}

// plural renders "1 page", "2 pages".
func plural(n uint64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
