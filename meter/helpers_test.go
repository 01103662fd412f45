package meter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

var (
	watMu    sync.Mutex
	watCache = map[string][]byte{}
)

// wat compiles testdata/name with wat2wasm (Debian package wabt) and the
// given feature flags, keeping the "name" section. A missing wat2wasm fails
// the test: the .wat sources are the test data.
func wat(t testing.TB, name string, flags ...string) []byte {
	t.Helper()
	key := name + " " + strings.Join(flags, " ")
	watMu.Lock()
	defer watMu.Unlock()
	if b, ok := watCache[key]; ok {
		return b
	}
	b := compileWAT(t, filepath.Join("testdata", name), append(append([]string{}, flags...), "--debug-names")...)
	watCache[key] = b
	return b
}

// compileWAT compiles the WAT file at path with wat2wasm and flags.
func compileWAT(t testing.TB, path string, flags ...string) []byte {
	t.Helper()
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatalf("wat2wasm is needed to compile %s (install the Debian package wabt): %v", path, err)
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(path), ".wat")+".wasm")
	args := append(append([]string{}, flags...), "-o", out, path)
	if msg, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// instrument instruments wasm and has wasm-validate (wabt), with its
// default features plus flags, check the result independently of wazero.
func instrument(t testing.TB, wasm []byte, flags ...string) []byte {
	t.Helper()
	out := mustInstrument(t, wasm)
	tool, err := exec.LookPath("wasm-validate")
	if err != nil {
		t.Fatalf("wasm-validate is needed to check instrumented modules (install the Debian package wabt): %v", err)
	}
	f := filepath.Join(t.TempDir(), "instrumented.wasm")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, flags...), f)
	if msg, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
		t.Fatalf("wasm-validate rejects the instrumented module: %v\n%s", err, msg)
	}
	return out
}

// mustInstrument instruments wasm, for modules wabt cannot validate
// (exception handling); wazero validates them when it compiles them.
func mustInstrument(t testing.TB, wasm []byte) []byte {
	t.Helper()
	out, err := Instrument(wasm)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	return out
}

var (
	errOutOfFuel = errors.New("test host: out of fuel")
	errTooDeep   = errors.New("test host: call stack too deep")
)

// host is the test's "flowhost:meter" module: it refills the fuel or traps.
type host struct {
	refill     int64     // fuel added per out_of_fuel call; 0 traps at once
	maxRefills int       // out_of_fuel calls answered with a refill; <0: no limit
	deadline   time.Time // if set, out_of_fuel traps once it has passed

	tableMax uint32 // table_grow refuses to grow a table past it; 0: no bound

	outOfFuel int      // out_of_fuel calls
	tooDeep   int      // too_deep calls
	refilled  int64    // fuel added by refills
	grows     []string // table_grow calls, as "delta size table"
}

func (h *host) onTableGrow(_ context.Context, delta, size, table uint32) uint32 {
	h.grows = append(h.grows, fmt.Sprint(delta, size, table))
	if h.tableMax != 0 && uint64(size)+uint64(delta) > uint64(h.tableMax) {
		return 0xffffffff
	}
	return delta
}

func (h *host) onOutOfFuel(_ context.Context, m api.Module) {
	h.outOfFuel++
	if h.refill <= 0 || (h.maxRefills >= 0 && h.outOfFuel > h.maxRefills) ||
		(!h.deadline.IsZero() && time.Now().After(h.deadline)) {
		panic(errOutOfFuel)
	}
	g := m.ExportedGlobal(GlobalFuel).(api.MutableGlobal)
	g.Set(uint64(int64(g.Get()) + h.refill))
	h.refilled += h.refill
}

func (h *host) onTooDeep(context.Context, api.Module) {
	h.tooDeep++
	panic(errTooDeep)
}

// newRuntime makes a wazero runtime with the optimizing compiler, the
// given features, the meter host module h and the "env" module basic.wat
// imports.
func newRuntime(t testing.TB, h *host, features api.CoreFeatures) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { r.Close(ctx) })
	if _, err := r.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(h.onOutOfFuel).Export(FuncOutOfFuel).
		NewFunctionBuilder().WithFunc(h.onTooDeep).Export(FuncTooDeep).
		NewFunctionBuilder().WithFunc(h.onTableGrow).Export(FuncTableGrow).
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewHostModuleBuilder("go").
		NewFunctionBuilder().WithFunc(func(_ context.Context, a, b uint32) uint32 { return a + b }).Export("add").
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.InstantiateWithConfig(ctx, wat(t, "env.wat"), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	return r
}

// instantiate makes an anonymous instance of wasm in r.
func instantiate(t testing.TB, r wazero.Runtime, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	c, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	m, err := r.InstantiateModule(ctx, c, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return m
}

// meterGlobals returns the instrumented module's fuel and depth globals.
func meterGlobals(t testing.TB, m api.Module) (fuel, depth api.MutableGlobal) {
	t.Helper()
	f, ok1 := m.ExportedGlobal(GlobalFuel).(api.MutableGlobal)
	d, ok2 := m.ExportedGlobal(GlobalDepth).(api.MutableGlobal)
	if !ok1 || !ok2 {
		t.Fatalf("instrumented module does not export mutable %s and %s", GlobalFuel, GlobalDepth)
	}
	return f, d
}

func call(m api.Module, fn string, args ...uint64) ([]uint64, error) {
	f := m.ExportedFunction(fn)
	if f == nil {
		return nil, fmt.Errorf("no exported function %q", fn)
	}
	return f.Call(context.Background(), args...)
}
